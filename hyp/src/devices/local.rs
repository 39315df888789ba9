//! The host model's seam: devices whose backends run inside this process
//! rather than in Domain-0.
//!
//! The core does the same plumbing as for Domain-0 (a register window, a
//! queue-notify ioeventfd, an interrupt port with an irqfd) and hands
//! everything else to the [`LocalBackends`] installed with
//! [`crate::Hypervisor::set_local_backends`]. It never learns what the
//! device is: it passes register accesses on, from the vCPU thread that
//! trapped them, and asks for counters. The toolstack installs the
//! `host-model` crate here; a core without it refuses host placement.

use super::{free_window, notify_ioevents, Backing, DeviceConfig};
use crate::evtchn::EventChannels;
use crate::hypervisor::Inner;
use crate::memory::GuestRam;
use kvm_ioctls::VmFd;
use protocol::device::{vdev_bytes, GuestDevice, DEVICE_WINDOW_SIZE};
use protocol::domain::DomId;
use protocol::report::BackendStats;
use std::sync::{Arc, Mutex, Weak};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Backends that run in the core's process (the host model).
pub trait LocalBackends: Send + Sync + std::fmt::Debug {
    /// Starts serving a device. The returned value answers the device's
    /// register accesses until it is dropped; dropping it must stop
    /// everything it started (threads, host I/O in flight).
    fn start(&self, setup: LocalDeviceSetup) -> Result<Box<dyn LocalDevice>, String>;
}

/// What the core gives a local backend for one device.
pub struct LocalDeviceSetup {
    /// The guest.
    pub domid: DomId,
    /// The device's name (`xvda`, `console`).
    pub vdev: String,
    /// What backs it.
    pub backing: Backing,
    /// The guest's RAM (a mapping that stays valid while this value or a
    /// clone of it lives, even after the guest is gone).
    pub memory: GuestMemoryMmap,
    /// Becomes readable when the guest writes the window's QueueNotify
    /// register (an ioeventfd: the write never leaves the kernel).
    pub notify: EventFd,
    /// Writing 1 raises the device's interrupt in the guest (an irqfd).
    pub interrupt: EventFd,
    /// The guest's console log, for a console device's output.
    pub console: ConsoleSink,
}

/// Where a local console backend's output goes: the guest's console log,
/// as if the guest had written it there itself (Domain-0's console backend
/// does the same with its `console_write_for` hypercall).
#[derive(Clone)]
pub struct ConsoleSink {
    core: Weak<Inner>,
    domid: DomId,
}

impl ConsoleSink {
    /// Appends `bytes` to the guest's console log; dropped once the guest
    /// (or the core) is gone.
    pub fn write(&self, bytes: &[u8]) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        if let Some(domain) = core.find(self.domid) {
            core.console_output(&domain, bytes);
        }
    }
}

/// One device served in this process.
pub trait LocalDevice: Send + Sync {
    /// A trapped read of `size` bytes (1 to 8) at `offset` in the window;
    /// returns them little-endian in the low bytes.
    fn read(&self, offset: u64, size: u8) -> u64;
    /// A trapped write of the low `size` bytes of `value` at `offset` in
    /// the window.
    fn write(&self, offset: u64, size: u8, value: u64);
    /// What the backend did so far.
    fn stats(&self) -> BackendStats;
}

/// One device's plumbing.
struct Served {
    guest: GuestDevice,
    notify: EventFd,
    device: Box<dyn LocalDevice>,
}

/// A guest's devices served in this process.
pub(crate) struct LocalIo {
    backends: Arc<dyn LocalBackends>,
    core: Weak<Inner>,
    guest: DomId,
    devices: Mutex<Vec<Served>>,
}

impl LocalIo {
    /// No devices yet; they come with [`LocalIo::add`].
    pub fn new(backends: Arc<dyn LocalBackends>, core: Weak<Inner>, guest: DomId) -> Self {
        Self {
            backends,
            core,
            guest,
            devices: Mutex::new(Vec::new()),
        }
    }

    /// True if `addr` falls in one of the guest's device windows.
    pub fn owns(&self, addr: u64) -> bool {
        self.with_window(addr, |_, _| ()).is_some()
    }

    /// A trapped read; all-ones if no device holds `addr` any more.
    pub fn read(&self, addr: u64, size: u8) -> u64 {
        self.with_window(addr, |device, offset| device.read(offset, size))
            .unwrap_or(u64::MAX)
    }

    /// A trapped write; dropped if no device holds `addr` any more.
    pub fn write(&self, addr: u64, size: u8, value: u64) {
        self.with_window(addr, |device, offset| device.write(offset, size, value));
    }

