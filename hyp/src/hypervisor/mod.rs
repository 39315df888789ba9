//! [`Hypervisor`]: the handle on the core, and the operations on domains'
//! lives ([`create`]: making one; [`seams`]: what device setup may ask of
//! the core).

mod create;
mod restart;
mod seams;

use crate::domain::{Domain, DomainConfig, Life, Status};
use crate::error::{kvm, Error, Result};
use crate::events::Event;
use crate::evtchn::CONTROL_GSI;
use crate::kick;
use crate::state::Core;
use kvm_bindings::KVM_MAX_CPUID_ENTRIES;
use kvm_ioctls::{Cap, Kvm};
use protocol::boot::ControlRequest;
use protocol::domain::{DomId, DomainState, DOM0};
use protocol::memory::SHARED_INFO_ADDR;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long pause and destroy wait for vCPU threads to respond.
const VCPU_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The core: owns `/dev/kvm` and every domain.
///
/// Dropping it destroys every domain.
pub struct Hypervisor {
    core: Arc<Core>,
}

impl Hypervisor {
    /// Opens `/dev/kvm` and checks it has what the core needs.
    pub fn new() -> Result<Self> {
        let kvm_fd = Kvm::new().map_err(kvm("opening /dev/kvm"))?;
        for (cap, name) in [
            (Cap::Irqchip, "an in-kernel irqchip"),
            (Cap::Irqfd, "irqfd"),
            (Cap::Ioeventfd, "ioeventfd"),
            (Cap::IrqRouting, "IRQ routing"),
            (Cap::UserMemory, "user memory"),
        ] {
            if !kvm_fd.check_extension(cap) {
                return Err(Error::KvmLacks(name));
            }
        }
        let cpuid = kvm_fd
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(kvm("KVM_GET_SUPPORTED_CPUID"))?;
        kick::install_handler();
        Ok(Self {
            core: Arc::new(Core::new(kvm_fd, cpuid)),
        })
    }

    /// A receiver of every [`Event`] from now on.
    pub fn subscribe(&self) -> Receiver<Event> {
        self.core.events.subscribe()
    }

    /// Boots the privileged service VM as domain 0. Must come first.
    pub fn create_dom0(&self, config: DomainConfig) -> Result<DomId> {
        self.create(config, true, false)
    }

    /// Creates an unprivileged domain; Dom0 must be running. Either the
    /// domain is created and started, or nothing is left behind.
    pub fn create_domain(&self, config: DomainConfig) -> Result<DomId> {
        self.create(config, false, false)
    }

    /// Creates an unprivileged domain whose vCPUs do not run until
    /// [`Hypervisor::release_domain`]: the toolstack gives it its devices
    /// meanwhile (libxl creates domains paused for the same reason). It
    /// shows as paused; `pause` and `unpause` act on the user's pause
    /// alone, so they neither start it early nor are lost.
    pub fn create_domain_held(&self, config: DomainConfig) -> Result<DomId> {
        self.create(config, false, true)
    }

    /// Lets a domain made with [`Hypervisor::create_domain_held`] run
    /// (unless the user paused it).
    pub fn release_domain(&self, domid: DomId) -> Result<()> {
        self.lift(domid, |s| &mut s.held, Error::NotHeld)
    }

    /// The domain with this id.
    pub fn domain(&self, domid: DomId) -> Option<Arc<Domain>> {
        self.core.registry().domains.get(&domid).cloned()
    }

    /// Every domain, by id.
    pub fn domains(&self) -> Vec<Arc<Domain>> {
        self.core.registry().domains.values().cloned().collect()
    }

    /// How the host's RAM is shared out between the host and the domains.
    pub fn memory(&self) -> crate::host_memory::MemoryReport {
        crate::host_memory::MemoryReport::new(
            self.core.host_total_mib,
            self.core
                .host_reserve_mib
                .load(std::sync::atomic::Ordering::Relaxed),
            self.core.registry().committed_mib(),
        )
    }

    /// Sets the RAM kept for the host (default
    /// [`crate::host_memory::DEFAULT_HOST_RESERVE_MIB`]); creates that
    /// would leave it less are refused.
    pub fn set_host_reserve_mib(&self, mib: u64) {
        self.core
            .host_reserve_mib
            .store(mib, std::sync::atomic::Ordering::Relaxed);
    }

    /// Number of ports `domid` has open.
    pub fn open_ports(&self, domid: DomId) -> usize {
        self.core.evtchn().open_ports(domid)
    }

    /// Stops every vCPU of `domid` until [`Hypervisor::unpause`].
    pub fn pause(&self, domid: DomId) -> Result<()> {
        let domain = self.domain(domid).ok_or(Error::NoSuchDomain(domid))?;
        let mut status = domain.status();
        if status.life != Life::Alive {
            return Err(Error::NotRunning(domid));
        }
        status.paused = true;
        drop(status);
        let deadline = Instant::now() + VCPU_RESPONSE_TIMEOUT;
        loop {
            let live = domain
                .threads
                .lock()
                .expect("vcpu threads lock")
                .iter()
                .filter(|t| !t.handle.is_finished())
                .count();
            let status = domain.status();
            if status.parked >= live || status.life != Life::Alive {
                break;
            }
            drop(status);
            kick::kick_all(&domain);
            let status = domain.status();
            let _ = domain
                .status_changed
                .wait_timeout(status, Duration::from_millis(2));
            if Instant::now() > deadline {
                return Err(Error::VcpusDidNotStop(domid));
            }
        }
        self.core.events.publish(Event::State {
            domid,
            state: DomainState::Paused,
            message: None,
        });
        Ok(())
    }

