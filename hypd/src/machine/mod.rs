//! [`Machine`]: the core together with device setup for both placements,
//! what the daemon (and `xl demo`, `xl bench`, the tests) create domains
//! with. Creating a guest goes as in Xen's libxl: the core makes the
//! domain held (paused for the toolstack), device setup gives it its
//! devices and writes its device table, and only then do its vCPUs run.

use crate::devices::backend_ring::BackendRingWriter;
use crate::devices::claims::ImageClaims;
use crate::devices::set::{DeviceSet, Dom0Parts};
use crate::devices::uplink::Uplinks;
use crate::devices::{table, DeviceConfig, DeviceError, Dom0Doorbells, DoorbellMode, Placement};
use hyp::{Domain, DomainConfig, Hypervisor};
use protocol::device::GuestDevice;
use protocol::domain::{DomId, DOM0};
use protocol::memory::{PAGE_SIZE, QUEUE_SUBMIT_ADDR};
use protocol::report::BackendStats;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

mod restart;
pub mod restarts;
use restarts::Dom0Restarts;

/// How long taking a device away lets the guest stop using it.
const DETACH_GRACE: Duration = Duration::from_secs(1);

/// How long a new device waits for Domain-0 to read its announcement.
const ANNOUNCE_WAIT: Duration = Duration::from_secs(10);

/// A guest to create: what the core makes, and its devices.
#[derive(Clone, Debug)]
pub struct GuestConfig {
    /// The domain itself.
    pub domain: DomainConfig,
    /// Its devices, in order (they get windows in this order).
    pub devices: Vec<DeviceConfig>,
    /// Where their backends run.
    pub placement: Placement,
}

impl GuestConfig {
    /// A guest with no devices, served (later) by Domain-0.
    pub fn new(domain: DomainConfig) -> Self {
        Self {
            domain,
            devices: Vec::new(),
            placement: Placement::ServiceVm,
        }
    }
}

/// The core, and every guest's devices.
///
/// Dropping it destroys every domain, guests first.
pub struct Machine {
    core: Hypervisor,
    guests: Mutex<HashMap<DomId, Arc<DeviceSet>>>,
    /// Domain-0's backend ring, once Domain-0 runs.
    ring: Mutex<Option<Arc<BackendRingWriter>>>,
    /// Who uses which disk image.
    claims: ImageClaims,
    /// Domain-0's switches' uplinks, while Domain-0 runs.
    uplinks: Uplinks,
    /// Domain-0's hardware queues' doorbells, and its submit register.
    doorbells: Arc<Dom0Doorbells>,
    /// What Domain-0 was booted from, to boot it again.
    dom0_config: Mutex<Option<DomainConfig>>,
    /// Held for writing while Domain-0 restarts, for reading while a
    /// device is given or taken: the two never overlap.
    dom0_gate: RwLock<()>,
    /// Domain-0's restarts so far.
    restarts: Mutex<Dom0Restarts>,
}

impl Machine {
    /// Opens `/dev/kvm`; no domain runs yet.
    pub fn new() -> Result<Self, DeviceError> {
        Ok(Self {
            core: Hypervisor::new()?,
            guests: Mutex::default(),
            ring: Mutex::default(),
            claims: ImageClaims::default(),
            uplinks: Uplinks::default(),
            doorbells: Arc::default(),
            dom0_config: Mutex::default(),
            dom0_gate: RwLock::default(),
            restarts: Mutex::default(),
        })
    }

    /// Lends the hardware queues of disks attached from now on with the
    /// doorbell of `mode` ([`DoorbellMode`]).
    pub fn set_doorbell_mode(&self, mode: DoorbellMode) {
        self.doorbells.set_mode(mode);
    }

    /// The core, for everything that is not about devices (destroy a
    /// domain with [`Machine::destroy`], which takes its devices apart too).
    pub fn core(&self) -> &Hypervisor {
        &self.core
    }

