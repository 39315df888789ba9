//! Turns parsed settings into a [`DomainSpec`]: types, ranges, defaults,
//! and the warnings for keys this hypervisor does not use.

use super::disk::parse_disk;
use super::disk::DiskSpec;
use super::error::ConfigError;
use super::refused;
use super::spec::{Action, DomainSpec, Parsed, Placement, MAX_VCPUS};
use super::syntax::{Setting, Settings};
use super::values::{invalid, missing, value_error, Keys};
use super::vif::parse_vif;
use super::vif::VifSpec;
use protocol::boot::CMDLINE_MAX;
use protocol::memory::{MAX_RAM_MIB, MIN_RAM_MIB};
use std::path::PathBuf;

/// The keys this hypervisor reads; any other key draws a warning.
pub(crate) const USED_KEYS: &[&str] = &[
    "name",
    "type",
    "builder",
    "bootloader",
    "firmware",
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

/// Memory when `memory` is not given, in MiB: xl's default (libxl's 32 MiB).
const DEFAULT_MEMORY_MIB: u64 = 32;

/// The most memory whose size in bytes fits in 64 bits, in MiB.
const MAX_MEMORY_MIB: u64 = u64::MAX >> 20;

/// Builds the domain from the settings of the file named `source`. What
/// this hypervisor cannot run (an HVM guest, a bootloader, a device it
/// does not have) is refused first, whatever else the file holds; then
/// each key it takes is read in turn, with its checks beside it.
pub(crate) fn build(source: &str, settings: &Settings) -> Result<Parsed, ConfigError> {
    let keys = Keys { settings };
    let guest_type = refused::guest_type(&keys)?;
    refused::boot_from_disk(&keys)?;
    refused::devices(&keys)?;

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
    let name = name(&keys, source)?;
    let (memory_mib, maxmem_mib) = memory(&keys)?;
    let (vcpus, maxvcpus) = vcpus(&keys, &mut warnings)?;
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
                "{}: ramdisk: {v} is not loaded: this hypervisor's kernels boot without an initial ramdisk",
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
    let vifs = vifs(&keys, &mut warnings)?;

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

/// `name`: required, and one the core takes
/// ([`protocol::domain::check_name`]).
fn name(keys: &Keys<'_>, source: &str) -> Result<String, ConfigError> {
    match keys.string("name", "the domain name in quotes")? {
        Some((s, v)) => match protocol::domain::check_name(v) {
            Ok(()) => Ok(v.to_string()),
            Err(problem) => Err(invalid(s, format!("{v:?}: {problem}"))),
        },
        None => Err(missing(
            source,
            "name",
            "every domain needs a name, e.g. name = \"guest1\"",
        )),
    }
}

/// `memory` (what the core can give a domain) and `maxmem` (at least
/// `memory`; the guest cannot balloon up to it here).
fn memory(keys: &Keys<'_>) -> Result<(u64, u64), ConfigError> {
    let memory_mib = match keys.number("memory", "a number of MiB")? {
        None => DEFAULT_MEMORY_MIB,
        Some((s, n)) if !(MIN_RAM_MIB..=MAX_RAM_MIB).contains(&n) => {
            return Err(invalid(
                s,
                format!(
                    "{n} MiB is outside what a domain may have here: {MIN_RAM_MIB} to {MAX_RAM_MIB} MiB (RAM ends where the device hole starts)"
                ),
            ))
        }
        Some((_, n)) => n,
    };
    let maxmem_mib = match keys.number("maxmem", "a number of MiB")? {
        None => memory_mib,
        Some((s, n)) if n < memory_mib => {
            return Err(invalid(
                s,
                format!("{n} MiB is less than memory ({memory_mib} MiB)"),
            ))
        }
        Some((s, n)) if n > MAX_MEMORY_MIB => {
            return Err(invalid(
                s,
                format!("{n} MiB is more than a 64-bit machine can address"),
            ))
        }
        Some((_, n)) => n,
    };
    Ok((memory_mib, maxmem_mib))
}

/// `vcpus` (online at boot; 0 means 1, as in Xen) and `maxvcpus` (at
/// least `vcpus`; 0 means unset, as in Xen), each at most [`MAX_VCPUS`].
/// A domain may have more vCPUs than the host has CPUs, as Xen allows.
fn vcpus(keys: &Keys<'_>, warnings: &mut Vec<String>) -> Result<(u8, u8), ConfigError> {
    let too_many = |s: &Setting, n: u64| {
        invalid(
            s,
            format!(
                "{n} is more than the {MAX_VCPUS} vCPUs a domain may have here (this hypervisor's cap; KVM allows more)"
            ),
        )
    };
    let vcpus = match keys.number("vcpus", "a number of vCPUs")? {
        None => 1,
        Some((s, 0)) => {
            warnings.push(format!("{}: vcpus: 0 means 1, as in Xen", s.at));
            1
        }
        Some((s, n)) if n > u64::from(MAX_VCPUS) => return Err(too_many(s, n)),
        Some((_, n)) => n as u8,
    };
    let maxvcpus = match keys.number("maxvcpus", "a number of vCPUs")? {
        None | Some((_, 0)) => vcpus,
        Some((s, n)) if n > u64::from(MAX_VCPUS) => return Err(too_many(s, n)),
        Some((s, n)) if n < u64::from(vcpus) => {
            return Err(invalid(s, format!("{n} is less than vcpus ({vcpus})")))
        }
        Some((_, n)) => n as u8,
    };
    Ok((vcpus, maxvcpus))
}

/// An example disk entry, for messages.
const DISK_EXAMPLE: &str = "/images/g.img,raw,xvda,rw";

/// The disks of `disk = [...]`; warns of Xen parameters that are not used.
fn disks(keys: &Keys<'_>, warnings: &mut Vec<String>) -> Result<Vec<DiskSpec>, ConfigError> {
    let mut disks: Vec<DiskSpec> = Vec::new();
    for (at, index, entry) in keys.entries("disk", "disk specification", DISK_EXAMPLE)? {
        let fail = |message: &dyn std::fmt::Display| {
            value_error(&at, "disk", format!("entry {index} ('{entry}'): {message}"))
        };
        if entry.trim().is_empty() {
            let message = format!(
                "entry {index} is empty: a disk needs at least a target and a vdev, e.g. '{DISK_EXAMPLE}'"
            );
            return Err(value_error(&at, "disk", message));
        }
        let parsed = parse_disk(entry).map_err(|e| fail(&e))?;
        let vdev = &parsed.spec.vdev;
        if let Some(first) = disks.iter().position(|d| &d.vdev == vdev) {
            let message = format!("vdev {vdev} is already used by entry {}", first + 1);
            return Err(fail(&message));
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
fn vifs(keys: &Keys<'_>, warnings: &mut Vec<String>) -> Result<Vec<VifSpec>, ConfigError> {
    let mut vifs: Vec<VifSpec> = Vec::new();
    for (at, index, entry) in keys.entries("vif", "vif specification", "bridge=xenbr0")? {
        let fail = |message: &dyn std::fmt::Display| {
            value_error(&at, "vif", format!("entry {index} ('{entry}'): {message}"))
        };
        let parsed = parse_vif(entry).map_err(|e| fail(&e))?;
        for ignored in &parsed.ignored {
            warnings.push(format!("{at}: vif: entry {index}: {ignored}"));
        }
        let vif = parsed.spec;
        if let Some(mac) = &vif.mac {
            if let Some(first) = vifs.iter().position(|v| v.mac.as_ref() == Some(mac)) {
                let message = format!("mac {mac} is already used by entry {}", first + 1);
                return Err(fail(&message));
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
    let (line, from) =
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
            (v.to_string(), Some(s))
        } else {
            let parts: Vec<String> = [
                root.map(|(_, r)| format!("root={r}")),
                extra.map(|(_, e)| e.to_string()),
            ]
            .into_iter()
            .flatten()
            .collect();
            (parts.join(" "), extra.or(root).map(|(s, _)| s))
        };
    match from {
        Some(s) if line.len() > CMDLINE_MAX => Err(invalid(
            s,
            format!(
                "the kernel command line is {} bytes, more than the {CMDLINE_MAX} the boot protocol carries",
                line.len()
            ),
        )),
        _ => Ok(line),
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
