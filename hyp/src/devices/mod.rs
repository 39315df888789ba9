//! I/O plumbing: what the core does so that Dom0's backends can serve a
//! guest's devices. This is the one part of the core that deals with
//! devices, and it never parses a virtio structure: it only
//!
//! * reserves each device's MMIO window in the guest and forwards trapped
//!   register accesses to Dom0 through ioreq slots ([`ioreq`]);
//! * wires the window's queue-notify register as an ioeventfd straight to a
//!   Dom0 port, and a Dom0 port to the guest's device interrupt, so
//!   steady-state I/O never wakes the core;
//! * maps the guest's RAM into Dom0 as a foreign window;
//! * lends Dom0 a hardware queue per disk ([`disk`]);
//! * tells Dom0 about it all through the backend ring ([`reserved`]).

mod disk;
mod ioreq;
pub mod reserved;

use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::evtchn::EventChannels;
use disk::{Disk, WindowBuffer};
use ioreq::IoreqSlot;
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{IoEventAddress, VmFd};
use protocol::device::{
    device_window, event, kind, vdev_bytes, BackendEvent, GuestDevice, DEVICE_WINDOW_SIZE,
    FOREIGN_BASE, FOREIGN_STRIDE, MAX_DEVICES,
};
use protocol::domain::{DomId, DOM0};
use protocol::ioreq::SLOT_SIZE;
use reserved::{Dom0Host, MAX_WINDOW_BYTES};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Offset of virtio-mmio's QueueNotify register in a window (the only
/// register the core needs to know: it becomes an ioeventfd).
const QUEUE_NOTIFY: u64 = 0x50;
/// Queue indices whose notifications are caught in the kernel.
const NOTIFY_QUEUES: u32 = 2;
/// First KVM memory slot used for foreign windows in Dom0.
const WINDOW_MEMSLOT: u32 = 1;

/// A device to give a guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Virtual device name (`xvda`, `console`).
    pub vdev: String,
    /// What backs it.
    pub backing: Backing,
}

/// What backs a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// A raw disk image on the host.
    Disk {
        /// Path of the image.
        path: PathBuf,
        /// The guest may not write.
        readonly: bool,
    },
    /// A console whose output reaches the guest's console log.
    Console,
}

/// One device's plumbing.
struct DevicePlumbing {
    id: u32,
    window: u64,
    notify_port: u32,
    dom0_irq_port: u32,
    queue_port: Option<u32>,
    disk: Option<Disk>,
}

/// Everything a guest with devices holds for them.
pub struct DomainIo {
    dom0: Arc<Domain>,
    slots: Vec<IoreqSlot>,
    ioreq_page: u64,
    window_slot: usize,
    devices: Mutex<Vec<DevicePlumbing>>,
    /// What the guest's boot info lists.
    pub guest_devices: Vec<GuestDevice>,
}

impl DomainIo {
    /// True if `addr` falls in one of the guest's device windows.
    pub fn owns(&self, addr: u64) -> bool {
        self.guest_devices
            .iter()
            .any(|d| (d.mmio_base..d.mmio_base + DEVICE_WINDOW_SIZE).contains(&addr))
    }

    /// Forwards a trapped access by vCPU `vcpu` to Dom0 (see [`ioreq`]).
    pub fn forward(
        &self,
        guest: &Domain,
        vcpu: u8,
        addr: u64,
        size: u32,
        write: Option<u64>,
    ) -> u64 {
        match self.slots.get(vcpu as usize) {
            Some(slot) => slot.forward(&self.dom0, guest, addr, size, write),
            None => u64::MAX,
        }
    }
}

