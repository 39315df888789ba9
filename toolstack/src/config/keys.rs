//! Turns parsed settings into a [`DomainSpec`]: types, ranges, defaults,
//! and the warnings for keys this hypervisor does not use.

use super::disk::parse_disk;
use super::disk::DiskSpec;
use super::error::ConfigError;
use super::spec::{Action, DomainSpec, GuestType, Parsed, Placement, MAX_VCPUS};
use super::syntax::{Setting, Settings};
use super::values::{invalid, missing, value_error, Keys};
use super::vif::parse_vif;
use super::vif::VifSpec;
use std::path::PathBuf;

/// The keys this hypervisor reads; any other key draws a warning.
pub(crate) const USED_KEYS: &[&str] = &[
    "name",
    "type",
    "memory",
    "maxmem",
    "vcpus",
    "maxvcpus",
    "kernel",
    "ramdisk",
    "cmdline",
    "root",
    "extra",
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "disk",
    "vif",
    "backend_placement",
];

/// Memory when `memory` is not given, in MiB.
const DEFAULT_MEMORY_MIB: u64 = 128;

/// The most memory whose size in bytes fits in 64 bits, in MiB.
const MAX_MEMORY_MIB: u64 = u64::MAX >> 20;

/// Builds the domain from the settings of the file named `source`. Long
/// because it reads each key this hypervisor takes in turn, each with its
/// checks beside it: one place to hold against xl.cfg(5).
pub(crate) fn build(source: &str, settings: &Settings) -> Result<Parsed, ConfigError> {
    let keys = Keys { settings };
    let mut warnings = Vec::new();
    let ignored: Vec<&str> = settings
        .keys()
        .map(String::as_str)
        .filter(|k| !USED_KEYS.contains(k))
        .collect();
    if !ignored.is_empty() {
        warnings.push(format!(
            "{source}: ignoring keys this hypervisor does not use: {}",
            ignored.join(", ")
        ));
    }

    let name = match keys.string("name", "the domain name in quotes")? {
        Some((s, v)) if v.trim().is_empty() => {
            return Err(invalid(s, "the domain name must not be empty"))
        }
        Some((_, v)) => v.to_string(),
        None => {
            return Err(missing(
                source,
                "name",
                "every domain needs a name, e.g. name = \"guest1\"",
            ))
        }
    };
    let guest_type = match keys.string("type", "a guest type in quotes")? {
        None => GuestType::Pv,
        Some((_, "pv")) => GuestType::Pv,
        Some((_, "pvh")) => GuestType::Pvh,
        Some((s, "hvm")) => return Err(invalid(s, HVM_REFUSED)),
        Some((s, other)) => {
            let message = format!("unknown guest type {other:?} (expected \"pv\" or \"pvh\")");
            return Err(invalid(s, message));
        }
    };

    let memory_mib = match keys.number("memory", "a number of MiB")? {
        None => DEFAULT_MEMORY_MIB,
        Some((s, n)) => memory_size(s, n)?,
    };
    let maxmem_mib = match keys.number("maxmem", "a number of MiB")? {
        None => memory_mib,
        Some((s, n)) if n < memory_mib => {
            return Err(invalid(
                s,
                format!("{n} MiB is less than memory ({memory_mib} MiB)"),
            ))
        }
        Some((s, n)) => memory_size(s, n)?,
    };

    let vcpus = match keys.number("vcpus", "a number of vCPUs")? {
        None => 1,
        Some((s, n)) => match u8::try_from(n) {
            Ok(v) if (1..=MAX_VCPUS).contains(&v) => v,
            _ => {
                return Err(invalid(
                    s,
                    format!(
                        "{n} is out of range: this machine allows 1 to {MAX_VCPUS} vCPUs per VM"
                    ),
                ))
            }
        },
    };
    let maxvcpus = match keys.number("maxvcpus", "a number of vCPUs")? {
        None => vcpus,
        Some((s, n)) if n > u64::from(MAX_VCPUS) => {
            return Err(invalid(
                s,
                format!(
                    "{n} is out of range: this machine allows at most {MAX_VCPUS} vCPUs per VM"
                ),
            ))
        }
        Some((s, n)) if n < u64::from(vcpus) => {
            return Err(invalid(s, format!("{n} is less than vcpus ({vcpus})")))
        }
        // In range: n <= MAX_VCPUS, which is a u8.
        Some((_, n)) => u8::try_from(n).unwrap_or(MAX_VCPUS),
    };

    let kernel = match keys.string("kernel", "the kernel's path in quotes")? {
        Some((s, "")) => return Err(invalid(s, "the kernel path must not be empty")),
        Some((_, v)) => PathBuf::from(v),
        None => {
            return Err(missing(
                source,
                "kernel",
                "every domain needs a kernel to boot, e.g. kernel = \"/boot/vmlinuz\"",
            ))
        }
    };
    let ramdisk = match keys.string("ramdisk", "the ramdisk's path in quotes")? {
        Some((_, "")) | None => None,
        Some((s, v)) => {
            warnings.push(format!(
                "{}: ramdisk is ignored: kernels here need none",
                s.at
            ));
            Some(PathBuf::from(v))
        }
    };
    let cmdline = cmdline(&keys, &mut warnings)?;

    let on_poweroff = keys.action("on_poweroff", Action::Destroy)?;
    let on_reboot = keys.action("on_reboot", Action::Restart)?;
    let on_crash = keys.action("on_crash", Action::Destroy)?;

    let disks = disks(&keys, &mut warnings)?;
    let vifs = vifs(&keys)?;

    let placement = match keys.string("backend_placement", "\"service-vm\" or \"host\"")? {
        None | Some((_, "service-vm")) => Placement::ServiceVm,
        Some((_, "host")) => Placement::Host,
        Some((s, other)) => {
            return Err(invalid(
                s,
                format!("unknown value {other:?} (expected \"service-vm\" or \"host\")"),
            ))
        }
    };

    Ok(Parsed {
        spec: DomainSpec {
            name,
            guest_type,
            memory_mib,
            maxmem_mib,
            vcpus,
            maxvcpus,
            kernel,
            ramdisk,
            cmdline,
            on_poweroff,
            on_reboot,
            on_crash,
            disks,
            vifs,
            placement,
        },
        warnings,
    })
}

