//! I/O plumbing: the one part of the core that deals with devices, and it
//! never parses a virtio structure. For each device of a guest the core
//!
//! * reserves an MMIO register window in the guest, whose trapped accesses
//!   reach the vCPU thread;
//! * turns the window's queue-notify register into an ioeventfd;
//! * gives the guest an event-channel port for the device's interrupt;
//! * lists the device in the guest's shared page (devices can come and go
//!   while it runs: `xl block-attach`, `xl block-detach`).
//!
//! Where the backends run is the domain's [`Placement`]:
//!
//! * [`service_vm`]: in Domain-0 (the hybrid model). Register accesses are
//!   forwarded as ioreqs, the notify ioeventfd and the interrupt port are
//!   wired to Dom0's ports, and Dom0 gets a foreign window and a hardware
//!   queue;
//! * [`local`]: in this process (the host model), behind the
//!   [`LocalBackends`] seam: the core hands the backends the window's
//!   eventfds and the guest's memory and asks them to answer register
//!   accesses. The core itself links no backend code.

mod disk;
mod ioreq;
pub mod local;
pub mod reserved;
mod service_vm;

use crate::domain::Domain;
use crate::evtchn::EventChannels;
use crate::memory::GuestRam;
use kvm_ioctls::{IoEventAddress, VmFd};
use protocol::boot::SharedInfo;
use protocol::device::{device_window, GuestDevice, MAX_DEVICES};
use protocol::memory::SHARED_INFO_ADDR;
use reserved::Dom0Host;
use std::mem::offset_of;
use std::path::PathBuf;
use std::sync::Mutex;
use vmm_sys_util::eventfd::EventFd;

pub use local::{ConsoleSink, LocalBackends, LocalDevice, LocalDeviceSetup};
pub(crate) use service_vm::ServiceVmIo;

/// Offset of virtio-mmio's QueueNotify register in a window (the only
/// register the core needs to know: it becomes an ioeventfd).
const QUEUE_NOTIFY: u64 = 0x50;
/// Queue indices whose notifications are caught in the kernel.
const NOTIFY_QUEUES: u32 = 2;

/// A device to give a guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Virtual device name (`xvda`, `console`).
    pub vdev: String,
    /// What backs it.
    pub backing: Backing,
}

impl DeviceConfig {
    /// A raw disk image at `path` seen by the guest as `vdev`.
    pub fn disk(vdev: &str, path: impl Into<PathBuf>, readonly: bool) -> Self {
        Self {
            vdev: vdev.into(),
            backing: Backing::Disk {
                path: path.into(),
                readonly,
            },
        }
    }

    /// The guest's virtio console.
    pub fn console() -> Self {
        Self {
            vdev: "console".into(),
            backing: Backing::Console,
        }
    }

    /// A guest's standard device list: one disk as `xvda` and a console.
    pub fn disk_and_console(path: impl Into<PathBuf>, readonly: bool) -> Vec<Self> {
        vec![Self::disk("xvda", path, readonly), Self::console()]
    }
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

impl Backing {
    /// The device kind the guest sees (`protocol::device::kind`).
    pub fn kind(&self) -> u32 {
        match self {
            Self::Disk { .. } => protocol::device::kind::BLOCK,
            Self::Console => protocol::device::kind::CONSOLE,
        }
    }
}

/// Opens a disk image, writable unless `readonly`, and returns it with its
/// size in bytes; the error names the image. Both placements open their
/// disks with it.
pub fn open_disk(path: &std::path::Path, readonly: bool) -> Result<(std::fs::File, u64), String> {
    let failed = |e: std::io::Error| format!("disk {}: {e}", path.display());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(!readonly)
        .open(path)
        .map_err(failed)?;
    let bytes = file.metadata().map_err(failed)?.len();
    Ok((file, bytes))
}

/// Where a domain's device backends run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// In Domain-0, the service VM (the hybrid model; xl.cfg
    /// `backend_placement = "service-vm"`).
    #[default]
    ServiceVm,
    /// In the core's own process, as QEMU/KVM do (the host model; xl.cfg
    /// `backend_placement = "host"`).
    Host,
}

impl Placement {
    /// The name xl.cfg and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Self::ServiceVm => "service-vm",
            Self::Host => "host",
        }
    }
}

/// A guest's devices, in either placement.
pub(crate) struct DeviceIo {
    serving: Serving,
    /// Generation of the device table in the guest's shared page.
    generation: Mutex<u32>,
}

/// Who serves a guest's devices.
pub(crate) enum Serving {
    /// Domain-0.
    ServiceVm(ServiceVmIo),
    /// This process.
    Host(local::LocalIo),
}

