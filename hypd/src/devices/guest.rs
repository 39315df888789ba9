//! [`GuestDevices`]: one guest's devices in its placement, and the device
//! table the guest reads them from.

use super::backend_ring::BackendRingWriter;
use super::host_model::HostModelDevices;
use super::image::DiskImage;
use super::service_vm::ServiceVmDevices;
use super::table::DeviceTable;
use super::{Backing, DeviceConfig, DeviceError, Placement};
use hyp::{Domain, Hypervisor};
use protocol::device::GuestDevice;
use protocol::domain::DomId;
use protocol::report::BackendStats;
use std::sync::{Mutex, MutexGuard};

/// Who serves the devices: Domain-0 or this process.
#[derive(Debug)]
enum Backends {
    ServiceVm(ServiceVmDevices),
    Host(HostModelDevices),
}

impl Backends {
    fn guest_devices(&self) -> Vec<GuestDevice> {
        match self {
            Self::ServiceVm(devices) => devices.guest_devices(),
            Self::Host(devices) => devices.guest_devices(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    table: DeviceTable,
    /// Made with the first device (a Domain-0 foreign window is scarce).
    backends: Option<Backends>,
}

/// One guest's devices.
#[derive(Debug)]
pub struct GuestDevices {
    placement: Placement,
    state: Mutex<State>,
}

impl GuestDevices {
    /// No devices yet, to be served in `placement`.
    pub fn new(placement: Placement) -> Self {
        Self {
            placement,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("guest devices lock")
    }

    /// Where the backends run.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// The devices as the guest sees them.
    pub fn guest_devices(&self) -> Vec<GuestDevice> {
        self.state()
            .backends
            .as_ref()
            .map_or(Vec::new(), Backends::guest_devices)
    }

    /// What the host model's backends did so far (empty in Domain-0's
    /// placement: Domain-0 reports its own counts when a device goes).
    pub fn host_model_stats(&self) -> Vec<BackendStats> {
        match &self.state().backends {
            Some(Backends::Host(devices)) => devices.stats(),
            _ => Vec::new(),
        }
    }

    /// Gives `guest` the device `config` and publishes the new table (the
    /// caller tells a running guest). `ring` is Domain-0's backend ring.
    pub fn add(
        &self,
        core: &Hypervisor,
        ring: &Mutex<Option<BackendRingWriter>>,
        guest: &Domain,
        config: &DeviceConfig,
    ) -> Result<(), DeviceError> {
        let image = match &config.backing {
            Backing::Disk { path, readonly } => Some(DiskImage::open(path, *readonly)?),
            Backing::Console => None,
        };
        let mut state = self.state();
        if state.backends.is_none() {
            state.backends = Some(match self.placement {
                Placement::ServiceVm => Backends::ServiceVm(ServiceVmDevices::new(core, guest)?),
                Placement::Host => Backends::Host(HostModelDevices::default()),
            });
        }
        let State { table, backends } = &mut *state;
        let backends = backends.as_mut().expect("made above");
        match backends {
            Backends::ServiceVm(devices) => {
                let mut ring = ring.lock().expect("backend ring lock");
                let ring = ring.as_mut().ok_or(DeviceError::NoDom0)?;
                devices.add(core, ring, config, image)?;
            }
            Backends::Host(devices) => {
                devices.add(core, guest, config, image)?;
            }
        }
        table.publish(guest.ram(), &backends.guest_devices());
        Ok(())
    }

    /// Publishes the table without `vdev`; returns its generation, for the
    /// guest to acknowledge before [`GuestDevices::remove`].
    pub fn withdraw(&self, guest: &Domain, vdev: &str) -> Result<u32, DeviceError> {
        let mut state = self.state();
        let devices: Vec<GuestDevice> = state
            .backends
            .as_ref()
            .map_or(Vec::new(), Backends::guest_devices);
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
        ring: &Mutex<Option<BackendRingWriter>>,
        guest: &Domain,
        vdev: &str,
    ) -> Result<(), DeviceError> {
        let mut state = self.state();
        match &mut state.backends {
            Some(Backends::ServiceVm(devices)) => {
                let mut ring = ring.lock().expect("backend ring lock");
                let ring = ring.as_mut().ok_or(DeviceError::NoDom0)?;
                devices.remove(core, ring, vdev)
            }
            Some(Backends::Host(devices)) => devices.remove(core, guest.id, vdev),
            None => Err(DeviceError::NoSuchDevice(vdev.into())),
        }
    }

    /// Takes every device away; the guest `guest` is already destroyed.
    pub fn detach(&self, core: &Hypervisor, ring: &Mutex<Option<BackendRingWriter>>, guest: DomId) {
        let backends = self.state().backends.take();
        match backends {
            Some(Backends::ServiceVm(devices)) => {
                let mut ring = ring.lock().expect("backend ring lock");
                devices.detach(core, ring.as_mut());
            }
            Some(Backends::Host(devices)) => devices.detach(core, guest),
            None => {}
        }
    }
}