    /// Runs `f` on the device whose window holds `addr`, with the offset
    /// of `addr` in it.
    fn with_window<R>(&self, addr: u64, f: impl FnOnce(&dyn LocalDevice, u64) -> R) -> Option<R> {
        let devices = self.devices.lock().expect("devices lock");
        devices
            .iter()
            .find_map(|d| Some((d, window_offset(d, addr)?)))
            .map(|(served, offset)| f(served.device.as_ref(), offset))
    }

    /// The devices as the guest sees them.
    pub fn guest_devices(&self) -> Vec<GuestDevice> {
        let devices = self.devices.lock().expect("devices lock");
        devices.iter().map(|d| d.guest).collect()
    }

    /// What each device's backend did so far.
    pub fn stats(&self) -> Vec<BackendStats> {
        let devices = self.devices.lock().expect("devices lock");
        devices.iter().map(|d| d.device.stats()).collect()
    }

    /// Gives the guest a device: a window, its notify ioeventfd, an
    /// interrupt port, and a backend started for it.
    pub fn add(
        &self,
        evtchn: &Mutex<EventChannels>,
        guest_vm: &VmFd,
        guest_ram: &GuestRam,
        config: &DeviceConfig,
    ) -> Result<GuestDevice, String> {
        let mut devices = self.devices.lock().expect("devices lock");
        if devices.iter().any(|d| d.guest.vdev() == config.vdev) {
            return Err(format!("the guest already has a device {}", config.vdev));
        }
        let taken: Vec<u64> = devices.iter().map(|d| d.guest.mmio_base).collect();
        let window = free_window(&taken)?;
        let fd = || EventFd::new(EFD_NONBLOCK).map_err(|e| e.to_string());
        let (notify, interrupt) = (fd()?, fd()?);
        let setup = LocalDeviceSetup {
            domid: self.guest,
            vdev: config.vdev.clone(),
            backing: config.backing.clone(),
            memory: guest_ram.memory(),
            notify: notify.try_clone().map_err(|e| e.to_string())?,
            interrupt: interrupt.try_clone().map_err(|e| e.to_string())?,
            console: ConsoleSink {
                core: Weak::clone(&self.core),
                domid: self.guest,
            },
        };
        let irq_port = evtchn
            .lock()
            .expect("event channel lock")
            .bind_core(self.guest, Some(&interrupt), None)
            .map_err(|e| format!("irq port: {e}"))?;
        let close_port = || {
            let mut channels = evtchn.lock().expect("event channel lock");
            let _ = channels.close(self.guest, irq_port);
        };
        if let Err(e) = notify_ioevents(guest_vm, window, &notify, true) {
            close_port();
            return Err(e);
        }
        let device = match self.backends.start(setup) {
            Ok(device) => device,
            Err(e) => {
                let _ = notify_ioevents(guest_vm, window, &notify, false);
                close_port();
                return Err(e);
            }
        };
        let guest = GuestDevice {
            mmio_base: window,
            kind: config.backing.kind(),
            irq_port,
            vdev: vdev_bytes(&config.vdev),
        };
        devices.push(Served {
            guest,
            notify,
            device,
        });
        Ok(guest)
    }

    /// Takes the device `vdev` away from a live guest (the guest has
    /// already been told) and stops its backend.
    pub fn remove(
        &self,
        evtchn: &Mutex<EventChannels>,
        guest_vm: &VmFd,
        vdev: &str,
    ) -> Result<(), String> {
        let mut devices = self.devices.lock().expect("devices lock");
        let at = devices
            .iter()
            .position(|d| d.guest.vdev() == vdev)
            .ok_or(format!("no device {vdev}"))?;
        let served = devices.remove(at);
        drop(devices);
        let _ = notify_ioevents(guest_vm, served.guest.mmio_base, &served.notify, false);
        let _ = evtchn
            .lock()
            .expect("event channel lock")
            .close(self.guest, served.guest.irq_port);
        drop(served);
        Ok(())
    }

    /// Stops every backend (the guest is being destroyed; its ports and
    /// ioeventfds go with its VM).
    pub fn detach(&self, evtchn: &Mutex<EventChannels>) {
        let devices = std::mem::take(&mut *self.devices.lock().expect("devices lock"));
        let mut channels = evtchn.lock().expect("event channel lock");
        for served in &devices {
            let _ = channels.close(self.guest, served.guest.irq_port);
        }
        drop(channels);
        drop(devices);
    }
}

/// The offset of `addr` in the device's window, if it lies there.
fn window_offset(served: &Served, addr: u64) -> Option<u64> {
    let offset = addr.checked_sub(served.guest.mmio_base)?;
    (offset < DEVICE_WINDOW_SIZE).then_some(offset)
}
