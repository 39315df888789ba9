//! One entry of `disk = [ ... ]`, read as xl-disk-configuration(5) describes.
//!
//! An entry is a comma-separated series of positional parameters
//! (`target, format, vdev, access`, in that order), `key=value` parameters
//! and flags, which may be mixed: a parameter without `=` fills the first
//! positional slot not yet given, by position or by name. An empty value
//! means the default, but still fills its slot. `target=` takes the whole
//! rest of the entry, commas included, so it comes last. The deprecated
//! forms Xen still takes are taken too: format prefixes (`raw:`, `qcow2:`),
//! ignored prefixes (`phy:`, `file:`, `tap:aio:`, ...; after one of these
//! no format is expected positionally) and `vdev:devtype` (`hdc:cdrom`).
//!
//! Paths are used as written: unlike Xen, `/dev/` is not prepended to
//! relative targets, since targets here are image files.

use protocol::device::is_disk_vdev;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A virtual block device of the domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpec {
    /// The image file backing the device.
    pub target: PathBuf,
    /// The image's format (only raw is supported).
    pub format: DiskFormat,
    /// The device as the guest names it (`xvda`, `hdc`, `sdb1`, ...).
    pub vdev: String,
    /// Whether the guest may write to it.
    pub access: Access,
    /// `cdrom` or `disk`, if given.
    pub devtype: Option<String>,
    /// The domain serving the device, if not the default.
    pub backend: Option<String>,
    /// The backend implementation asked for (`phy`, `qdisk`, `tap`, `standalone`).
    pub backendtype: Option<String>,
    /// The protocol asked for (`xen` or `virtio`).
    pub specification: Option<String>,
    /// `direct-io-safe`: the image is read and written with `O_DIRECT`,
    /// past the host's page cache, as Xen's qdisk backend does with it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub direct_io_safe: bool,
}

/// The format of a disk image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    /// A plain image: the guest's blocks are the file's bytes.
    Raw,
}

/// How the guest may use a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    /// Read and write (`rw` or `w`), the default.
    #[serde(rename = "rw")]
    ReadWrite,
    /// Read only (`ro` or `r`), the default for a cdrom.
    #[serde(rename = "ro")]
    ReadOnly,
}

/// A parsed disk entry and the Xen parameters it carries that are not used here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedDisk {
    /// The disk.
    pub spec: DiskSpec,
    /// Names of recognised but unused parameters and flags (`discard`, ...).
    pub ignored: Vec<String>,
}

/// Xen flags that have no effect here.
const IGNORED_FLAGS: &[&str] = &[
    "discard",
    "no-discard",
    "trusted",
    "untrusted",
    "colo",
    "no-colo",
];

/// Xen `key=value` parameters that have no effect here.
const IGNORED_KEYS: &[&str] = &[
    "grant_usage",
    "colo-host",
    "colo-port",
    "colo-export",
    "active-disk",
    "hidden-disk",
];

/// What is wrong with a disk entry; each message names the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// A parameter given twice, with two different non-empty values.
    GivenTwice {
        /// The parameter.
        name: &'static str,
        /// Its first value.
        first: String,
        /// The value that disagrees with it.
        second: String,
    },
    /// `script=`: block scripts are not run here.
    Script,
    /// A `key=value` with a key Xen's disk syntax does not have.
    UnknownParameter(String),
    /// `devtype=` other than `cdrom` or `disk`.
    UnknownDevtype(String),
    /// A deprecated `prefix:` Xen does not have.
    UnknownPrefix(String),
    /// A target reached over the network (`nbd:`, `rbd:`, ...): the
    /// protocol.
    NetworkTarget(String),
    /// A fifth positional parameter (this one).
    TooManyPositional(String),
    /// A CD-ROM drive without a medium (its vdev, if given).
    EmptyCdrom {
        /// The drive.
        vdev: Option<String>,
    },
    /// No target.
    NoTarget,
    /// A format Xen knows but this host does not open.
    UnsupportedFormat(String),
    /// A format Xen does not know.
    UnknownFormat(String),
    /// A vdev that is not a Xen virtual device name.
    BadVdev(String),
    /// No vdev.
    NoVdev,
    /// An access mode other than rw, w, ro or r.
    UnknownAccess(String),
    /// A parameter with a value outside its valid ones.
    UnknownValue {
        /// The parameter.
        name: &'static str,
        /// The value given.
        value: String,
        /// The values it may take.
        valid: &'static [&'static str],
    },
}

