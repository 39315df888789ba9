//! The service-VM placement: what device setup does so that Domain-0's
//! backends can serve a guest's devices. Nothing here parses a virtio
//! structure: it
//!
//! * maps the guest's RAM into Dom0 as a foreign window, once per guest;
//! * hands the device windows' trapped accesses to an ioreq server, which
//!   forwards them to Dom0's device model;
//! * wires each window's queue-notify ioeventfd straight to a Dom0 port,
//!   and a Dom0 port to the guest's device interrupt, so steady-state I/O
//!   never wakes this process;
//! * lends Dom0 a hardware queue per disk;
//! * tells Dom0 about it all on the backend ring.

use super::backend_ring::BackendRingWriter;
use super::dom0_queue::Dom0Queue;
use super::doorbells::Dom0Doorbells;
use super::image::DiskImage;
use super::uplink::Uplinks;
use super::window::{add_notify, place, remove_notify};
use super::{Backing, DeviceConfig, DeviceError};
use hwqueue::{BufferRegion, QueueTrace};
use hyp::{Domain, ForeignWindow, Hypervisor, IoreqServer, ReservedPages};
use protocol::device::{event, vdev_bytes, BackendEvent, GuestDevice, MAX_WINDOW_BYTES};
use protocol::domain::{DomId, DOM0};
use protocol::virtio::mmio::WINDOW_SIZE;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// One device's wiring to Dom0. Every field starts empty (0, `None`), so
/// a device wired part of the way is unwired by the same code.
struct Dom0Device {
    id: u32,
    guest: GuestDevice,
    /// The window's accesses go to the ioreq server.
    handled: bool,
    notify: EventFd,
    notify_port: u32,
    dom0_irq_port: u32,
    queue: Option<Dom0Queue>,
    /// The disk's image, kept to lend a new Domain-0 a new queue over it.
    image: Option<OwnedFd>,
    /// The device's state page in Dom0's reserved RAM, which outlives
    /// Domain-0 (`protocol::virtio::saved`); never read here.
    state: Option<ReservedPages>,
    /// What Dom0 was told: told again to a restarted Domain-0.
    announced: BackendEvent,
}

/// A guest's devices served by Domain-0. Take them away with
/// [`ServiceVmDevices::detach`] (or `remove`), which tells Dom0 and closes
/// the ports; the fields are in drop order regardless (the devices and
/// their hardware queues before the foreign window their buffers are in).
pub struct ServiceVmDevices {
    devices: Vec<Dom0Device>,
    ioreq: Arc<IoreqServer>,
    window: ForeignWindow,
    guest: DomId,
    doorbells: Arc<Dom0Doorbells>,
}

impl std::fmt::Debug for ServiceVmDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ServiceVmDevices(domain {}, {} devices)",
            self.guest,
            self.devices.len()
        )
    }
}

impl ServiceVmDevices {
    /// Maps `guest`'s RAM into Dom0 and makes its ioreq server; devices
    /// come with [`ServiceVmDevices::add`], their disks' queues rung as
    /// `doorbells` says.
    pub fn new(
        core: &Hypervisor,
        guest: &Domain,
        doorbells: Arc<Dom0Doorbells>,
    ) -> Result<Self, DeviceError> {
        let ram = guest.ram().size();
        if ram > MAX_WINDOW_BYTES {
            return Err(DeviceError::GuestTooLarge);
        }
        let window = core.map_foreign(guest.id, 0, ram)?;
        let ioreq = core.create_ioreq_server(guest.id)?;
        Ok(Self {
            devices: Vec::new(),
            ioreq,
            window,
            guest: guest.id,
            doorbells,
        })
    }

    /// The devices as the guest sees them.
    pub fn guest_devices(&self) -> Vec<GuestDevice> {
        self.devices.iter().map(|d| d.guest).collect()
    }

