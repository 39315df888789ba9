//! The service-VM placement: what the core does so that Dom0's backends
//! can serve a guest's devices. It never parses a virtio structure: it only
//!
//! * forwards trapped register accesses to Dom0 through ioreq slots
//!   ([`super::ioreq`]);
//! * wires each window's queue-notify ioeventfd straight to a Dom0 port,
//!   and a Dom0 port to the guest's device interrupt, so steady-state I/O
//!   never wakes the core;
//! * maps the guest's RAM into Dom0 as a foreign window;
//! * lends Dom0 a hardware queue per disk ([`super::disk`]);
//! * tells Dom0 about it all through the backend ring ([`super::reserved`]).

use super::disk::{Disk, WindowBuffer};
use super::ioreq::IoreqSlot;
use super::reserved::{Dom0Host, MAX_WINDOW_BYTES};
use super::{free_window, notify_ioevents, open_disk, Backing, DeviceConfig};
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::evtchn::EventChannels;
use crate::memory::GuestRam;
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use protocol::boot::MAX_VCPUS;
use protocol::device::{
    event, vdev_bytes, BackendEvent, GuestDevice, DEVICE_WINDOW_SIZE, FOREIGN_BASE, FOREIGN_STRIDE,
};
use protocol::domain::{DomId, DOM0};
use protocol::ioreq::SLOT_SIZE;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// First KVM memory slot used for foreign windows in Dom0.
const WINDOW_MEMSLOT: u32 = 1;

/// One device's plumbing.
struct DevicePlumbing {
    id: u32,
    guest: GuestDevice,
    notify: EventFd,
    notify_port: u32,
    dom0_irq_port: u32,
    queue_port: Option<u32>,
    disk: Option<Disk>,
}

/// Everything a guest holds for its devices.
pub struct ServiceVmIo {
    dom0: Arc<Domain>,
    guest: DomId,
    slots: Vec<IoreqSlot>,
    ioreq_page: u64,
    window_slot: usize,
    devices: Mutex<Vec<DevicePlumbing>>,
}

impl ServiceVmIo {
    /// Maps the guest's RAM into Dom0 and gives it an ioreq page and one
    /// ioreq port per vCPU; devices come with [`ServiceVmIo::add`].
    pub(crate) fn new(
        host: &mut Dom0Host,
        evtchn: &Mutex<EventChannels>,
        dom0: Arc<Domain>,
        guest: DomId,
        guest_ram: &GuestRam,
        vcpus: u8,
    ) -> Result<Self> {
        let fail = |m: String| Error::BadState {
            domid: guest,
            message: m,
        };
        if guest_ram.size() > MAX_WINDOW_BYTES {
            return Err(fail(format!(
                "a guest with devices may have at most {} MiB",
                MAX_WINDOW_BYTES >> 20
            )));
        }
        let window_slot = host
            .alloc_window()
            .ok_or_else(|| fail("Domain-0 has no free foreign window".into()))?;
        let region = kvm_userspace_memory_region {
            slot: WINDOW_MEMSLOT + window_slot as u32,
            flags: 0,
            guest_phys_addr: window_base(window_slot),
            memory_size: guest_ram.size(),
            userspace_addr: guest_ram.host_address(),
        };
        // SAFETY: the guest's RAM stays mapped until `detach` removes this
        // slot, which teardown does before the guest's RAM is dropped.
        if let Err(e) = unsafe { dom0.vm.set_user_memory_region(region) } {
            host.free_window(window_slot);
            return Err(Error::Kvm {
                what: "KVM_SET_USER_MEMORY_REGION (foreign window)",
                source: e,
            });
        }
        let Some(ioreq_page) = host.alloc_pages(&dom0.ram, 1) else {
            unmap_window(&dom0, host, window_slot);
            return Err(fail("Domain-0's reserved RAM is full".into()));
        };
        let mut io = Self {
            dom0,
            guest,
            slots: Vec::new(),
            ioreq_page,
            window_slot,
            devices: Mutex::new(Vec::new()),
        };
        let mut channels = evtchn.lock().expect("event channel lock");
        for vcpu in 0..vcpus as usize {
            let made =
                EventFd::new(EFD_NONBLOCK).and_then(|a| Ok((a, EventFd::new(EFD_NONBLOCK)?)));
            let bound = made.and_then(|(to_dom0, from_dom0)| {
                let port = channels.bind_core(DOM0, Some(&to_dom0), Some(&from_dom0))?;
                Ok(IoreqSlot {
                    gpa: ioreq_page + (vcpu * SLOT_SIZE) as u64,
                    port,
                    to_dom0,
                    from_dom0,
                })
            });
            match bound {
                Ok(slot) => io.slots.push(slot),
                Err(e) => {
                    drop(channels);
                    io.detach(host, evtchn);
                    return Err(fail(format!("ioreq port: {e}")));
                }
            }
        }
        Ok(io)
    }

