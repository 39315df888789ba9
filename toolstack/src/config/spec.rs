//! What a parsed xl.cfg file describes: the domain ([`DomainSpec`]) and
//! the choices xl.cfg(5) offers for it.

use super::disk::DiskSpec;
use super::vif::VifSpec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The most vCPUs a domain may have ([`protocol::domain::MAX_VCPUS`]).
pub const MAX_VCPUS: u8 = protocol::domain::MAX_VCPUS as u8;

/// The result of parsing: the domain and what the user should be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The domain to build.
    pub spec: DomainSpec,
    /// Warnings, each a full sentence starting with the file name.
    pub warnings: Vec<String>,
}

/// A domain as an xl.cfg file describes it (its JSON is what `xl create -n` prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainSpec {
    /// The domain's name (`name`, required).
    pub name: String,
    /// How the guest boots (`type`, default `pv`).
    pub guest_type: GuestType,
    /// Memory at boot in MiB (`memory`, default 32 as in xl).
    pub memory_mib: u64,
    /// The most memory the domain may have, in MiB (`maxmem`, default `memory`).
    pub maxmem_mib: u64,
    /// vCPUs online at boot (`vcpus`, default 1, at most [`MAX_VCPUS`]).
    pub vcpus: u8,
    /// vCPUs the guest may bring up (`maxvcpus`, default `vcpus`); taken
    /// for Xen's sake, but the domain has `vcpus` vCPUs (no vCPU hotplug).
    pub maxvcpus: u8,
    /// The kernel image (`kernel`, required).
    pub kernel: PathBuf,
    /// The ramdisk (`ramdisk`); not loaded, with a warning (this
    /// hypervisor's kernels need none).
    pub ramdisk: Option<PathBuf>,
    /// The kernel command line: `cmdline`, or else `root=ROOT EXTRA` from `root` and `extra`.
    pub cmdline: String,
    /// What to do when the guest powers off (`on_poweroff`, default destroy).
    pub on_poweroff: Action,
    /// What to do when the guest reboots (`on_reboot`, default restart).
    pub on_reboot: Action,
    /// What to do when the guest crashes (`on_crash`, default destroy).
    pub on_crash: Action,
    /// Virtual block devices (`disk`).
    pub disks: Vec<DiskSpec>,
    /// Virtual network interfaces (`vif`).
    pub vifs: Vec<VifSpec>,
    /// Where the domain's device backends run (`backend_placement`).
    pub placement: Placement,
}

/// How a guest boots (key `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuestType {
    /// A paravirtualised guest, booted from its kernel (`pv`, the default).
    #[default]
    Pv,
    /// A PVH guest: hardware virtualisation, no device model (`pvh`).
    Pvh,
}

impl GuestType {
    /// The name as written in xl.cfg (`pv`, `pvh`).
    pub fn as_str(self) -> &'static str {
        match self {
            GuestType::Pv => "pv",
            GuestType::Pvh => "pvh",
        }
    }
}

/// What to do when a domain shuts down, reboots or crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Destroy the domain (`destroy`).
    Destroy,
    /// Destroy it and create a new one from the same configuration (`restart`).
    Restart,
    /// Keep it for inspection until `xl destroy` (`preserve`).
    Preserve,
    /// Rename it, then create a new one from the same configuration (`rename-restart`).
    RenameRestart,
    /// Write a core dump, then destroy it (`coredump-destroy`).
    CoredumpDestroy,
    /// Write a core dump, then restart it (`coredump-restart`).
    CoredumpRestart,
}

impl Action {
    /// Every action, in the order Xen's manual lists them.
    pub const ALL: [Action; 6] = [
        Action::Destroy,
        Action::Restart,
        Action::Preserve,
        Action::RenameRestart,
        Action::CoredumpDestroy,
        Action::CoredumpRestart,
    ];

    /// The name as Xen spells it (`rename-restart`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Destroy => "destroy",
            Action::Restart => "restart",
            Action::Preserve => "preserve",
            Action::RenameRestart => "rename-restart",
            Action::CoredumpDestroy => "coredump-destroy",
            Action::CoredumpRestart => "coredump-restart",
        }
    }

    /// The action Xen spells `name`, if any.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// Where a domain's device backends run (our key `backend_placement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// In the Dom0 service VM, as in Xen (`service-vm`, the default).
    #[default]
    ServiceVm,
    /// In the hypervisor core's own process, as QEMU/KVM does (`host`).
    Host,
}

impl Placement {
    /// The name as written in xl.cfg (`service-vm`, `host`).
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::ServiceVm => "service-vm",
            Placement::Host => "host",
        }
    }
}

impl std::fmt::Display for GuestType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