    /// Lets a paused domain run again.
    pub fn unpause(&self, domid: DomId) -> Result<()> {
        self.lift(domid, |s| &mut s.paused, Error::NotPaused)
    }

    /// Clears one of the two things that keep a domain's vCPUs parked (the
    /// user's pause, the toolstack's hold), or says it was not set.
    fn lift(
        &self,
        domid: DomId,
        flag: fn(&mut Status) -> &mut bool,
        not_set: fn(DomId) -> Error,
    ) -> Result<()> {
        let domain = self.domain(domid).ok_or(Error::NoSuchDomain(domid))?;
        let mut status = domain.status();
        if !std::mem::replace(flag(&mut status), false) {
            return Err(not_set(domid));
        }
        drop(status);
        domain.status_changed.notify_all();
        self.core.events.publish(Event::State {
            domid,
            state: domain.state(),
            message: None,
        });
        Ok(())
    }

    /// Gives a domain a new name, unique among live domains.
    pub fn rename(&self, domid: DomId, name: &str) -> Result<()> {
        if domid == DOM0 {
            return Err(Error::Dom0Rename);
        }
        crate::domain::validate_name(name)?;
        let registry = self.core.registry();
        let domain = registry
            .domains
            .get(&domid)
            .ok_or(Error::NoSuchDomain(domid))?;
        let taken_by_other = registry.reserved_names.contains(name)
            || registry
                .domains
                .values()
                .any(|d| d.id != domid && d.name() == name);
        if taken_by_other {
            return Err(Error::NameTaken(name.into()));
        }
        *domain.name.lock().expect("domain name lock") = name.to_string();
        Ok(())
    }

    /// The KVM API version of `/dev/kvm`.
    pub fn kvm_api_version(&self) -> i32 {
        self.core.kvm.get_api_version()
    }

    /// Asks the guest to shut itself down (`xl shutdown` / `xl reboot`).
    pub fn request_shutdown(&self, domid: DomId, request: ControlRequest) -> Result<()> {
        let domain = self.domain(domid).ok_or(Error::NoSuchDomain(domid))?;
        if domain.status().life != Life::Alive {
            return Err(Error::NotRunning(domid));
        }
        let offset = std::mem::offset_of!(protocol::boot::SharedInfo, control_request) as u64;
        domain
            .ram
            .write_u32(SHARED_INFO_ADDR + offset, request as u32);
        domain.control_irq.write(1)?;
        Ok(())
    }

    /// Waits until `domid` reaches a final state or `timeout` passes.
    pub fn wait_final(&self, domid: DomId, timeout: Duration) -> Option<DomainState> {
        let domain = self.domain(domid)?;
        let deadline = Instant::now() + timeout;
        let mut status = domain.status();
        while status.life == Life::Alive {
            let left = deadline.checked_duration_since(Instant::now())?;
            status = domain
                .status_changed
                .wait_timeout(status, left)
                .expect("domain status lock")
                .0;
        }
        drop(status);
        Some(domain.state())
    }

    /// Destroys a domain at once: stops its vCPUs, closes its ports and
    /// frees its VM, RAM and eventfds. Domain-0 goes only with the core.
    pub fn destroy(&self, domid: DomId) -> Result<()> {
        if domid == DOM0 && self.core.registry().domains.len() > 1 {
            return Err(Error::Dom0HasGuests);
        }
        self.teardown(domid)
    }

    fn teardown(&self, domid: DomId) -> Result<()> {
        let domain = self
            .core
            .registry()
            .domains
            .remove(&domid)
            .ok_or(Error::NoSuchDomain(domid))?;
        domain.finish(Life::Dying, None);
        join_vcpus(&domain);
        // Handlers hold backends and their memory: let them go now.
        domain.mmio.clear();
        let _ = domain.vm.unregister_irqfd(&domain.control_irq, CONTROL_GSI);
        let mut evtchn = self.core.evtchn();
        evtchn.remove_domain(domid);
        if domain.control_port != 0 {
            let _ = evtchn.close(DOM0, domain.control_port);
        }
        drop(evtchn);
        self.core.events.publish(Event::State {
            domid,
            state: DomainState::Dying,
            message: None,
        });
        if Arc::strong_count(&domain) > 1 {
            tracing::warn!(
                domid,
                "domain still referenced after destroy; freed when released"
            );
        }
        tracing::info!(domid, "destroyed domain {}", domain.name());
        Ok(())
    }
}

/// Waits for the vCPU threads of `domain` (in a final state) to stop, and
/// joins them.
fn join_vcpus(domain: &Domain) {
    let deadline = Instant::now() + VCPU_RESPONSE_TIMEOUT;
    while domain
        .threads
        .lock()
        .expect("vcpu threads lock")
        .iter()
        .any(|t| !t.handle.is_finished())
    {
        kick::kick_all(domain);
        std::thread::sleep(Duration::from_millis(1));
        if Instant::now() > deadline {
            tracing::error!(
                domid = domain.id,
                "vCPU threads are slow to stop; still waiting"
            );
        }
    }
    for thread in std::mem::take(&mut *domain.threads.lock().expect("vcpu threads lock")) {
        let _ = thread.handle.join();
    }
}

impl Drop for Hypervisor {
    fn drop(&mut self) {
        let ids: Vec<DomId> = self.core.registry().domains.keys().rev().copied().collect();
        for domid in ids {
            let _ = self.teardown(domid);
        }
    }
}