impl std::fmt::Display for DiskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const LOCAL: &str = "a target here is an image file or a block device on the host";
        match self {
            Self::GivenTwice {
                name,
                first,
                second,
            } => write!(f, "{name} is given twice (`{first}` and `{second}`)"),
            Self::Script => write!(f, "block scripts (script=) are not supported: {LOCAL}"),
            Self::UnknownParameter(k) => write!(
                f,
                "unknown parameter `{k}` (known: target, format, vdev, access, devtype, backend, backendtype, specification)"
            ),
            Self::UnknownDevtype(d) => write!(f, "unknown devtype `{d}` (expected cdrom or disk)"),
            Self::UnknownPrefix(p) => write!(f, "unknown deprecated disk prefix `{p}:`"),
            Self::NetworkTarget(protocol) => write!(
                f,
                "{protocol}: targets are not supported: this host opens no network block devices; {LOCAL}"
            ),
            Self::TooManyPositional(p) => write!(
                f,
                "too many positional parameters at `{p}` (the order is target, format, vdev, access)"
            ),
            Self::EmptyCdrom { vdev } => write!(
                f,
                "{} is an empty CD-ROM drive (no medium): removable media are not supported here; give the image as its target, or remove the entry",
                vdev.as_deref().unwrap_or("the drive")
            ),
            Self::NoTarget => write!(
                f,
                "no target given: name the disk image, e.g. `/images/guest.img,raw,xvda,rw`"
            ),
            Self::UnsupportedFormat(format) => {
                write!(f, "disk format {format} is not supported yet (only raw)")
            }
            Self::UnknownFormat(format) => write!(
                f,
                "unknown disk format `{format}` (Xen knows raw, qcow, qcow2, vhd and qed; only raw is supported here)"
            ),
            Self::BadVdev(v) => write!(
                f,
                "vdev `{v}` is not a Xen virtual device name (like xvda, xvdb1, hdc, sda, d0p1, or a device number like 51713)"
            ),
            Self::NoVdev => write!(f, "no vdev given: name the guest's device, e.g. xvda"),
            Self::UnknownAccess(a) => write!(f, "unknown access `{a}` (expected rw, w, ro or r)"),
            Self::UnknownValue { name, value, valid } => {
                write!(f, "unknown {name} `{value}` (expected {})", valid.join(", "))
            }
        }
    }
}

impl std::error::Error for DiskError {}

/// Parses one disk entry; the error says what is wrong with it.
pub(crate) fn parse_disk(entry: &str) -> Result<ParsedDisk, DiskError> {
    let mut fields = Fields::default();
    let mut rest = entry;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some((key, value)) = rest.split_once('=') {
            if key.trim_end() == "target" {
                let value = value.trim();
                let value = value.strip_suffix(',').unwrap_or(value);
                set(&mut fields.target, "target", value)?;
                break;
            }
        }
        let (param, tail) = rest.split_once(',').unwrap_or((rest, ""));
        rest = tail;
        fields.param(param.trim())?;
    }
    fields.finish()
}

/// The parameters of an entry as they are given.
#[derive(Default)]
struct Fields {
    target: Option<String>,
    format: Option<String>,
    vdev: Option<String>,
    access: Option<String>,
    devtype: Option<String>,
    backend: Option<String>,
    backendtype: Option<String>,
    specification: Option<String>,
    /// A deprecated prefix was seen: no format is expected positionally.
    prefixed: bool,
    direct_io_safe: bool,
    ignored: Vec<String>,
}