    /// True if `addr` falls in one of the guest's device windows.
    pub fn owns(&self, addr: u64) -> bool {
        let devices = self.devices.lock().expect("devices lock");
        devices
            .iter()
            .any(|d| (d.guest.mmio_base..d.guest.mmio_base + DEVICE_WINDOW_SIZE).contains(&addr))
    }

    /// Forwards a trapped access by vCPU `vcpu` of `guest` to Dom0 (see
    /// [`super::ioreq`]), counting it and its time in the guest's counters.
    pub fn forward_counted(
        &self,
        guest: &Domain,
        vcpu: u8,
        addr: u64,
        size: usize,
        write: Option<u64>,
    ) -> u64 {
        guest.counters.ioreqs.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let value = match self.slots.get(vcpu as usize) {
            Some(slot) => slot.forward(&self.dom0, guest, addr, size as u32, write),
            None => u64::MAX,
        };
        let took = started.elapsed().as_nanos() as u64;
        guest.counters.ioreq_ns.fetch_add(took, Ordering::Relaxed);
        value
    }

    /// The devices as the guest sees them.
    pub fn guest_devices(&self) -> Vec<GuestDevice> {
        self.devices
            .lock()
            .expect("devices lock")
            .iter()
            .map(|d| d.guest)
            .collect()
    }

    /// Gives the guest a device: a window, its wiring, a hardware queue for
    /// a disk, and an ADDED event for Dom0. The guest learns of it from
    /// [`ServiceVmIo::publish`].
    pub(crate) fn add(
        &self,
        host: &mut Dom0Host,
        evtchn: &Mutex<EventChannels>,
        guest_vm: &VmFd,
        guest_ram: &GuestRam,
        config: &DeviceConfig,
    ) -> std::result::Result<GuestDevice, String> {
        let mut devices = self.devices.lock().expect("devices lock");
        if devices.iter().any(|d| d.guest.vdev() == config.vdev) {
            return Err(format!("the guest already has a device {}", config.vdev));
        }
        let taken: Vec<u64> = devices.iter().map(|d| d.guest.mmio_base).collect();
        let window = free_window(&taken)?;
        let notify = EventFd::new(EFD_NONBLOCK).map_err(|e| e.to_string())?;
        notify_ioevents(guest_vm, window, &notify, true)?;
        let mut plumbing = DevicePlumbing {
            id: host.device_id(),
            guest: GuestDevice {
                mmio_base: window,
                kind: 0,
                irq_port: 0,
                vdev: vdev_bytes(&config.vdev),
            },
            notify,
            notify_port: 0,
            dom0_irq_port: 0,
            queue_port: None,
            disk: None,
        };
        let wired = self.wire(host, evtchn, guest_ram, config, &mut plumbing);
        match wired {
            Ok(announcement) => {
                if !host.post(&self.dom0.ram, &announcement) {
                    self.unwire(host, evtchn, Some(guest_vm), plumbing);
                    return Err("Domain-0 did not take the device".into());
                }
                let guest = plumbing.guest;
                devices.push(plumbing);
                Ok(guest)
            }
            Err(e) => {
                self.unwire(host, evtchn, Some(guest_vm), plumbing);
                Err(e)
            }
        }
    }

    /// Ports, interrupt channel and hardware queue for one device; returns
    /// the announcement for Dom0.
    fn wire(
        &self,
        host: &mut Dom0Host,
        evtchn: &Mutex<EventChannels>,
        guest_ram: &GuestRam,
        config: &DeviceConfig,
        plumbing: &mut DevicePlumbing,
    ) -> std::result::Result<BackendEvent, String> {
        let mut channels = evtchn.lock().expect("event channel lock");
        plumbing.notify_port = channels
            .bind_core(DOM0, Some(&plumbing.notify), None)
            .map_err(|e| format!("notify port: {e}"))?;
        plumbing.guest.irq_port = channels
            .alloc_unbound(self.guest, DOM0)
            .map_err(|e| format!("irq port: {}", e.name()))?;
        plumbing.dom0_irq_port = channels
            .bind_interdomain(DOM0, self.guest, plumbing.guest.irq_port)
            .map_err(|e| format!("irq port: {}", e.name()))?;
        let mut ioreq_ports = [0u32; MAX_VCPUS];
        for (port, slot) in ioreq_ports.iter_mut().zip(&self.slots) {
            *port = slot.port;
        }
        let mut announcement = BackendEvent {
            event: event::ADDED,
            device_id: plumbing.id,
            domid: self.guest,
            guest_mmio_base: plumbing.guest.mmio_base,
            ioreq_page: self.ioreq_page,
            ioreq_ports,
            notify_port: plumbing.notify_port,
            irq_port: plumbing.dom0_irq_port,
            window_base: window_base(self.window_slot),
            window_bytes: guest_ram.size(),
            vdev: plumbing.guest.vdev,
            ..Default::default()
        };
        plumbing.guest.kind = config.backing.kind();
        if let Backing::Disk { path, readonly } = &config.backing {
            let (file, bytes) = open_disk(path, *readonly)?;
            let window = WindowBuffer {
                host: guest_ram.host_address(),
                dom0: window_base(self.window_slot),
                len: guest_ram.size(),
            };
            let disk = Disk::new(host, &self.dom0.ram, file.into(), &window)?;
            let port = channels.bind_core(
                DOM0,
                Some(disk.queue.completion_eventfd()),
                Some(&disk.doorbell),
            );
            plumbing.disk = Some(disk);
            let port = port.map_err(|e| format!("queue port: {e}"))?;
            plumbing.queue_port = Some(port);
            let disk = plumbing.disk.as_ref().expect("set above");
            disk.publish_layout(&self.dom0.ram, port);
            announcement.readonly = u16::from(*readonly);
            announcement.disk_bytes = bytes;
            announcement.queue_layout = disk.layout_page;
            announcement.queue_port = port;
        }
        announcement.kind = plumbing.guest.kind;
        Ok(announcement)
    }

