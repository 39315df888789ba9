//! [`Core`]: the state the hypervisor handle, every vCPU thread and every
//! seam share: `/dev/kvm`, the domain registry, the event channels and
//! the subscribers to events.

use crate::domain::{Domain, Life};
use crate::events::{Event, EventHub};
use crate::evtchn::EventChannels;
use crate::kick;
use kvm_bindings::CpuId;
use kvm_ioctls::Kvm;
use protocol::domain::DomId;
use protocol::hypercall::DomainInfo;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// What forwards guest accesses to Domain-0 and must hand the ones it
/// has not been answered to a restarted Domain-0 (an ioreq server).
pub(crate) trait Requeue: Send + Sync {
    /// Holds every unanswered access, and each new one, away from
    /// Domain-0 (it restarts); returns how many were waiting.
    fn hold(&self) -> usize;
    /// Hands the held accesses to the new Domain-0, and new ones from now.
    fn requeue(&self);
}

/// The live domains, by id, and the names of those being made.
pub(crate) struct Registry {
    pub domains: BTreeMap<DomId, Arc<Domain>>,
    pub next_domid: DomId,
    /// Names held by creates in progress, so two cannot take one name.
    pub reserved_names: BTreeSet<String>,
    /// Domain-0 is being made.
    pub dom0_being_made: bool,
    /// RAM of the creates in progress, in MiB.
    pub reserved_mib: u64,
}

impl Registry {
    /// RAM given to live domains and creates in progress, in MiB.
    pub fn committed_mib(&self) -> u64 {
        let live: u64 = self.domains.values().map(|d| d.memory_mib).sum();
        live + self.reserved_mib
    }

    /// True if a live domain, or one being made, has `name`.
    pub fn name_taken(&self, name: &str) -> bool {
        self.reserved_names.contains(name) || self.domains.values().any(|d| d.name() == name)
    }
}

/// The core's shared state.
pub(crate) struct Core {
    pub kvm: Kvm,
    /// The CPUID KVM supports, the base of every vCPU's.
    pub cpuid: CpuId,
    registry: Mutex<Registry>,
    evtchn: Mutex<EventChannels>,
    /// Every ioreq server made, for a Domain-0 restart to requeue their
    /// slots (dead ones are pruned then).
    ioreq_servers: Mutex<Vec<Weak<dyn Requeue>>>,
    pub events: EventHub,
    /// The host's RAM, in MiB.
    pub host_total_mib: u64,
    /// RAM kept for the host, in MiB.
    pub host_reserve_mib: AtomicU64,
}

impl Core {
    /// A core over `kvm` with no domains.
    pub fn new(kvm: Kvm, cpuid: CpuId) -> Self {
        Self {
            kvm,
            cpuid,
            registry: Mutex::new(Registry {
                domains: BTreeMap::new(),
                next_domid: 1,
                reserved_names: BTreeSet::new(),
                dom0_being_made: false,
                reserved_mib: 0,
            }),
            evtchn: Mutex::new(EventChannels::default()),
            ioreq_servers: Mutex::default(),
            events: EventHub::default(),
            host_total_mib: crate::host_memory::host_total_mib(),
            host_reserve_mib: AtomicU64::new(crate::host_memory::DEFAULT_HOST_RESERVE_MIB),
        }
    }

    /// Every domain's ports.
    pub fn evtchn(&self) -> MutexGuard<'_, EventChannels> {
        self.evtchn.lock().expect("event channel lock")
    }

    /// The ioreq servers made so far (some may be gone).
    pub fn ioreq_servers(&self) -> MutexGuard<'_, Vec<Weak<dyn Requeue>>> {
        self.ioreq_servers.lock().expect("ioreq servers lock")
    }

    /// The live domains.
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().expect("registry lock")
    }

    /// The live domain with this id.
    pub fn find(&self, domid: DomId) -> Option<Arc<Domain>> {
        self.registry().domains.get(&domid).cloned()
    }

    /// Appends `bytes` to `domain`'s console log, a line at a time.
    pub fn console_output(&self, domain: &Domain, bytes: &[u8]) {
        let _ = domain.first_output.set(domain.created.elapsed());
        let lines = domain.console.lock().expect("console lock").push(bytes);
        for line in lines {
            // Console output lives in its own bounded buffers (`hypd`'s
            // consoles, `xl console`), not in the daemon's log: only when
            // asked for (`HYPD_LOG=console=trace`), and escaped.
            tracing::trace!(
                target: "console",
                domid = domain.id,
                "{}",
                protocol::text::escape_controls(&line)
            );
            self.events.publish(Event::Console {
                domid: domain.id,
                line,
            });
        }
    }

    /// Puts `domain` in a final state, tells subscribers, and kicks its
    /// vCPUs out of the guest.
    pub fn finish_domain(&self, domain: &Domain, life: Life, message: Option<String>) {
        if domain.finish(life, message.clone()) {
            kick::kick_all(domain);
            self.events.publish(Event::State {
                domid: domain.id,
                state: domain.state(),
                message,
            });
        }
    }

    /// What `domctl_getdomaininfo` reports about `domid`.
    pub fn domain_info(&self, domid: DomId) -> Option<DomainInfo> {
        let domain = self.find(domid)?;
        Some(DomainInfo {
            domid,
            vcpus: u16::from(domain.vcpu_count),
            state: domain.state().info_code(),
            ram_bytes: domain.ram.size(),
            cpu_time_ns: domain.cpu_time().as_nanos() as u64,
        })
    }
}