impl DeviceIo {
    /// Devices served by `serving`, none published yet.
    pub fn new(serving: Serving) -> Self {
        Self {
            serving,
            generation: Mutex::new(0),
        }
    }

    /// Who serves the devices.
    pub fn serving(&self) -> &Serving {
        &self.serving
    }

    /// True if `addr` falls in one of the guest's device windows.
    pub fn owns(&self, addr: u64) -> bool {
        match &self.serving {
            Serving::ServiceVm(io) => io.owns(addr),
            Serving::Host(io) => io.owns(addr),
        }
    }

    /// Performs a trapped read of `data.len()` bytes at `addr` by vCPU
    /// `vcpu` of `guest`.
    pub fn read(&self, guest: &Domain, vcpu: u8, addr: u64, data: &mut [u8]) {
        let len = data.len().min(8);
        let value = match &self.serving {
            Serving::ServiceVm(io) => io.forward_counted(guest, vcpu, addr, len, None),
            Serving::Host(io) => io.read(addr, len as u8),
        };
        data[..len].copy_from_slice(&value.to_le_bytes()[..len]);
    }

    /// Performs a trapped write of `data` at `addr` by vCPU `vcpu` of
    /// `guest`.
    pub fn write(&self, guest: &Domain, vcpu: u8, addr: u64, data: &[u8]) {
        let mut bytes = [0u8; 8];
        let len = data.len().min(8);
        bytes[..len].copy_from_slice(&data[..len]);
        let value = u64::from_le_bytes(bytes);
        match &self.serving {
            Serving::ServiceVm(io) => {
                io.forward_counted(guest, vcpu, addr, len, Some(value));
            }
            Serving::Host(io) => io.write(addr, len as u8, value),
        }
    }

    /// The devices as the guest sees them.
    pub fn guest_devices(&self) -> Vec<GuestDevice> {
        match &self.serving {
            Serving::ServiceVm(io) => io.guest_devices(),
            Serving::Host(io) => io.guest_devices(),
        }
    }

    /// Writes the device table into the guest's shared page, leaving out
    /// `without`, and bumps the generation; returns it.
    pub fn publish(&self, guest_ram: &GuestRam, without: Option<&str>) -> u32 {
        let devices: Vec<GuestDevice> = self
            .guest_devices()
            .into_iter()
            .filter(|d| Some(d.vdev()) != without)
            .collect();
        let mut generation = self.generation.lock().expect("generation lock");
        *generation += 1;
        let base = SHARED_INFO_ADDR;
        for (i, device) in devices.iter().enumerate() {
            let at = base
                + (offset_of!(SharedInfo, devices) + i * std::mem::size_of::<GuestDevice>()) as u64;
            guest_ram.write_struct(at, device);
        }
        guest_ram.write_u32(
            base + offset_of!(SharedInfo, device_count) as u64,
            devices.len() as u32,
        );
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        guest_ram.write_u32(
            base + offset_of!(SharedInfo, devices_generation) as u64,
            *generation,
        );
        *generation
    }

    /// Takes every device away (the guest is being destroyed). `host` is
    /// Dom0's reserved RAM, which the service-VM placement needs.
    pub fn detach(&self, host: Option<&mut Dom0Host>, evtchn: &Mutex<EventChannels>) {
        match &self.serving {
            Serving::ServiceVm(io) => {
                if let Some(host) = host {
                    io.detach(host, evtchn);
                }
            }
            Serving::Host(io) => io.detach(evtchn),
        }
    }
}

/// The first register window not among `taken` (window bases).
fn free_window(taken: &[u64]) -> Result<u64, String> {
    (0..MAX_DEVICES)
        .map(device_window)
        .find(|w| !taken.contains(w))
        .ok_or_else(|| format!("at most {MAX_DEVICES} devices"))
}

/// Registers (`on`) or unregisters the queue-notify ioeventfds of the
/// window at `window`: a write of a queue index to QueueNotify signals
/// `notify` inside KVM, without an exit to user space.
fn notify_ioevents(vm: &VmFd, window: u64, notify: &EventFd, on: bool) -> Result<(), String> {
    let at = IoEventAddress::Mmio(window + QUEUE_NOTIFY);
    for queue in 0..NOTIFY_QUEUES {
        if !on {
            let _ = vm.unregister_ioevent(notify, &at, queue);
            continue;
        }
        if let Err(e) = vm.register_ioevent(notify, &at, queue) {
            for registered in 0..queue {
                let _ = vm.unregister_ioevent(notify, &at, registered);
            }
            return Err(format!("queue-notify ioeventfd: {e}"));
        }
    }
    Ok(())
}