/// The message for `type = "hvm"`.
const HVM_REFUSED: &str = "hvm is not supported: this hypervisor boots PV/PVH-style kernels \
                           directly (use type = \"pv\" or \"pvh\")";

/// An example disk entry, for messages.
const DISK_EXAMPLE: &str = "/images/g.img,raw,xvda,rw";

/// The disks of `disk = [...]`; warns of Xen parameters that are not used.
fn disks(keys: &Keys<'_>, warnings: &mut Vec<String>) -> Result<Vec<DiskSpec>, ConfigError> {
    let mut disks: Vec<DiskSpec> = Vec::new();
    for (at, index, entry) in keys.entries("disk", "disk specification", DISK_EXAMPLE)? {
        let fail = |message: String| {
            value_error(&at, "disk", format!("entry {index} ('{entry}'): {message}"))
        };
        if entry.trim().is_empty() {
            let message = format!(
                "entry {index} is empty: a disk needs at least a target and a vdev, e.g. '{DISK_EXAMPLE}'"
            );
            return Err(value_error(&at, "disk", message));
        }
        let parsed = parse_disk(entry).map_err(fail)?;
        let vdev = &parsed.spec.vdev;
        if let Some(first) = disks.iter().position(|d| &d.vdev == vdev) {
            let message = format!("vdev {vdev} is already used by entry {}", first + 1);
            return Err(fail(message));
        }
        if !parsed.ignored.is_empty() {
            warnings.push(format!(
                "{at}: disk: entry {index}: ignoring {} (not used by this hypervisor)",
                parsed.ignored.join(", ")
            ));
        }
        disks.push(parsed.spec);
    }
    Ok(disks)
}

/// The network interfaces of `vif = [...]`.
fn vifs(keys: &Keys<'_>) -> Result<Vec<VifSpec>, ConfigError> {
    let mut vifs: Vec<VifSpec> = Vec::new();
    for (at, index, entry) in keys.entries("vif", "vif specification", "bridge=xenbr0")? {
        let fail = |message: String| {
            value_error(&at, "vif", format!("entry {index} ('{entry}'): {message}"))
        };
        let vif = parse_vif(entry).map_err(fail)?;
        if let Some(mac) = &vif.mac {
            if let Some(first) = vifs.iter().position(|v| v.mac.as_ref() == Some(mac)) {
                let message = format!("mac {mac} is already used by entry {}", first + 1);
                return Err(fail(message));
            }
        }
        vifs.push(vif);
    }
    Ok(vifs)
}

/// The kernel command line as Xen builds it: `cmdline` if given (then
/// `root` and `extra` are ignored), else `root=ROOT` and `extra`.
fn cmdline(keys: &Keys<'_>, warnings: &mut Vec<String>) -> Result<String, ConfigError> {
    let root = keys.string("root", "the root device in quotes")?;
    let extra = keys.string("extra", "kernel arguments in quotes")?;
    if let Some((s, v)) = keys.string("cmdline", "the kernel command line in quotes")? {
        let unused: Vec<&str> = [root.map(|_| "root"), extra.map(|_| "extra")]
            .into_iter()
            .flatten()
            .collect();
        if !unused.is_empty() {
            warnings.push(format!(
                "{}: cmdline is set, so {} {} ignored",
                s.at,
                unused.join(" and "),
                if unused.len() == 1 { "is" } else { "are" }
            ));
        }
        return Ok(v.to_string());
    }
    let parts: Vec<String> = [
        root.map(|(_, r)| format!("root={r}")),
        extra.map(|(_, e)| e.to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok(parts.join(" "))
}

/// Checks a memory size in MiB.
fn memory_size(s: &Setting, n: u64) -> Result<u64, ConfigError> {
    match n {
        0 => Err(invalid(s, "must be at least 1 MiB, found 0")),
        n if n > MAX_MEMORY_MIB => Err(invalid(
            s,
            format!("{n} MiB is more than a 64-bit machine can address"),
        )),
        n => Ok(n),
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