    fn guests(&self) -> MutexGuard<'_, HashMap<DomId, Arc<DeviceSet>>> {
        self.guests.lock().expect("guests lock")
    }

    /// Domain-0's backend ring, if Domain-0 runs.
    fn ring(&self) -> Option<Arc<BackendRingWriter>> {
        self.ring.lock().expect("backend ring lock").clone()
    }

    /// Boots the service VM as Domain-0 and takes the producer's end of
    /// its backend ring.
    pub fn boot_dom0(&self, config: DomainConfig) -> Result<DomId, DeviceError> {
        let domid = self.core.create_dom0(config.clone())?;
        *self.dom0_config.lock().expect("dom0 config lock") = Some(config);
        let submit = Arc::clone(&self.doorbells) as Arc<dyn hyp::MmioHandler>;
        let taken = self
            .core
            .add_mmio_handler(domid, QUEUE_SUBMIT_ADDR, PAGE_SIZE, submit)
            .and_then(|()| self.core.take_backend_ring());
        match taken {
            Ok(page) => {
                let writer = Arc::new(BackendRingWriter::new(page));
                *self.ring.lock().expect("backend ring lock") = Some(writer);
                Ok(domid)
            }
            Err(e) => {
                let _ = self.core.destroy(domid);
                Err(e.into())
            }
        }
    }

    /// Creates a guest held by the core, gives it its devices, and lets it
    /// run (unless its config asks to stay paused). Either all of it
    /// happens, or nothing is left.
    pub fn create(&self, guest: GuestConfig) -> Result<DomId, DeviceError> {
        let GuestConfig {
            domain,
            devices,
            placement,
        } = guest;
        let domid = self.core.create_domain_held(domain)?;
        let record = Arc::new(DeviceSet::new(placement));
        self.guests().insert(domid, Arc::clone(&record));
        let ready = self
            .give_devices(domid, &record, &devices)
            .and_then(|()| Ok(self.core.release_domain(domid)?));
        match ready {
            Ok(()) => Ok(domid),
            Err(e) => {
                let _ = self.destroy(domid);
                Err(e)
            }
        }
    }

    /// The boot-time devices of a guest not yet running.
    fn give_devices(
        &self,
        domid: DomId,
        record: &DeviceSet,
        devices: &[DeviceConfig],
    ) -> Result<(), DeviceError> {
        let domain = self.domain(domid)?;
        for device in devices {
            self.add_device(record, &domain, device)?;
        }
        self.wait_dom0_heard(record)?;
        record.publish(&domain);
        Ok(())
    }

    /// Waits for Domain-0 to have read what `record`'s devices announced
    /// to it (nothing for the host model), so that the guest, told of
    /// them next, finds every one served: an access to a device Dom0 has
    /// not heard of would be answered as if there were none.
    fn wait_dom0_heard(&self, record: &DeviceSet) -> Result<(), DeviceError> {
        match self.ring() {
            Some(ring) if record.placement() == Placement::ServiceVm => {
                ring.wait_read(ANNOUNCE_WAIT)
            }
            _ => Ok(()),
        }
    }

    /// Gives `domain` the device `config` in `record`'s placement (not yet
    /// in its table).
    fn add_device(
        &self,
        record: &DeviceSet,
        domain: &Domain,
        config: &DeviceConfig,
    ) -> Result<(), DeviceError> {
        let _gate = self.dom0_gate.read().expect("dom0 gate");
        let ring = self.ring();
        let dom0 = Dom0Parts {
            ring: ring.as_deref(),
            uplinks: &self.uplinks,
            doorbells: &self.doorbells,
        };
        record.add(&self.core, dom0, &self.claims, domain, config)
    }

    fn domain(&self, domid: DomId) -> Result<Arc<Domain>, DeviceError> {
        Ok(self
            .core
            .domain(domid)
            .ok_or(hyp::Error::NoSuchDomain(domid))?)
    }

    /// The device record of a guest that is still running.
    fn running_guest(&self, domid: DomId) -> Result<(Arc<Domain>, Arc<DeviceSet>), DeviceError> {
        let domain = self.domain(domid)?;
        let record = self.guests().get(&domid).cloned();
        match record {
            Some(record) if domid != DOM0 && !domain.state().is_final() => Ok((domain, record)),
            _ => Err(DeviceError::NotAGuest(domid)),
        }
    }

    /// Gives a running guest a new device (`xl block-attach`): its backend
    /// starts serving it, then the guest is told through its shared page
    /// and its control vector.
    pub fn attach_device(&self, domid: DomId, device: DeviceConfig) -> Result<(), DeviceError> {
        let (domain, record) = self.running_guest(domid)?;
        self.add_device(&record, &domain, &device)?;
        if let Err(e) = self.wait_dom0_heard(&record) {
            let _gate = self.dom0_gate.read().expect("dom0 gate");
            let _ = record.remove(&self.core, self.ring().as_deref(), &domain, &device.vdev);
            return Err(e);
        }
        record.publish(&domain);
        self.core.raise_control(domid)?;
        tracing::info!(
            domid,
            "attached {} to domain {} ({})",
            device.vdev,
            domain.name(),
            record.placement().name()
        );
        Ok(())
    }

    /// Takes a device away from a guest (`xl block-detach`): the guest is
    /// told first and given a moment to stop using it; then its backend
    /// stops serving it and its wiring goes.
    pub fn detach_device(&self, domid: DomId, vdev: &str) -> Result<(), DeviceError> {
        let domain = self.domain(domid)?;
        let record = self
            .guests()
            .get(&domid)
            .cloned()
            .ok_or_else(|| DeviceError::NoSuchDevice(vdev.into()))?;
        let generation = record.withdraw(&domain, vdev)?;
        self.core.raise_control(domid)?;
        table::wait_ack(&domain, generation, DETACH_GRACE);
        let _gate = self.dom0_gate.read().expect("dom0 gate");
        record.remove(&self.core, self.ring().as_deref(), &domain, vdev)?;
        tracing::info!(domid, "detached {vdev} from domain {}", domain.name());
        Ok(())
    }

    /// Destroys a domain ([`Hypervisor::destroy`]), then takes its devices
    /// apart (also when the core no longer had it: a domain destroyed
    /// through [`Machine::core`] directly still gives its devices back).
    pub fn destroy(&self, domid: DomId) -> Result<(), DeviceError> {
        let destroyed = match self.core.destroy(domid) {
            Ok(()) => Ok(()),
            Err(e @ hyp::Error::NoSuchDomain(_)) => Err(e),
            Err(e) => return Err(e.into()),
        };
        let record = self.guests().remove(&domid);
        if let Some(record) = &record {
            let _gate = self.dom0_gate.read().expect("dom0 gate");
            record.detach(&self.core, self.ring().as_deref(), domid);
        }
        if domid == DOM0 {
            self.uplinks.clear(&self.core, None);
            *self.ring.lock().expect("backend ring lock") = None;
        }
        match (destroyed, record) {
            (Err(e), None) => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Domain-0's switches: each bridge with the tap of its uplink, in
    /// switch order.
    pub fn dom0_switches(&self) -> Vec<(String, String)> {
        self.uplinks.list()
    }

    /// The guest's current devices.
    pub fn devices(&self, domid: DomId) -> Vec<GuestDevice> {
        let record = self.guests().get(&domid).cloned();
        record.map_or(Vec::new(), |r| r.guest_devices())
    }

    /// Where the guest's device backends run.
    pub fn placement(&self, domid: DomId) -> Option<Placement> {
        self.guests().get(&domid).map(|r| r.placement())
    }

    /// What the host model's backends did for `domid`'s devices so far
    /// (empty for a guest whose devices Domain-0 serves: Domain-0 reports
    /// its own counts as a [`protocol::report::Report::BackendStats`] when
    /// a device goes away).
    pub fn host_model_stats(&self, domid: DomId) -> Vec<BackendStats> {
        let record = self.guests().get(&domid).cloned();
        record.map_or(Vec::new(), |r| r.host_model_stats())
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // Ids in descending order: every guest before Domain-0.
        let ids: Vec<DomId> = self.core.domains().iter().rev().map(|d| d.id).collect();
        for domid in ids {
            let _ = self.destroy(domid);
        }
    }
}
