//! [`DeviceSet`]: one guest's devices in its placement, and the device
//! table the guest reads them from.

use super::backend_ring::BackendRingWriter;
use super::claims::{ImageClaim, ImageClaims};
use super::doorbells::Dom0Doorbells;
use super::host_model::HostModelDevices;
use super::image::DiskImage;
use super::service_vm::ServiceVmDevices;
use super::table::TableWriter;
use super::uplink::Uplinks;
use super::{Backing, DeviceConfig, DeviceError, Placement};
use hyp::{Domain, Hypervisor};
use protocol::device::GuestDevice;
use protocol::domain::DomId;
use protocol::report::BackendStats;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// What Domain-0's devices are made with: its backend ring (if it runs),
/// its switches' uplinks and its hardware queues' doorbells.
#[derive(Clone, Copy)]
pub struct Dom0Parts<'a> {
    /// The backend ring, while Domain-0 runs.
    pub ring: Option<&'a BackendRingWriter>,
    /// The switches' uplinks.
    pub uplinks: &'a Uplinks,
    /// The doorbells of its hardware queues.
    pub doorbells: &'a Arc<Dom0Doorbells>,
}

/// The devices, as the placement that serves them keeps them.
#[derive(Debug)]
enum PlacedDevices {
    ServiceVm(ServiceVmDevices),
    Host(HostModelDevices),
}

