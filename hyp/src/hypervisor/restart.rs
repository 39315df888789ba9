//! Restarting Domain-0 under running guests. Domain-0 is a KVM guest, so
//! the core can boot a new one while the guests keep running: the new
//! Domain-0 is a fresh VM with fresh vCPUs and a freshly loaded kernel,
//! over the same RAM, so that the pages the core owns there (the reserved
//! region: the backend ring, the ioreq pages, every page lent from the
//! pool to device setup, the foreign windows' page tables) survive.
//!
//! What the core does, in order: wait for the old vCPU threads; zero the
//! old kernel's RAM and load the new one; move the reserved region (its
//! foreign windows become memory slots of the new VM) and every port of
//! Domain-0 (its peers keep their ends and port numbers) to the new VM;
//! hold every guest access the old Domain-0 had not answered, and each
//! new one; make the new Domain-0 held. Device setup then rebuilds what
//! it lent the old one, releases it ([`Hypervisor::release_domain`]),
//! replays the devices on the backend ring and, once the new Domain-0
//! has read them all, hands it the held accesses
//! ([`Hypervisor::requeue_ioreqs`]).

use super::create::{boot_info, build_vm_over};
use super::{join_vcpus, Hypervisor};
use crate::domain::{Domain, DomainConfig};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::evtchn::CONTROL_GSI;
use crate::mmio::MmioMap;
use crate::reserved::RESERVED_BYTES;
use crate::{boot, kick};
use protocol::boot::BootInfo;
use protocol::domain::{DomId, DomainState, DOM0};
use std::sync::Arc;
use std::time::Instant;

impl Hypervisor {
    /// Boots a fresh Domain-0 from `config` in place of the one that
    /// stopped (crashed or shut down), under the running guests. The new
    /// one is held: its vCPUs run after [`Hypervisor::release_domain`].
    /// Guest register accesses wait for [`Hypervisor::requeue_ioreqs`].
    /// Returns how many were waiting already.
    ///
    /// On an error the stopped Domain-0 stays in place: the caller gives
    /// up on it ([`Hypervisor::destroy`] after the guests).
    pub fn restart_dom0(&self, config: &DomainConfig) -> Result<usize> {
        config.validate()?;
        let old = self.domain(DOM0).ok_or(Error::NoDom0)?;
        if !old.state().is_final() {
            return Err(Error::Dom0StillRunning);
        }
        if config.memory_mib != old.memory_mib {
            return Err(Error::Dom0RamChanged(old.memory_mib));
        }
        let reserved = old.reserved.clone().ok_or(Error::NoDom0)?;
        join_vcpus(&old);
        let started = Instant::now();
        // Everything below the reserved region is the old kernel's, and so
        // is the trace ring above it.
        let ram = old.ram.clone();
        ram.zero(0, reserved.start);
        let top = reserved.start + RESERVED_BYTES;
        ram.zero(top, ram.size() - top);
        let built = build_vm_over(&self.core, config, true, ram)?;
        reserved.move_to(Arc::clone(built.vm()))?;
        self.core
            .evtchn()
            .move_domain(DOM0, Arc::clone(built.vm()))?;
        let requeued = self.hold_ioreqs();
        let info = BootInfo {
            reserved_start: reserved.start,
            backend_ring: reserved.backend_ring(),
            ..boot_info(config, &built, DOM0, 0)
        };
        boot::write_boot_info(built.ram(), &info);
        let (domain, vcpus) = built.into_domain(
            config,
            DOM0,
            0,
            Some(reserved),
            MmioMap::take_from(&old.mmio),
            true,
            Instant::now(),
        );
        let domain = Arc::new(domain);
        self.core
            .registry()
            .domains
            .insert(DOM0, Arc::clone(&domain));
        // The old VM goes when its last handle does; its vCPUs are gone.
        let _ = old.vm.unregister_irqfd(&old.control_irq, CONTROL_GSI);
        drop(old);
        self.spawn_vcpus(&domain, vcpus)?;
        tracing::info!(
            domid = DOM0,
            "Domain-0 rebuilt in {} ms ({requeued} guest accesses wait for it)",
            started.elapsed().as_millis()
        );
        self.core.events.publish(Event::State {
            domid: DOM0,
            state: DomainState::Paused,
            message: None,
        });
        Ok(requeued)
    }

    /// Holds every guest access a stopped Domain-0 had not answered, and
    /// each new one, for the next one; forgets the servers that are gone.
    fn hold_ioreqs(&self) -> usize {
        let mut servers = self.core.ioreq_servers();
        servers.retain(|s| s.strong_count() > 0);
        servers
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .map(|s| s.hold())
            .sum()
    }

    /// Hands the guest accesses held since Domain-0 restarted
    /// ([`Hypervisor::restart_dom0`]) to the new one, and each new access
    /// from now on. Call it once the new Domain-0 has heard of every
    /// device: an access it served earlier could meet no device.
    pub fn requeue_ioreqs(&self) {
        for server in self.core.ioreq_servers().iter() {
            if let Some(server) = server.upgrade() {
                server.requeue();
            }
        }
    }

    /// Delivers a non-maskable interrupt to vCPU 0 of `domid` (`xl
    /// trigger DOM nmi`). The kernels treat it as Linux does with
    /// `panic_on_unrecovered_nmi`: they crash, with that reason.
    pub fn inject_nmi(&self, domid: DomId) -> Result<()> {
        let domain = self.running(domid)?;
        domain.request_nmi();
        kick::kick_all(&domain);
        Ok(())
    }

    /// Crashes `domid` at once, as a triple fault would (`xl trigger DOM
    /// reset`): its lifecycle action follows, a restart for Domain-0.
    pub fn crash(&self, domid: DomId, reason: &str) -> Result<()> {
        let domain = self.running(domid)?;
        tracing::error!(domid, "domain {} crashed: {reason}", domain.name());
        self.core
            .finish_domain(&domain, crate::domain::Life::Crashed, Some(reason.into()));
        Ok(())
    }

    /// The domain `domid`, if it has not stopped.
    fn running(&self, domid: DomId) -> Result<Arc<Domain>> {
        let domain = self.domain(domid).ok_or(Error::NoSuchDomain(domid))?;
        if domain.state().is_final() {
            return Err(Error::NotRunning(domid));
        }
        Ok(domain)
    }
}