/// Gives a parameter its value, refusing a second, different, non-empty one.
fn set(slot: &mut Option<String>, name: &'static str, value: &str) -> Result<(), DiskError> {
    match slot {
        Some(old) if !old.is_empty() && old != value => Err(DiskError::GivenTwice {
            name,
            first: old.clone(),
            second: value.to_string(),
        }),
        _ => {
            *slot = Some(value.to_string());
            Ok(())
        }
    }
}

impl Fields {
    /// Handles one parameter (whitespace already trimmed).
    fn param(&mut self, param: &str) -> Result<(), DiskError> {
        if let Some((key, value)) = param.split_once('=') {
            return self.named(key.trim_end(), value.trim_start());
        }
        if param == "cdrom" {
            set(&mut self.devtype, "devtype", "cdrom")
        } else if param == "direct-io-safe" {
            self.direct_io_safe = true;
            Ok(())
        } else if IGNORED_FLAGS.contains(&param) {
            self.ignored.push(param.to_string());
            Ok(())
        } else {
            self.positional(param)
        }
    }

    /// Handles a `key=value` parameter.
    fn named(&mut self, key: &str, value: &str) -> Result<(), DiskError> {
        match key {
            "format" => set(&mut self.format, "format", value),
            "vdev" => set(&mut self.vdev, "vdev", value),
            "access" => set(&mut self.access, "access", value),
            "devtype" => self.devtype(value),
            "backend" => set(&mut self.backend, "backend", value),
            "backendtype" => set(&mut self.backendtype, "backendtype", value),
            "specification" => set(&mut self.specification, "specification", value),
            "script" => Err(DiskError::Script),
            k if IGNORED_KEYS.contains(&k) => {
                self.ignored.push(k.to_string());
                Ok(())
            }
            k => Err(DiskError::UnknownParameter(k.to_string())),
        }
    }

    /// Handles `devtype=` (or the `:devtype` of a deprecated vdev).
    fn devtype(&mut self, value: &str) -> Result<(), DiskError> {
        match value {
            "cdrom" | "disk" => set(&mut self.devtype, "devtype", value),
            other => Err(DiskError::UnknownDevtype(other.to_string())),
        }
    }