/// Sets up a guest's devices; on failure everything made so far is undone.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attach(
    host: &mut Dom0Host,
    evtchn: &Mutex<EventChannels>,
    dom0: Arc<Domain>,
    guest: DomId,
    guest_vm: &VmFd,
    guest_ram: &crate::memory::GuestRam,
    vcpus: u8,
    configs: &[DeviceConfig],
) -> Result<DomainIo> {
    let fail = |m: String| Error::BadState {
        domid: guest,
        message: m,
    };
    if configs.len() > MAX_DEVICES {
        return Err(fail(format!(
            "{} devices; at most {MAX_DEVICES}",
            configs.len()
        )));
    }
    if guest_ram.size() > MAX_WINDOW_BYTES {
        return Err(fail(format!(
            "a guest with devices may have at most {} MiB",
            MAX_WINDOW_BYTES >> 20
        )));
    }
    let window_slot = host
        .alloc_window()
        .ok_or_else(|| fail("Domain-0 has no free foreign window".into()))?;
    let window_base = FOREIGN_BASE + window_slot as u64 * FOREIGN_STRIDE;
    let region = kvm_userspace_memory_region {
        slot: WINDOW_MEMSLOT + window_slot as u32,
        flags: 0,
        guest_phys_addr: window_base,
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
    let mut io = DomainIo {
        dom0,
        slots: Vec::new(),
        ioreq_page,
        window_slot,
        devices: Mutex::new(Vec::new()),
        guest_devices: Vec::new(),
    };
    match build(
        &mut io,
        host,
        evtchn,
        guest,
        guest_vm,
        guest_ram,
        window_base,
        vcpus,
        configs,
    ) {
        Ok(()) => Ok(io),
        Err(e) => {
            io.detach(host, evtchn, true);
            Err(fail(e))
        }
    }
}

impl DomainIo {
    /// Takes the devices away: tells Dom0 (when `announce`), closes Dom0's
    /// ports for them, stops their hardware queues and unmaps the window.
    /// Dom0 touching the window afterwards reads all-ones: its page tables
    /// still map the slot, but no memory is behind it.
    pub(crate) fn detach(
        &self,
        host: &mut Dom0Host,
        evtchn: &Mutex<EventChannels>,
        announce: bool,
    ) {
        let devices = std::mem::take(&mut *self.devices.lock().expect("devices lock"));
        if announce {
            for device in &devices {
                let removed = BackendEvent {
                    event: event::REMOVED,
                    device_id: device.id,
                    ..Default::default()
                };
                host.post(&self.dom0.ram, &removed);
            }
        }
        {
            let mut evtchn = evtchn.lock().expect("event channel lock");
            for slot in &self.slots {
                let _ = evtchn.close(DOM0, slot.port);
            }
            for device in &devices {
                for port in [
                    Some(device.notify_port),
                    Some(device.dom0_irq_port),
                    device.queue_port,
                ]
                .into_iter()
                .flatten()
                {
                    let _ = evtchn.close(DOM0, port);
                }
            }
        }
        for device in devices {
            tracing::debug!("device {} at {:#x} removed", device.id, device.window);
            if let Some(disk) = device.disk {
                disk.remove(host, &self.dom0.ram);
            }
        }
        host.free(self.ioreq_page, 1);
        unmap_window(&self.dom0, host, self.window_slot);
    }
}

#[allow(clippy::too_many_arguments)]
fn build(
    io: &mut DomainIo,
    host: &mut Dom0Host,
    evtchn: &Mutex<EventChannels>,
    guest: DomId,
    guest_vm: &VmFd,
    guest_ram: &crate::memory::GuestRam,
    window_base: u64,
    vcpus: u8,
    configs: &[DeviceConfig],
) -> std::result::Result<(), String> {
    let dom0 = Arc::clone(&io.dom0);
    let mut evtchn = evtchn.lock().expect("event channel lock");
    let mut ioreq_ports = [0u32; protocol::boot::MAX_VCPUS];
    for (vcpu, slot_port) in ioreq_ports.iter_mut().enumerate().take(vcpus as usize) {
        let to_dom0 = EventFd::new(EFD_NONBLOCK).map_err(|e| e.to_string())?;
        let from_dom0 = EventFd::new(EFD_NONBLOCK).map_err(|e| e.to_string())?;
        let port = evtchn
            .bind_core(DOM0, Some(&to_dom0), Some(&from_dom0))
            .map_err(|e| format!("ioreq port: {e}"))?;
        *slot_port = port;
        io.slots.push(IoreqSlot {
            gpa: io.ioreq_page + (vcpu * SLOT_SIZE) as u64,
            port,
            to_dom0,
            from_dom0,
        });
    }
    for (index, config) in configs.iter().enumerate() {
        let window = device_window(index);
        let notify = EventFd::new(EFD_NONBLOCK).map_err(|e| e.to_string())?;
        for queue in 0..NOTIFY_QUEUES {
            guest_vm
                .register_ioevent(&notify, &IoEventAddress::Mmio(window + QUEUE_NOTIFY), queue)
                .map_err(|e| format!("queue-notify ioeventfd: {e}"))?;
        }
        let notify_port = evtchn
            .bind_core(DOM0, Some(&notify), None)
            .map_err(|e| format!("notify port: {e}"))?;
        let guest_irq = evtchn
            .alloc_unbound(guest, DOM0)
            .map_err(|e| format!("irq port: {}", e.name()))?;
        let dom0_irq = evtchn
            .bind_interdomain(DOM0, guest, guest_irq)
            .map_err(|e| format!("irq port: {}", e.name()))?;
        let mut plumbing = DevicePlumbing {
            id: host.device_id(),
            window,
            notify_port,
            dom0_irq_port: dom0_irq,
            queue_port: None,
            disk: None,
        };
        let mut announcement = BackendEvent {
            event: event::ADDED,
            device_id: plumbing.id,
            domid: guest,
            guest_mmio_base: window,
            ioreq_page: io.ioreq_page,
            ioreq_ports,
            notify_port,
            irq_port: dom0_irq,
            window_base,
            window_bytes: guest_ram.size(),
            vdev: vdev_bytes(&config.vdev),
            ..Default::default()
        };
        let device_kind = match &config.backing {
            Backing::Console => kind::CONSOLE,
            Backing::Disk { path, readonly } => {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(!readonly)
                    .open(path)
                    .map_err(|e| format!("disk {}: {e}", path.display()))?;
                let bytes = file
                    .metadata()
                    .map_err(|e| format!("disk {}: {e}", path.display()))?
                    .len();
                let window = WindowBuffer {
                    host: guest_ram.host_address(),
                    dom0: window_base,
                    len: guest_ram.size(),
                };
                let disk = Disk::new(host, &dom0.ram, file.into(), &window)?;
                let port = evtchn
                    .bind_core(
                        DOM0,
                        Some(disk.queue.completion_eventfd()),
                        Some(&disk.doorbell),
                    )
                    .map_err(|e| format!("queue port: {e}"));
                let port = match port {
                    Ok(port) => port,
                    Err(e) => {
                        disk.remove(host, &dom0.ram);
                        return Err(e);
                    }
                };
                disk.publish_layout(&dom0.ram, port);
                announcement.readonly = u16::from(*readonly);
                announcement.disk_bytes = bytes;
                announcement.queue_layout = disk.layout_page;
                announcement.queue_port = port;
                plumbing.queue_port = Some(port);
                plumbing.disk = Some(disk);
                kind::BLOCK
            }
        };
        announcement.kind = device_kind;
        io.guest_devices.push(GuestDevice {
            mmio_base: window,
            kind: device_kind,
            irq_port: guest_irq,
            vdev: announcement.vdev,
        });
        io.devices.lock().expect("devices lock").push(plumbing);
        if !host.post(&dom0.ram, &announcement) {
            return Err("Domain-0 did not take the device".into());
        }
    }
    Ok(())
}

fn unmap_window(dom0: &Domain, host: &mut Dom0Host, slot: usize) {
    let region = kvm_userspace_memory_region {
        slot: WINDOW_MEMSLOT + slot as u32,
        flags: 0,
        guest_phys_addr: FOREIGN_BASE + slot as u64 * FOREIGN_STRIDE,
        memory_size: 0,
        userspace_addr: 0,
    };
    // SAFETY: a zero-sized region deletes the slot; nothing is mapped.
    if let Err(e) = unsafe { dom0.vm.set_user_memory_region(region) } {
        tracing::warn!("removing foreign window {slot}: {e}");
    }
    host.free_window(slot);
}
