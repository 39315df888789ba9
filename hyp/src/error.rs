//! Errors the core reports to its callers.

use protocol::domain::DomId;
use protocol::hypercall::Errno;

/// Everything that can go wrong in a core operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/dev/kvm` could not be opened or a KVM ioctl failed.
    #[error("KVM: {what}: {source}")]
    Kvm {
        /// The operation that failed.
        what: &'static str,
        /// The error KVM returned.
        source: kvm_ioctls::Error,
    },
    /// `/dev/kvm` lacks a capability the core needs.
    #[error("KVM lacks {0}, which the core needs")]
    KvmLacks(&'static str),
    /// The GSI routing table could not be built.
    #[error("GSI routing table: {0:?}")]
    Routing(vmm_sys_util::fam::Error),
    /// Guest RAM could not be created or mapped.
    #[error(transparent)]
    Memory(#[from] crate::memory::MemoryError),
    /// The kernel image is not one the core can boot.
    #[error("kernel image: {0}")]
    Elf(#[from] crate::elf::ElfError),
    /// A domain configuration value is out of range.
    #[error("invalid domain configuration: {0}")]
    Config(#[from] ConfigError),
    /// No domain has this id.
    #[error("no domain with id {0}")]
    NoSuchDomain(DomId),
    /// Domain-0 is created first, and once.
    #[error("Domain-0 already exists")]
    Dom0Exists,
    /// The operation needs Domain-0, which is not running.
    #[error("Domain-0 is not running")]
    NoDom0,
    /// The host cannot spare the RAM.
    #[error("not enough memory for {asked_mib} MiB: {} MiB free for domains ({} MiB given to domains, {} MiB kept for the host, of {} MiB)", report.free_mib, report.domains_mib, report.reserve_mib, report.total_mib)]
    OutOfMemory {
        /// What the create asked for.
        asked_mib: u64,
        /// How the host's RAM was shared out.
        report: crate::host_memory::MemoryReport,
    },
    /// Another live domain has this name.
    #[error("a domain named '{0}' already exists")]
    NameTaken(String),
    /// Every domain id is in use.
    #[error("no free domain id")]
    NoFreeDomid,
    /// The domain is not running (it shut down, crashed or is dying).
    #[error("domain {0}: not running")]
    NotRunning(DomId),
    /// The domain is not paused.
    #[error("domain {0}: not paused")]
    NotPaused(DomId),
    /// The domain is not held for the toolstack.
    #[error("domain {0}: not held for set-up")]
    NotHeld(DomId),
    /// The domain's vCPU threads did not stop in time.
    #[error("domain {0}: vCPUs did not stop")]
    VcpusDidNotStop(DomId),
    /// Domain-0 keeps its name.
    #[error("Domain-0 cannot be renamed")]
    Dom0Rename,
    /// Domain-0 restarts only once it has stopped (crashed, shut down).
    #[error("Domain-0 is still running: stop it before it restarts")]
    Dom0StillRunning,
    /// A restarted Domain-0 reuses the RAM of the one before.
    #[error("a restarted Domain-0 must keep its {0} MiB of RAM")]
    Dom0RamChanged(u64),
    /// Domain-0 goes only once every guest has gone.
    #[error("Domain-0 cannot be destroyed while guests run")]
    Dom0HasGuests,
    /// Domain-0's RAM leaves no room for its kernel, some free RAM and the
    /// core's reserved region.
    #[error("Domain-0 has {ram_mib} MiB; its kernel and the core's reserved region need {needed_mib} MiB")]
    Dom0TooSmall {
        /// RAM given.
        ram_mib: u64,
        /// RAM needed.
        needed_mib: u64,
    },
    /// Every event-channel port of the domain is in use.
    #[error("domain {domid} has all its {} event-channel ports in use (a guest takes one of Domain-0's, and each of its devices two or three more); destroy a guest, or raise NR_PORTS in protocol/src/evtchn.rs", protocol::evtchn::NR_PORTS - 1)]
    PortsExhausted {
        /// The domain.
        domid: DomId,
    },
    /// The host could not make an eventfd to wire a port.
    #[error("domain {domid}: the host could not make an eventfd for a port (out of file descriptors? see `ulimit -n` and hypd's log)")]
    PortWiring {
        /// The domain.
        domid: DomId,
    },
    /// An event-channel operation on the domain's ports failed.
    #[error("domain {domid}: event channel: {}", errno.name())]
    Port {
        /// The domain whose port it was.
        domid: DomId,
        /// Why.
        errno: Errno,
    },
    /// An MMIO range a caller asked for is not one the core can route.
    #[error("domain {domid}: MMIO range {base:#x} (+{len:#x}): {why}")]
    MmioRange {
        /// The domain.
        domid: DomId,
        /// First address.
        base: u64,
        /// Length.
        len: u64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Domain-0's reserved RAM has no run of free pages that long.
    #[error("Domain-0's reserved RAM has no {0} free contiguous pages")]
    ReservedFull(usize),
    /// Domain-0's backend ring page was handed out already.
    #[error("Domain-0's backend ring has its producer already")]
    BackendRingTaken,
    /// Every foreign-window slot of Domain-0 is in use.
    #[error("Domain-0 has no free foreign window")]
    NoFreeWindow,
    /// A foreign window a caller asked for does not fit.
    #[error("domain {domid}: foreign window {start:#x} (+{len:#x}): {why}")]
    BadWindow {
        /// The guest.
        domid: DomId,
        /// First guest-physical address.
        start: u64,
        /// Length.
        len: u64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A host resource (thread, eventfd, ...) could not be had.
    #[error("host: {0}")]
    Host(#[from] std::io::Error),
}

/// A [`crate::DomainConfig`] value the core refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Empty, longer than 64 bytes, or with control characters.
    #[error("name '{0}' must be 1 to 64 printable characters")]
    BadName(String),
    /// A number, which `xl` would read as a domain id.
    #[error("name '{0}' is a number: it would read as a domain id")]
    NumericName(String),
    /// RAM outside what a domain may have.
    #[error("memory {mib} MiB is outside {min}..={max} MiB")]
    Memory {
        /// What was asked.
        mib: u64,
        /// Least allowed.
        min: u64,
        /// Most allowed.
        max: u64,
    },
    /// vCPUs outside what a domain may have.
    #[error("vcpus {vcpus} is outside 1..={max}")]
    Vcpus {
        /// What was asked.
        vcpus: u8,
        /// Most allowed.
        max: usize,
    },
    /// A command line longer than the boot info holds.
    #[error("cmdline is {len} bytes, more than {max}")]
    Cmdline {
        /// Its length.
        len: usize,
        /// Most allowed.
        max: usize,
    },
    /// RAM too small for the boot page tables and the kernel.
    #[error("RAM too small for the boot page tables")]
    RamTooSmall,
}

/// The error for `errno` from an event-channel operation on `domid`'s
/// ports, saying which limit when it is one.
pub(crate) fn port_error(domid: DomId, errno: Errno) -> Error {
    match errno {
        Errno::NoSpc => Error::PortsExhausted { domid },
        Errno::NoMem => Error::PortWiring { domid },
        errno => Error::Port { domid, errno },
    }
}

/// Shorthand for the core's results.
pub type Result<T> = std::result::Result<T, Error>;

/// Maps a KVM ioctl error into [`Error::Kvm`] naming the operation.
pub(crate) fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
    move |source| Error::Kvm { what, source }
}