    /// Gives the guest a device (`image` is the disk of a disk): a window,
    /// its wiring, a hardware queue for a disk, and an ADDED event for
    /// Dom0.
    pub fn add(
        &mut self,
        core: &Hypervisor,
        ring: &BackendRingWriter,
        uplinks: &Uplinks,
        config: &DeviceConfig,
        image: Option<DiskImage>,
    ) -> Result<GuestDevice, DeviceError> {
        // A vif's switch (and its uplink) first: it outlives the device.
        let net = match &config.backing {
            Backing::Net(net) => Some((net, uplinks.switch_for(core, ring, &net.bridge)?)),
            _ => None,
        };
        let window = place(&self.guest_devices(), &config.vdev)?;
        let mut device = Dom0Device {
            id: ring.device_id(),
            guest: GuestDevice {
                mmio_base: window,
                kind: config.backing.kind(),
                irq_port: 0,
                vdev: vdev_bytes(&config.vdev),
                ipv4: net.map_or_else(Default::default, |(net, _)| net.address_of(self.guest)),
            },
            handled: false,
            notify: EventFd::new(EFD_NONBLOCK)?,
            notify_port: 0,
            dom0_irq_port: 0,
            queue: None,
            image: None,
            state: None,
            announced: BackendEvent::default(),
        };
        let announced = self.wire(core, &mut device, image).and_then(|mut event| {
            if let Some((net, switch)) = net {
                event.net = net.params(switch);
            }
            device.announced = event;
            ring.post(&event)
        });
        match announced {
            Ok(()) => {
                let guest = device.guest;
                self.devices.push(device);
                Ok(guest)
            }
            Err(e) => {
                self.unwire(core, device);
                Err(e)
            }
        }
    }

    /// The window, ports, interrupt channel and hardware queue of one
    /// device; returns the announcement for Dom0.
    fn wire(
        &self,
        core: &Hypervisor,
        device: &mut Dom0Device,
        image: Option<DiskImage>,
    ) -> Result<BackendEvent, DeviceError> {
        let window = device.guest.mmio_base;
        core.add_mmio_handler(self.guest, window, WINDOW_SIZE, self.ioreq.clone())?;
        device.handled = true;
        add_notify(core, self.guest, window, &device.notify)?;
        device.notify_port = core.bind_eventfd_port(DOM0, Some(&device.notify), None)?;
        device.guest.irq_port = core.alloc_unbound_port(self.guest, DOM0)?;
        device.dom0_irq_port =
            core.bind_interdomain_port(DOM0, self.guest, device.guest.irq_port)?;
        let mut state = core.dom0_pages(1)?;
        // Dom0 may write the page until it has read the device's removal.
        state.quarantine_when_dropped();
        let state_page = state.gpa();
        device.state = Some(state);
        let mut announcement = BackendEvent {
            event: event::ADDED,
            kind: device.guest.kind,
            device_id: device.id,
            domid: self.guest,
            guest_mmio_base: window,
            ioreq_page: self.ioreq.page_gpa(),
            ioreq_slots: self.ioreq.slot_count(),
            notify_port: device.notify_port,
            irq_port: device.dom0_irq_port,
            window_base: self.window.dom0_base(),
            window_bytes: self.window.bytes(),
            vdev: device.guest.vdev,
            state_page,
            ..Default::default()
        };
        if let Some(image) = image {
            announcement.readonly = u16::from(image.readonly);
            announcement.disk_bytes = image.bytes;
            let file: OwnedFd = image.file.into();
            device.image = Some(file.try_clone()?);
            let queue = self.lend_queue(core, window, file)?;
            queue.name_in(&mut announcement);
            device.queue = Some(queue);
        }
        Ok(announcement)
    }

    /// Lends Dom0 a hardware queue over `file` for the disk whose window
    /// is at `window`.
    fn lend_queue(
        &self,
        core: &Hypervisor,
        window: u64,
        file: OwnedFd,
    ) -> Result<Dom0Queue, DeviceError> {
        let guest_ram = BufferRegion {
            host_addr: self.window.host_addr(),
            guest_addr: self.window.dom0_base() + self.window.start(),
            len: self.window.bytes(),
        };
        let mode = self.doorbells.mode();
        // Held while the queue is made, so its ring stays open.
        let share = self.doorbells.sq_thread();
        let share_fd = share.as_ref().map(|q| q.ring_fd());
        // SAFETY: the window's memory stays mapped while the queue
        // lives: `ServiceVmDevices` unwires every device (closing its
        // queue) before the window goes.
        let queue = unsafe { Dom0Queue::lend(core, file, Some(guest_ram), mode, share_fd) }?;
        drop(share);
        let trace = QueueTrace::new(hyp::trace::core_ring(), self.guest, (window >> 12) as u32);
        queue.trace_to(trace);
        self.doorbells
            .register(mode, queue.port, queue.queue(), trace);
        Ok(queue)
    }

