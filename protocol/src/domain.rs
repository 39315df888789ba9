//! Domain identity, state and shutdown reasons.

use serde::{Deserialize, Serialize};

/// A domain identifier. Domain 0 is the privileged service VM.
pub type DomId = u16;

/// The privileged service VM's domain id.
pub const DOM0: DomId = 0;

/// Most vCPUs a domain can have: this protocol's cap, well below KVM's
/// limit here (`KVM_CAP_MAX_VCPUS`, 1024). Each vCPU is a host thread, so
/// a domain may have more vCPUs than the host has CPUs (overcommitted, as
/// Xen allows); the cap bounds what every kernel sets aside per vCPU and
/// the per-vCPU arrays of the shared page and the ioreq page.
pub const MAX_VCPUS: usize = 32;

/// Longest domain name, in bytes.
pub const NAME_MAX: usize = 64;

/// Why a domain name cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameProblem {
    /// It is empty.
    Empty,
    /// It is longer than [`NAME_MAX`] bytes.
    TooLong,
    /// It holds a control character (a NUL, a newline, an escape...).
    Control,
    /// It is a number, which `xl` would read as a domain id.
    Numeric,
}

impl core::fmt::Display for NameProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Empty => "a domain name must not be empty",
            Self::TooLong => "a domain name is at most 64 bytes",
            Self::Control => "a domain name must not hold control characters",
            Self::Numeric => "a domain name must not be a number (xl would read it as a domain id)",
        })
    }
}

/// Checks a domain name, as the core does before it makes a domain.
pub fn check_name(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        Err(NameProblem::Empty)
    } else if name.len() > NAME_MAX {
        Err(NameProblem::TooLong)
    } else if name.chars().any(char::is_control) {
        Err(NameProblem::Control)
    } else if name.parse::<u32>().is_ok() {
        Err(NameProblem::Numeric)
    } else {
        Ok(())
    }
}

/// The largest domain id the core hands out (Xen reserves the ids above
/// `0x7FEF` for special domains).
pub const DOMID_MAX: DomId = 0x7FEF;

/// Why a domain shut down (Xen's `SHUTDOWN_*` codes, the subset we use).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u32)]
pub enum ShutdownReason {
    /// The guest asked to be switched off.
    Poweroff = 0,
    /// The guest asked to be restarted.
    Reboot = 1,
    /// The guest crashed: it panicked, faulted fatally or broke a rule.
    Crash = 3,
}

impl ShutdownReason {
    /// Decodes a reason from a hypercall argument.
    pub fn from_raw(raw: u64) -> Option<Self> {
        match raw {
            0 => Some(Self::Poweroff),
            1 => Some(Self::Reboot),
            3 => Some(Self::Crash),
            _ => None,
        }
    }

    /// The lower-case name Xen's tools print (`poweroff`, `reboot`, `crash`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Poweroff => "poweroff",
            Self::Reboot => "reboot",
            Self::Crash => "crash",
        }
    }
}

/// The life-cycle state of a domain, as `xl list` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DomainState {
    /// At least one vCPU is executing guest code (or could be).
    Running,
    /// Every vCPU is halted, waiting for an event.
    Blocked,
    /// Stopped by the toolstack; its vCPUs do not run until unpaused.
    Paused,
    /// The guest shut itself down with this reason; nothing runs any more.
    Shutdown(ShutdownReason),
    /// The guest crashed (panic, fatal fault, KVM error); nothing runs.
    Crashed,
    /// Being torn down.
    Dying,
}

impl DomainState {
    /// True once the domain can never run again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Shutdown(_) | Self::Crashed | Self::Dying)
    }

    /// The code `domctl_getdomaininfo` reports for this state
    /// ([`crate::hypercall::DomainInfo::state`]).
    pub const fn info_code(self) -> u32 {
        use crate::hypercall::info_state;
        match self {
            Self::Running => info_state::RUNNING,
            Self::Blocked => info_state::BLOCKED,
            Self::Paused => info_state::PAUSED,
            Self::Shutdown(_) => info_state::SHUTDOWN,
            Self::Crashed => info_state::CRASHED,
            Self::Dying => info_state::DYING,
        }
    }
}