    /// Takes one device's wiring apart (and its queue-notify ioeventfds,
    /// when the guest's VM lives on).
    fn unwire(
        &self,
        host: &mut Dom0Host,
        evtchn: &Mutex<EventChannels>,
        guest_vm: Option<&VmFd>,
        device: DevicePlumbing,
    ) {
        {
            let mut channels = evtchn.lock().expect("event channel lock");
            for port in [device.notify_port, device.dom0_irq_port]
                .into_iter()
                .chain(device.queue_port)
            {
                if port != 0 {
                    let _ = channels.close(DOM0, port);
                }
            }
            if guest_vm.is_some() && device.guest.irq_port != 0 {
                let _ = channels.close(self.guest, device.guest.irq_port);
            }
        }
        if let Some(vm) = guest_vm {
            let _ = notify_ioevents(vm, device.guest.mmio_base, &device.notify, false);
        }
        if let Some(disk) = device.disk {
            disk.remove(host, &self.dom0.ram);
        }
    }

    /// Takes the device `vdev` away from a live guest: tells Dom0, then
    /// unwires it. The caller has already withdrawn it from the guest.
    pub(crate) fn remove(
        &self,
        host: &mut Dom0Host,
        evtchn: &Mutex<EventChannels>,
        guest_vm: &VmFd,
        vdev: &str,
    ) -> std::result::Result<(), String> {
        let mut devices = self.devices.lock().expect("devices lock");
        let at = devices
            .iter()
            .position(|d| d.guest.vdev() == vdev)
            .ok_or(format!("no device {vdev}"))?;
        let device = devices.remove(at);
        drop(devices);
        host.post(
            &self.dom0.ram,
            &BackendEvent {
                event: event::REMOVED,
                device_id: device.id,
                ..Default::default()
            },
        );
        self.unwire(host, evtchn, Some(guest_vm), device);
        Ok(())
    }

    /// Takes every device away (the guest is being destroyed): tells Dom0,
    /// closes Dom0's ports, stops the hardware queues, unmaps the window.
    /// Dom0 touching the window afterwards reads all-ones: its page tables
    /// still map the slot, but no memory is behind it.
    pub(crate) fn detach(&self, host: &mut Dom0Host, evtchn: &Mutex<EventChannels>) {
        let devices = std::mem::take(&mut *self.devices.lock().expect("devices lock"));
        for device in &devices {
            host.post(
                &self.dom0.ram,
                &BackendEvent {
                    event: event::REMOVED,
                    device_id: device.id,
                    ..Default::default()
                },
            );
        }
        for device in devices {
            self.unwire(host, evtchn, None, device);
        }
        {
            let mut channels = evtchn.lock().expect("event channel lock");
            for slot in &self.slots {
                let _ = channels.close(DOM0, slot.port);
            }
        }
        host.free(self.ioreq_page, 1);
        unmap_window(&self.dom0, host, self.window_slot);
    }
}

fn window_base(slot: usize) -> u64 {
    FOREIGN_BASE + slot as u64 * FOREIGN_STRIDE
}

fn unmap_window(dom0: &Domain, host: &mut Dom0Host, slot: usize) {
    let region = kvm_userspace_memory_region {
        slot: WINDOW_MEMSLOT + slot as u32,
        flags: 0,
        guest_phys_addr: window_base(slot),
        memory_size: 0,
        userspace_addr: 0,
    };
    // SAFETY: a zero-sized region deletes the slot; nothing is mapped.
    if let Err(e) = unsafe { dom0.vm.set_user_memory_region(region) } {
        tracing::warn!("removing foreign window {slot}: {e}");
    }
    host.free_window(slot);
}