impl PlacedDevices {
    fn guest_devices(&self) -> Vec<GuestDevice> {
        match self {
            Self::ServiceVm(devices) => devices.guest_devices(),
            Self::Host(devices) => devices.guest_devices(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    table: TableWriter,
    /// Made with the first device (a Domain-0 foreign window is scarce).
    placed: Option<PlacedDevices>,
    /// The claim on each disk's image, by vdev.
    claims: HashMap<String, ImageClaim>,
}

/// One guest's devices.
#[derive(Debug)]
pub struct DeviceSet {
    placement: Placement,
    state: Mutex<State>,
}

impl DeviceSet {
    /// No devices yet, to be served in `placement`.
    pub fn new(placement: Placement) -> Self {
        Self {
            placement,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("device set lock")
    }

    /// Where the backends run.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// The devices as the guest sees them.
    pub fn guest_devices(&self) -> Vec<GuestDevice> {
        self.state()
            .placed
            .as_ref()
            .map_or(Vec::new(), PlacedDevices::guest_devices)
    }

    /// What the host model's backends did so far (empty in Domain-0's
    /// placement: Domain-0 reports its own counts when a device goes).
    pub fn host_model_stats(&self) -> Vec<BackendStats> {
        match &self.state().placed {
            Some(PlacedDevices::Host(devices)) => devices.stats(),
            _ => Vec::new(),
        }
    }

    /// Gives `guest` the device `config` (not yet in its table: see
    /// [`DeviceSet::publish`]). A disk's image is opened and claimed in
    /// `claims` first; `dom0` is what Domain-0's devices are made with.
    pub fn add(
        &self,
        core: &Hypervisor,
        dom0: Dom0Parts<'_>,
        claims: &ImageClaims,
        guest: &Domain,
        config: &DeviceConfig,
    ) -> Result<(), DeviceError> {
        let (image, claim) = match &config.backing {
            Backing::Disk {
                path,
                readonly,
                direct,
            } => {
                if !protocol::device::is_disk_vdev(&config.vdev) {
                    return Err(DeviceError::BadVdev(config.vdev.clone()));
                }
                let image = DiskImage::open(path, *readonly, *direct)?;
                let listed = |domid| core.domain(domid).is_some();
                let claim = claims.claim(&image, path, guest.id, &guest.name(), listed)?;
                (Some(image), Some(claim))
            }
            Backing::Console if config.vdev == "console" => (None, None),
            Backing::Console => return Err(DeviceError::BadVdev(config.vdev.clone())),
            Backing::Net(net) if config.vdev == format!("eth{}", net.devid) => (None, None),
            Backing::Net(_) => return Err(DeviceError::BadVdev(config.vdev.clone())),
        };
        let mut state = self.state();
        if state.placed.is_none() {
            state.placed = Some(match self.placement {
                Placement::ServiceVm => {
                    let doorbells = Arc::clone(dom0.doorbells);
                    PlacedDevices::ServiceVm(ServiceVmDevices::new(core, guest, doorbells)?)
                }
                Placement::Host => PlacedDevices::Host(HostModelDevices::default()),
            });
        }
        match state.placed.as_mut().expect("made above") {
            PlacedDevices::ServiceVm(devices) => {
                let ring = dom0.ring.ok_or(DeviceError::NoDom0)?;
                devices.add(core, ring, dom0.uplinks, config, image)?;
            }
            PlacedDevices::Host(devices) => {
                devices.add(core, guest, config, image)?;
            }
        }
        if let Some(claim) = claim {
            state.claims.insert(config.vdev.clone(), claim);
        }
        Ok(())
    }

    /// Writes the guest's device table with every device it has; returns
    /// the table's generation.
    pub fn publish(&self, guest: &Domain) -> u32 {
        let mut state = self.state();
        let devices = state
            .placed
            .as_ref()
            .map_or(Vec::new(), PlacedDevices::guest_devices);
        state.table.publish(guest.ram(), &devices)
    }

    /// Writes the table without `vdev`; returns its generation, for the
    /// guest to acknowledge before [`DeviceSet::remove`].
    pub fn withdraw(&self, guest: &Domain, vdev: &str) -> Result<u32, DeviceError> {
        let mut state = self.state();
        let devices = state
            .placed
            .as_ref()
            .map_or(Vec::new(), PlacedDevices::guest_devices);
        if !devices.iter().any(|d| d.vdev() == vdev) {
            return Err(DeviceError::NoSuchDevice(vdev.into()));
        }
        let kept: Vec<GuestDevice> = devices.into_iter().filter(|d| d.vdev() != vdev).collect();
        Ok(state.table.publish(guest.ram(), &kept))
    }

    /// Stops serving the withdrawn device `vdev` of `guest`.
    pub fn remove(
        &self,
        core: &Hypervisor,
        ring: Option<&BackendRingWriter>,
        guest: &Domain,
        vdev: &str,
    ) -> Result<(), DeviceError> {
        let mut state = self.state();
        match &mut state.placed {
            Some(PlacedDevices::ServiceVm(devices)) => {
                devices.remove(core, ring.ok_or(DeviceError::NoDom0)?, vdev)?;
                state.claims.remove(vdev);
                Ok(())
            }
            Some(PlacedDevices::Host(devices)) => {
                let removed = devices.remove(core, guest.id, vdev)?;
                let claim = state.claims.remove(vdev);
                drop(state);
                drop(removed);
                drop(claim);
                Ok(())
            }
            None => Err(DeviceError::NoSuchDevice(vdev.into())),
        }
    }

    /// Domain-0 stopped: takes back the hardware queues it had for these
    /// devices, once their host I/O finished (nothing for the host
    /// model's).
    pub fn take_dom0_queues(&self, core: &Hypervisor) {
        if let Some(PlacedDevices::ServiceVm(devices)) = &mut self.state().placed {
            devices.take_queues_back(core);
        }
    }

    /// A new Domain-0 is held: lends it new hardware queues for these
    /// devices (one that cannot be made is logged, its disk refused).
    pub fn lend_dom0_queues(&self, core: &Hypervisor) {
        if let Some(PlacedDevices::ServiceVm(devices)) = &mut self.state().placed {
            devices.lend_queues_again(core);
        }
    }

    /// The new Domain-0 runs: tells it about these devices again. Returns
    /// how many.
    pub fn announce_to_dom0(&self, ring: &BackendRingWriter) -> Result<usize, DeviceError> {
        match &self.state().placed {
            Some(PlacedDevices::ServiceVm(devices)) => devices.announce_again(ring),
            _ => Ok(0),
        }
    }

    /// Takes every device away; the guest `guest` is already destroyed.
    pub fn detach(&self, core: &Hypervisor, ring: Option<&BackendRingWriter>, guest: DomId) {
        let (placed, claims) = {
            let mut state = self.state();
            (state.placed.take(), std::mem::take(&mut state.claims))
        };
        match placed {
            Some(PlacedDevices::ServiceVm(devices)) => devices.detach(core, ring),
            Some(PlacedDevices::Host(devices)) => devices.detach(core, guest),
            None => {}
        }
        drop(claims);
    }
}