    /// Handles a parameter without `=`: deprecated prefixes, then the first
    /// positional slot not yet given.
    fn positional(&mut self, mut param: &str) -> Result<(), DiskError> {
        while let Some((word, after)) = param.split_once(':') {
            let is_word = word.starts_with(|c: char| c.is_ascii_lowercase())
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !is_word {
                break;
            }
            match word {
                "raw" | "qcow" | "qcow2" | "vhd" => set(&mut self.format, "format", word)?,
                "tapdisk" | "tap" | "tap2" | "aio" | "ioemu" | "file" | "phy" => {}
                _ if NETWORK_PROTOCOLS.contains(&word) => {
                    return Err(DiskError::NetworkTarget(word.to_string()))
                }
                // `hdc:cdrom`: a vdev with its device type, handled below.
                _ if after.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) => {
                    break
                }
                _ => return Err(DiskError::UnknownPrefix(word.to_string())),
            }
            self.prefixed = true;
            param = after;
        }
        if self.target.is_none() {
            self.target = Some(param.to_string());
        } else if !self.prefixed && self.format.is_none() {
            if self.target.as_deref() == Some("") && param.contains(':') {
                // Xen's old empty-cdrom form: `,hdc:cdrom,r`.
                self.format = Some(String::new());
                self.vdev_with_devtype(param)?;
            } else {
                self.format = Some(param.to_string());
            }
        } else if self.vdev.is_none() {
            self.vdev_with_devtype(param)?;
        } else if self.access.is_none() {
            self.access = Some(param.to_string());
        } else {
            return Err(DiskError::TooManyPositional(param.to_string()));
        }
        Ok(())
    }

    /// Sets the vdev from `vdev` or the deprecated `vdev:devtype`.
    fn vdev_with_devtype(&mut self, param: &str) -> Result<(), DiskError> {
        match param.rsplit_once(':') {
            Some((vdev, devtype)) => {
                self.devtype(devtype)?;
                set(&mut self.vdev, "vdev", vdev)
            }
            None => set(&mut self.vdev, "vdev", param),
        }
    }

    /// Checks the parameters and applies the defaults.
    fn finish(self) -> Result<ParsedDisk, DiskError> {
        let cdrom = self.devtype.as_deref() == Some("cdrom");
        let target = match self.target.filter(|t| !t.is_empty()) {
            Some(t) => {
                if let Some(protocol) = network_protocol(&t) {
                    return Err(DiskError::NetworkTarget(protocol.to_string()));
                }
                PathBuf::from(t)
            }
            None if cdrom => return Err(DiskError::EmptyCdrom { vdev: self.vdev }),
            None => return Err(DiskError::NoTarget),
        };
        let format = match self.format.as_deref().unwrap_or("") {
            "" | "raw" => DiskFormat::Raw,
            f @ ("qcow" | "qcow2" | "vhd" | "qed") => {
                return Err(DiskError::UnsupportedFormat(f.to_string()))
            }
            f => return Err(DiskError::UnknownFormat(f.to_string())),
        };
        let vdev = match self.vdev.filter(|v| !v.is_empty()) {
            Some(v) if is_disk_vdev(&v) => v,
            Some(v) => return Err(DiskError::BadVdev(v)),
            None => return Err(DiskError::NoVdev),
        };
        let access = match self.access.as_deref().unwrap_or("") {
            // A CD-ROM is read-only whatever the access, as in Xen.
            "" | "rw" | "w" | "ro" | "r" if cdrom => Access::ReadOnly,
            "" | "rw" | "w" => Access::ReadWrite,
            "ro" | "r" => Access::ReadOnly,
            a => return Err(DiskError::UnknownAccess(a.to_string())),
        };
        let backendtype = one_of(
            self.backendtype,
            "backendtype",
            &["phy", "qdisk", "tap", "standalone"],
        )?;
        let specification = one_of(self.specification, "specification", &["xen", "virtio"])?;
        Ok(ParsedDisk {
            spec: DiskSpec {
                target,
                format,
                vdev,
                access,
                devtype: self.devtype,
                backend: self.backend.filter(|b| !b.is_empty()),
                backendtype,
                specification,
                direct_io_safe: self.direct_io_safe,
            },
            ignored: self.ignored,
        })
    }
}

/// Network block protocols a target may name (Xen's script prefixes, and
/// the URLs QEMU-backed configs carry).
const NETWORK_PROTOCOLS: &[&str] = &[
    "iscsi", "nbd", "enbd", "drbd", "rbd", "sheepdog", "gluster", "nfs", "http", "https", "ftp",
    "ftps", "ssh", "vxhs",
];

/// The network protocol a target names (`rbd:pool/image`,
/// `nbd://host/export`), if any.
fn network_protocol(target: &str) -> Option<&str> {
    let (scheme, _) = target.split_once(':')?;
    NETWORK_PROTOCOLS.iter().copied().find(|&p| p == scheme)
}

/// Checks an optional parameter against its valid values; empty means not given.
fn one_of(
    value: Option<String>,
    name: &'static str,
    valid: &'static [&'static str],
) -> Result<Option<String>, DiskError> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) if !valid.contains(&v.as_str()) => Err(DiskError::UnknownValue {
            name,
            value: v,
            valid,
        }),
        other => Ok(other),
    }
}

#[cfg(test)]
#[path = "disk_tests.rs"]
mod tests;
