//! The host-model placement: a guest's devices served in this process by
//! the `host-model` crate, QEMU/KVM style. Device setup does the same
//! plumbing as for Domain-0 (a register window, a queue-notify ioeventfd,
//! an interrupt port with an irqfd), then starts a [`HostDevice`] and
//! makes it the window's MMIO handler: the guest's register accesses are
//! answered on the vCPU thread that trapped them.

use super::image::DiskImage;
use super::tap::Tap;
use super::window::{add_notify, place, remove_notify};
use super::{Backing, DeviceConfig, DeviceError};
use host_model::{HostBacking, HostDevice, HostDeviceSetup};
use hyp::{Domain, Hypervisor};
use protocol::device::{vdev_bytes, GuestDevice};
use protocol::domain::DomId;
use protocol::report::BackendStats;
use protocol::virtio::mmio::WINDOW_SIZE;
use std::sync::Arc;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// One device served in this process, and its plumbing. Dropped, it
/// stops its backend (once the last vCPU thread inside it lets go).
pub struct HostModelDevice {
    guest: GuestDevice,
    notify: EventFd,
    backend: Arc<HostDevice>,
    /// The window's accesses go to the backend.
    handled: bool,
}

/// A guest's devices served in this process.
#[derive(Default)]
pub struct HostModelDevices {
    devices: Vec<HostModelDevice>,
}

impl std::fmt::Debug for HostModelDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostModelDevices({} devices)", self.devices.len())
    }
}

impl HostModelDevices {
    /// The devices as the guest sees them.
    pub fn guest_devices(&self) -> Vec<GuestDevice> {
        self.devices.iter().map(|d| d.guest).collect()
    }

    /// What each device's backend did so far.
    pub fn stats(&self) -> Vec<BackendStats> {
        self.devices.iter().map(|d| d.backend.stats()).collect()
    }

    /// Gives `guest` a device (`image` is the disk of a disk): a window,
    /// its notify ioeventfd, an interrupt port, and a backend serving it.
    pub fn add(
        &mut self,
        core: &Hypervisor,
        guest: &Domain,
        config: &DeviceConfig,
        image: Option<DiskImage>,
    ) -> Result<GuestDevice, DeviceError> {
        let window = place(&self.guest_devices(), &config.vdev)?;
        let (notify, interrupt) = (EventFd::new(EFD_NONBLOCK)?, EventFd::new(EFD_NONBLOCK)?);
        let setup = HostDeviceSetup {
            domid: guest.id,
            vdev: config.vdev.clone(),
            backing: match (image, &config.backing) {
                (Some(image), _) => HostBacking::Disk {
                    file: image.file,
                    bytes: image.bytes,
                    readonly: image.readonly,
                },
                (None, Backing::Net(net)) => {
                    let name = net
                        .vifname
                        .clone()
                        .unwrap_or_else(|| format!("vif{}.{}", guest.id, net.devid));
                    let tap = Tap::create(&name, &net.bridge)?;
                    tracing::info!(
                        domid = guest.id,
                        "host model: tap {name} on bridge {}",
                        net.bridge
                    );
                    HostBacking::Net {
                        tap: tap.into_file(),
                        params: net.params(0),
                    }
                }
                (None, _) => HostBacking::Console,
            },
            memory: guest.ram().clone(),
            notify: notify.try_clone()?,
            interrupt: interrupt.try_clone()?,
            console: core.console_sink(guest.id),
            mmio_base: window,
        };
        let irq_port = core.bind_eventfd_port(guest.id, Some(&interrupt), None)?;
        let mut device = HostModelDevice {
            guest: GuestDevice {
                mmio_base: window,
                kind: config.backing.kind(),
                irq_port,
                vdev: vdev_bytes(&config.vdev),
                ipv4: match &config.backing {
                    Backing::Net(net) => net.address_of(guest.id),
                    _ => Default::default(),
                },
            },
            notify,
            backend: match HostDevice::start(setup) {
                Ok(backend) => Arc::new(backend),
                Err(e) => {
                    let _ = core.close_port(guest.id, irq_port);
                    return Err(e.into());
                }
            },
            handled: false,
        };
        let wired = add_notify(core, guest.id, window, &device.notify).and_then(|()| {
            let handler = Arc::clone(&device.backend);
            core.add_mmio_handler(guest.id, window, WINDOW_SIZE, handler)?;
            device.handled = true;
            Ok(())
        });
        if let Err(e) = wired {
            drop(unwire(core, guest.id, device));
            return Err(e);
        }
        tracing::info!(
            domid = guest.id,
            "host model: serving {} ({})",
            config.vdev,
            match &config.backing {
                Backing::Disk { path, .. } => path.display().to_string(),
                Backing::Console => "console".into(),
                Backing::Net(net) => format!("bridge {}", net.bridge),
            }
        );
        let guest_device = device.guest;
        self.devices.push(device);
        Ok(guest_device)
    }

    /// Takes the device `vdev` away from a live guest (already told, and
    /// given its grace); its backend stops when the caller drops what this
    /// returns (with no lock held: that waits for its worker thread).
    pub fn remove(
        &mut self,
        core: &Hypervisor,
        guest: DomId,
        vdev: &str,
    ) -> Result<HostModelDevice, DeviceError> {
        let at = self
            .devices
            .iter()
            .position(|d| d.guest.vdev() == vdev)
            .ok_or_else(|| DeviceError::NoSuchDevice(vdev.into()))?;
        Ok(unwire(core, guest, self.devices.remove(at)))
    }

    /// Stops every backend (the guest was destroyed: its ports, ioeventfds
    /// and MMIO ranges went with it).
    pub fn detach(self, core: &Hypervisor, guest: DomId) {
        for device in self.devices {
            drop(unwire(core, guest, device));
        }
    }
}

/// Takes one device's plumbing apart, however far it got, and hands the
/// device back to be dropped.
fn unwire(core: &Hypervisor, guest: DomId, device: HostModelDevice) -> HostModelDevice {
    if device.handled {
        core.remove_mmio_handler(guest, device.guest.mmio_base);
    }
    remove_notify(core, guest, device.guest.mmio_base, &device.notify);
    let _ = core.close_port(guest, device.guest.irq_port);
    device
}