    /// Domain-0 stopped: takes every disk's hardware queue back, once the
    /// host I/O the old Domain-0 started has finished (so none of it
    /// lands after the new one redoes it). The announcements name no
    /// queue until a new one is lent.
    pub fn take_queues_back(&mut self, core: &Hypervisor) {
        for device in &mut self.devices {
            if let Some(queue) = device.queue.take() {
                self.doorbells.unregister(queue.port);
                let _ = core.close_port(DOM0, queue.port);
                queue.close();
                device.announced.queue_layout = 0;
                device.announced.queue_port = 0;
            }
        }
    }

    /// A new Domain-0 runs (held): lends it a new hardware queue for each
    /// disk, over the same image. A disk whose queue cannot be made is
    /// left without one, and logged: Domain-0 refuses it when it is
    /// announced, and the guest's requests to it fail.
    pub fn lend_queues_again(&mut self, core: &Hypervisor) {
        for i in 0..self.devices.len() {
            let Some(image) = &self.devices[i].image else {
                continue;
            };
            let window = self.devices[i].guest.mmio_base;
            let lent = image
                .try_clone()
                .map_err(DeviceError::from)
                .and_then(|file| self.lend_queue(core, window, file));
            match lent {
                Ok(queue) => {
                    let device = &mut self.devices[i];
                    queue.name_in(&mut device.announced);
                    device.queue = Some(queue);
                }
                Err(e) => tracing::error!(domid = self.guest, "a new hardware queue: {e}"),
            }
        }
    }

    /// Tells a new Domain-0 about every device, with the state its page
    /// holds; returns how many.
    pub fn announce_again(&self, ring: &BackendRingWriter) -> Result<usize, DeviceError> {
        for device in &self.devices {
            ring.post(&device.announced)?;
        }
        Ok(self.devices.len())
    }

    /// Takes one device's wiring apart, however far it got.
    fn unwire(&self, core: &Hypervisor, device: Dom0Device) {
        let queue_port = device.queue.as_ref().map_or(0, |q| q.port);
        if queue_port != 0 {
            self.doorbells.unregister(queue_port);
        }
        for port in [device.notify_port, device.dom0_irq_port, queue_port] {
            if port != 0 {
                let _ = core.close_port(DOM0, port);
            }
        }
        // On a guest already gone these find nothing left to undo.
        if device.guest.irq_port != 0 {
            let _ = core.close_port(self.guest, device.guest.irq_port);
        }
        remove_notify(core, self.guest, device.guest.mmio_base, &device.notify);
        if device.handled {
            core.remove_mmio_handler(self.guest, device.guest.mmio_base);
        }
        if let Some(queue) = device.queue {
            queue.close();
        }
    }

    /// Takes the device `vdev` away from a live guest (already told, and
    /// given its grace): tells Dom0, then unwires it.
    pub fn remove(
        &mut self,
        core: &Hypervisor,
        ring: &BackendRingWriter,
        vdev: &str,
    ) -> Result<(), DeviceError> {
        let at = self
            .devices
            .iter()
            .position(|d| d.guest.vdev() == vdev)
            .ok_or_else(|| DeviceError::NoSuchDevice(vdev.into()))?;
        let device = self.devices.remove(at);
        let _ = ring.post(&removed(device.id));
        self.unwire(core, device);
        Ok(())
    }

    /// Takes every device away (the guest was destroyed): tells Dom0
    /// (when it still runs), unwires each, drops the ioreq server and the
    /// foreign window. Dom0 touching the window afterwards reads all-ones.
    pub fn detach(mut self, core: &Hypervisor, ring: Option<&BackendRingWriter>) {
        let devices = std::mem::take(&mut self.devices);
        if let Some(ring) = ring {
            for device in &devices {
                let _ = ring.post(&removed(device.id));
            }
        }
        for device in devices {
            self.unwire(core, device);
        }
    }
}

/// The REMOVED event for device `id`.
fn removed(id: u32) -> BackendEvent {
    BackendEvent {
        event: event::REMOVED,
        device_id: id,
        ..Default::default()
    }
}
