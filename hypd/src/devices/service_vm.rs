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
use super::image::DiskImage;
use super::window::{add_notify, place, remove_notify};
use super::{DeviceConfig, DeviceError};
use hwqueue::{BufferRegion, HwQueueConfig, LentQueue, QueueNotify, RingRegion};
use hyp::{Domain, ForeignWindow, Hypervisor, IoreqServer, ReservedPages};
use protocol::device::{event, vdev_bytes, BackendEvent, GuestDevice, MAX_WINDOW_BYTES};
use protocol::domain::{DomId, DOM0};
use protocol::evtchn::port_vector;
use protocol::memory::{DOORBELL_ADDR, PAGE_SIZE};
use protocol::virtio::mmio::WINDOW_SIZE;
use std::sync::Arc;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Entries in each hardware queue's submission ring.
const QUEUE_ENTRIES: u32 = 128;

/// A disk's hardware queue lent to Dom0, and the pages it lives in. The
/// queue is declared first: dropped, it drains before its pages go, and
/// they go through the quarantine.
struct Dom0Queue {
    lent: LentQueue,
    /// Dom0's port: its completions raise it, Dom0's sends ring the
    /// doorbell.
    port: u32,
    /// The pages of the rings (held, never read here: the queue uses them).
    _ring: ReservedPages,
    /// The page of the layout Dom0 reads.
    layout: ReservedPages,
}

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
    /// come with [`ServiceVmDevices::add`].
    pub fn new(core: &Hypervisor, guest: &Domain) -> Result<Self, DeviceError> {
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
        config: &DeviceConfig,
        image: Option<DiskImage>,
    ) -> Result<GuestDevice, DeviceError> {
        let window = place(&self.guest_devices(), &config.vdev)?;
        let mut device = Dom0Device {
            id: ring.device_id(),
            guest: GuestDevice {
                mmio_base: window,
                kind: config.backing.kind(),
                irq_port: 0,
                vdev: vdev_bytes(&config.vdev),
                ..Default::default()
            },
            handled: false,
            notify: EventFd::new(EFD_NONBLOCK)?,
            notify_port: 0,
            dom0_irq_port: 0,
            queue: None,
        };
        let announced = self
            .wire(core, &mut device, image)
            .and_then(|event| ring.post(&event));
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
            ..Default::default()
        };
        if let Some(image) = image {
            let readonly = image.readonly;
            let bytes = image.bytes;
            let queue = self.lend_queue(core, image)?;
            announcement.readonly = u16::from(readonly);
            announcement.disk_bytes = bytes;
            announcement.queue_layout = queue.layout.gpa();
            announcement.queue_port = queue.port;
            device.queue = Some(queue);
        }
        Ok(announcement)
    }

    /// A hardware queue for `image` in Dom0's reserved RAM, with Dom0's
    /// own RAM and the guest's window as its fixed buffers, wired to a new
    /// Dom0 port, its layout published for Dom0.
    fn lend_queue(&self, core: &Hypervisor, image: DiskImage) -> Result<Dom0Queue, DeviceError> {
        let bytes = hwqueue::HardwareQueue::region_bytes_for(QUEUE_ENTRIES)?;
        let mut ring = core.dom0_pages(bytes.div_ceil(PAGE_SIZE) as usize)?;
        let mut layout = core.dom0_pages(1)?;
        ring.quarantine_when_dropped();
        layout.quarantine_when_dropped();
        let dom0 = core.domain(DOM0).ok_or(DeviceError::NoDom0)?;
        let config = HwQueueConfig {
            region: RingRegion {
                host_addr: ring.host_addr(),
                guest_addr: ring.gpa(),
                len: ring.bytes(),
            },
            entries: QUEUE_ENTRIES,
            file: image.file.into(),
            buffers: vec![
                Some(BufferRegion {
                    host_addr: dom0.ram().host_address(),
                    guest_addr: 0,
                    len: core.dom0_reserved_start()?,
                }),
                Some(BufferRegion {
                    host_addr: self.window.host_addr(),
                    guest_addr: self.window.dom0_base() + self.window.start(),
                    len: self.window.bytes(),
                }),
            ],
            notify: QueueNotify {
                doorbell_addr: DOORBELL_ADDR,
                doorbell_value: 0,
                completion_vector: 0,
            },
        };
        // SAFETY: the ring pages are reserved Dom0 RAM lent to this queue
        // alone (and quarantined after it is dropped), and both buffers are
        // guest memory no Rust reference covers. Dom0's RAM stays mapped
        // while `ring` (a handle on the reserved region and so on Dom0's
        // RAM) lives, and the guest's while the foreign window does; both
        // outlive the queue: `Dom0Queue` drops the queue before its pages,
        // and `ServiceVmDevices` unwires every device before its window
        // goes.
        let lent = unsafe { LentQueue::new(config) }?;
        let port = core.bind_eventfd_port(
            DOM0,
            Some(lent.completion_eventfd()),
            Some(lent.doorbell_eventfd()),
        )?;
        let mut described = lent.layout();
        described.doorbell_value = port;
        described.completion_vector = u32::from(port_vector(port));
        layout.write_struct(0, &described);
        Ok(Dom0Queue {
            lent,
            port,
            _ring: ring,
            layout,
        })
    }

    /// Takes one device's wiring apart, however far it got.
    fn unwire(&self, core: &Hypervisor, device: Dom0Device) {
        let queue_port = device.queue.as_ref().map_or(0, |q| q.port);
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
            let left = queue.lent.close();
            if left != 0 {
                tracing::warn!("hardware queue closed with {left} requests in flight");
            }
            // Its pages go now, through the quarantine.
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
