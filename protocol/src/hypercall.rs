//! The hypercall ABI.
//!
//! A hypercall is an 8-byte read of [`crate::memory::HYPERCALL_ADDR`], in
//! ring 0 or ring 3. No RAM is behind that address, so the read exits to the
//! core's vCPU thread, which reads the registers, performs the operation and
//! completes the read with the result:
//!
//! | register | meaning |
//! |---|---|
//! | `rdi` | operation, an [`Op`] |
//! | `rsi`, `rdx`, `r10`, `r8` | arguments 1 to 4 |
//! | `rax` (loaded by the read) | result: `>= 0` success, `< 0` an [`Errno`] |
//!
//! Pointers are guest-physical addresses (kernels identity-map their RAM).
//! The core checks that every buffer lies inside the caller's RAM.

/// Hypercall operation numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Op {
    /// `console_write(ptr, len)`: append `len <= MAX_CONSOLE_WRITE` bytes to
    /// the domain's console. Returns the number of bytes taken.
    ConsoleWrite = 1,
    /// `sched_yield()`: give up the host CPU for a moment.
    SchedYield = 2,
    /// `sched_shutdown(reason, msg_ptr, msg_len)`: stop the domain with a
    /// [`crate::domain::ShutdownReason`] and an optional message (the panic
    /// message of a crash). Does not return.
    SchedShutdown = 3,
    /// `evtchn_alloc_unbound(remote_domid)`: allocate a local port that
    /// `remote_domid` may bind. Returns the port.
    EvtchnAllocUnbound = 10,
    /// `evtchn_bind_interdomain(remote_domid, remote_port)`: connect a new
    /// local port to `remote_port`, which `remote_domid` allocated unbound
    /// for this domain. Returns the local port.
    EvtchnBindInterdomain = 11,
    /// `evtchn_close(port)`: close a local port. The remote end of an
    /// interdomain channel goes back to unbound.
    EvtchnClose = 12,
    /// `evtchn_status(port)`: returns `status | remote_domid << 8 |
    /// remote_port << 32` with `status` a [`crate::evtchn::PortStatus`].
    EvtchnStatus = 13,
    /// `report(ptr, len)`: hand the toolstack a postcard-encoded
    /// [`crate::report::Report`] of at most `MAX_REPORT` bytes.
    Report = 20,
    /// Privileged. `domctl_getdomaininfo(domid, out_ptr)`: write a
    /// [`DomainInfo`] for `domid` at `out_ptr`.
    DomctlGetDomainInfo = 100,
    /// Privileged. `console_write_for(domid, ptr, len)`: append bytes to
    /// another domain's console (Dom0's console backend relaying a guest's
    /// virtio-console output).
    ConsoleWriteFor = 101,
}

impl Op {
    /// Decodes an operation number; `None` for an unknown one.
    pub fn from_raw(raw: u64) -> Option<Self> {
        Some(match raw {
            1 => Self::ConsoleWrite,
            2 => Self::SchedYield,
            3 => Self::SchedShutdown,
            10 => Self::EvtchnAllocUnbound,
            11 => Self::EvtchnBindInterdomain,
            12 => Self::EvtchnClose,
            13 => Self::EvtchnStatus,
            20 => Self::Report,
            100 => Self::DomctlGetDomainInfo,
            101 => Self::ConsoleWriteFor,
            _ => return None,
        })
    }

    /// True for operations only the privileged domain (Dom0) may call.
    pub fn is_privileged(self) -> bool {
        matches!(self, Self::DomctlGetDomainInfo | Self::ConsoleWriteFor)
    }
}

/// Longest console write one hypercall takes.
pub const MAX_CONSOLE_WRITE: u64 = 4096;
/// Longest shutdown message the core keeps.
pub const MAX_SHUTDOWN_MESSAGE: u64 = 1024;
/// Largest report a guest may hand over.
pub const MAX_REPORT: u64 = 4096;

/// Errors a hypercall returns, as negated Linux/Xen errno values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Errno {
    /// The caller lacks the privilege for this operation.
    Perm = -1,
    /// No such port or object.
    NoEnt = -2,
    /// No such domain.
    Srch = -3,
    /// The host could not spare what the operation needs (an eventfd).
    NoMem = -12,
    /// A buffer lies outside the caller's RAM.
    Fault = -14,
    /// The object is in use or in the wrong state.
    Busy = -16,
    /// An argument is invalid (for example a closed port).
    Inval = -22,
    /// No free port is left.
    NoSpc = -28,
    /// Unknown operation.
    NoSys = -38,
}

impl Errno {
    /// Decodes a negative hypercall result.
    pub fn from_raw(raw: i64) -> Option<Self> {
        Some(match raw {
            -1 => Self::Perm,
            -2 => Self::NoEnt,
            -3 => Self::Srch,
            -12 => Self::NoMem,
            -14 => Self::Fault,
            -16 => Self::Busy,
            -22 => Self::Inval,
            -28 => Self::NoSpc,
            -38 => Self::NoSys,
            _ => return None,
        })
    }

    /// The symbolic name (`EPERM`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Perm => "EPERM",
            Self::NoEnt => "ENOENT",
            Self::Srch => "ESRCH",
            Self::NoMem => "ENOMEM",
            Self::Fault => "EFAULT",
            Self::Busy => "EBUSY",
            Self::Inval => "EINVAL",
            Self::NoSpc => "ENOSPC",
            Self::NoSys => "ENOSYS",
        }
    }
}

/// What `domctl_getdomaininfo` writes (Xen's `xen_domctl_getdomaininfo`,
/// trimmed to what we track).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct DomainInfo {
    /// The domain's id.
    pub domid: u16,
    /// Number of vCPUs.
    pub vcpus: u16,
    /// State code: one of [`info_state`].
    pub state: u32,
    /// RAM in bytes.
    pub ram_bytes: u64,
    /// CPU time used so far, in nanoseconds.
    pub cpu_time_ns: u64,
}

/// The codes of [`DomainInfo::state`] ([`crate::domain::DomainState::info_code`]
/// gives them).
pub mod info_state {
    /// A vCPU runs or could run.
    pub const RUNNING: u32 = 0;
    /// Every vCPU is halted, waiting for an event.
    pub const BLOCKED: u32 = 1;
    /// Paused by the toolstack.
    pub const PAUSED: u32 = 2;
    /// Shut down (any reason but a crash).
    pub const SHUTDOWN: u32 = 3;
    /// Crashed.
    pub const CRASHED: u32 = 4;
    /// Being torn down.
    pub const DYING: u32 = 5;
}
