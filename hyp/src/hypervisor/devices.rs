//! Giving guests devices and taking them away, in either placement (see
//! [`crate::devices`]).

use super::{Hypervisor, DETACH_GRACE};
use crate::devices::local::LocalIo;
use crate::devices::{DeviceConfig, DeviceIo, LocalBackends, Placement, ServiceVmIo, Serving};
use crate::domain::{Domain, DomainConfig, Life};
use crate::error::{Error, Result};
use crate::memory::GuestRam;
use kvm_ioctls::VmFd;
use protocol::domain::{DomId, DOM0};
use protocol::memory::SHARED_INFO_ADDR;
use protocol::report::BackendStats;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Hypervisor {
    /// Installs the backends that serve domains whose placement is
    /// [`Placement::Host`] (the toolstack installs the `host-model`
    /// crate). Without them such domains are refused. Returns false if
    /// backends were installed already.
    pub fn set_local_backends(&self, backends: Arc<dyn LocalBackends>) -> bool {
        self.inner.local_backends.set(backends).is_ok()
    }

    /// What the host model's backends did for `domid`'s devices so far
    /// (empty for a domain whose devices Domain-0 serves: Domain-0 reports
    /// its own counts as a [`protocol::report::Report::BackendStats`] when
    /// a device goes away).
    pub fn local_device_stats(&self, domid: DomId) -> Vec<BackendStats> {
        let Some(domain) = self.domain(domid) else {
            return Vec::new();
        };
        match domain.io.get().map(DeviceIo::serving) {
            Some(Serving::Host(io)) => io.stats(),
            _ => Vec::new(),
        }
    }

    /// An empty plumbing for `domid`'s devices in `placement`.
    fn new_device_io(
        &self,
        placement: Placement,
        domid: DomId,
        ram: &GuestRam,
        vcpus: u8,
    ) -> Result<DeviceIo> {
        match placement {
            Placement::Host => {
                let backends = self.inner.local_backends.get().ok_or_else(|| {
                    Error::InvalidConfig(
                        "this core has no host-model backends (backend_placement = \"host\")"
                            .into(),
                    )
                })?;
                let core = Arc::downgrade(&self.inner);
                let io = LocalIo::new(Arc::clone(backends), core, domid);
                Ok(DeviceIo::new(Serving::Host(io)))
            }
            Placement::ServiceVm => {
                let dom0 = self
                    .inner
                    .find(DOM0)
                    .ok_or_else(|| Error::InvalidConfig("Domain-0 is not running".into()))?;
                let mut host = self.inner.dom0_host.lock().expect("dom0 host lock");
                let host = host
                    .as_mut()
                    .ok_or_else(|| Error::InvalidConfig("Domain-0 cannot serve devices".into()))?;
                let io = ServiceVmIo::new(host, &self.inner.evtchn, dom0, domid, ram, vcpus)?;
                Ok(DeviceIo::new(Serving::ServiceVm(io)))
            }
        }
    }

    /// Adds one device to `io`.
    fn add_device(
        &self,
        io: &DeviceIo,
        vm: &VmFd,
        ram: &GuestRam,
        device: &DeviceConfig,
    ) -> std::result::Result<(), String> {
        match io.serving() {
            Serving::Host(local) => local.add(&self.inner.evtchn, vm, ram, device).map(|_| ()),
            Serving::ServiceVm(dom0) => {
                let mut host = self.inner.dom0_host.lock().expect("dom0 host lock");
                let host = host.as_mut().ok_or("Domain-0 is gone")?;
                dom0.add(host, &self.inner.evtchn, vm, ram, device)
                    .map(|_| ())
            }
        }
    }

    /// Builds a new guest's plumbing and its boot-time devices; on failure
    /// nothing is left. (`dom0` is given while the guest is being built,
    /// before it is registered.)
    pub(super) fn attach_at_boot(
        &self,
        dom0: Option<&Arc<Domain>>,
        domid: DomId,
        vm: &VmFd,
        ram: &GuestRam,
        config: &DomainConfig,
    ) -> Result<DeviceIo> {
        if config.placement == Placement::ServiceVm && dom0.is_none() {
            return Err(Error::InvalidConfig(
                "Domain-0 is not running to serve devices".into(),
            ));
        }
        let io = self.new_device_io(config.placement, domid, ram, config.vcpus)?;
        for device in &config.devices {
            if let Err(message) = self.add_device(&io, vm, ram, device) {
                let mut host = self.inner.dom0_host.lock().expect("dom0 host lock");
                io.detach(host.as_mut(), &self.inner.evtchn);
                return Err(Error::BadState { domid, message });
            }
        }
        Ok(io)
    }

    /// Gives a running guest a new device (`xl block-attach`): its backend
    /// starts serving it, then the guest is told through its shared page
    /// and the control vector.
    pub fn attach_device(&self, domid: DomId, device: DeviceConfig) -> Result<()> {
        let domain = self.domain(domid).ok_or(Error::NoSuchDomain(domid))?;
        if domid == DOM0 || domain.status().life != Life::Alive {
            return Err(Error::BadState {
                domid,
                message: "not a running guest".into(),
            });
        }
        if domain.io.get().is_none() {
            let io = self.new_device_io(domain.placement, domid, &domain.ram, domain.vcpu_count)?;
            let _ = domain.io.set(io);
        }
        let io = domain.io.get().expect("set above");
        self.add_device(io, &domain.vm, &domain.ram, &device)
            .map_err(|message| Error::BadState { domid, message })?;
        io.publish(&domain.ram, None);
        domain.control_irq.write(1)?;
        tracing::info!(
            domid,
            "attached {} to domain {} ({})",
            device.vdev,
            domain.name(),
            domain.placement.name()
        );
        Ok(())
    }

    /// Takes a device away from a running guest (`xl block-detach`): the
    /// guest is told first and given a moment to stop using it; then its
    /// backend stops serving it and its wiring goes.
    pub fn detach_device(&self, domid: DomId, vdev: &str) -> Result<()> {
        let domain = self.domain(domid).ok_or(Error::NoSuchDomain(domid))?;
        let no_device = || Error::BadState {
            domid,
            message: format!("no device {vdev}"),
        };
        let io = domain.io.get().ok_or_else(no_device)?;
        if !io.guest_devices().iter().any(|d| d.vdev() == vdev) {
            return Err(no_device());
        }
        let generation = io.publish(&domain.ram, Some(vdev));
        domain.control_irq.write(1)?;
        let ack_at =
            SHARED_INFO_ADDR + std::mem::offset_of!(protocol::boot::SharedInfo, devices_ack) as u64;
        let deadline = Instant::now() + DETACH_GRACE;
        while domain.status().life == Life::Alive && Instant::now() < deadline {
            let ack = domain.ram.read_u32(ack_at).unwrap_or(0);
            if ack >= generation {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let removed = match io.serving() {
            Serving::Host(local) => local.remove(&self.inner.evtchn, &domain.vm, vdev),
            Serving::ServiceVm(dom0) => {
                let mut host = self.inner.dom0_host.lock().expect("dom0 host lock");
                let host = host
                    .as_mut()
                    .ok_or_else(|| Error::InvalidConfig("Domain-0 is gone".into()))?;
                dom0.remove(host, &self.inner.evtchn, &domain.vm, vdev)
            }
        };
        removed.map_err(|message| Error::BadState { domid, message })?;
        tracing::info!(domid, "detached {vdev} from domain {}", domain.name());
        Ok(())
    }
}
