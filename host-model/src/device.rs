//! One device served in the core's process: its model, its platform, its
//! ring and its worker thread.
//!
//! The model and the platform sit behind one lock, taken by the guest's
//! vCPU threads for register accesses and by the worker for queue
//! notifications and completions. The lock is never held across
//! `io_uring_enter`.

use backends::{BlkConfig, DeviceModel, NetConfig};
use hyp::{ConsoleSink, GuestRam, MmioAccess, MmioHandler};
use protocol::device::NetParams;
use protocol::domain::DomId;
use protocol::report::{heapless_name::Name, BackendStats};
use protocol::virtio::blk::ID_BYTES;
use protocol::virtio::mmio::OFFERED_QUEUE_SIZE;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::error::{host, HostModelError};
use crate::platform::HostPlatform;
use crate::shared::{Shared, State};
use crate::tap::TapIo;
use crate::trace::Tracer;
use crate::uring::{new_ring, RingIo};
use crate::worker;

/// What backs a device.
#[derive(Debug)]
pub enum HostBacking {
    /// A disk image the caller opened (read-write unless `readonly`).
    Disk {
        /// The image.
        file: File,
        /// Its size in bytes.
        bytes: u64,
        /// The guest may not write.
        readonly: bool,
    },
    /// A console whose output reaches the guest's console log.
    Console,
    /// A vif: its tap (one frame per read or write, already on its
    /// bridge; the device makes it non-blocking) and its port's MAC and
    /// limits.
    Net {
        /// The tap.
        tap: File,
        /// The vif's MAC, `ip=` and `rate=`.
        params: NetParams,
    },
}

/// What a device needs from whoever sets it up.
#[derive(Debug)]
pub struct HostDeviceSetup {
    /// The guest.
    pub domid: DomId,
    /// The device's name (`xvda`, `console`).
    pub vdev: String,
    /// What backs it.
    pub backing: HostBacking,
    /// The guest's RAM (a handle that keeps it mapped while the device
    /// lives, even after the guest is gone).
    pub memory: GuestRam,
    /// Becomes readable when the guest writes the window's QueueNotify
    /// register (an ioeventfd: the write never leaves the kernel).
    pub notify: EventFd,
    /// Writing 1 raises the device's interrupt in the guest (an irqfd).
    pub interrupt: EventFd,
    /// The guest's console log, for a console device's output.
    pub console: ConsoleSink,
    /// Guest-physical base of the device's register window (trace records
    /// name the device by its page).
    pub mmio_base: u64,
}

/// A device served by the host model.
pub struct HostDevice {
    shared: Arc<Shared>,
    stop: EventFd,
    worker: Option<JoinHandle<()>>,
    domid: DomId,
    vdev: String,
}

impl HostDevice {
    /// Builds the model and the ring over `setup`'s backing and starts the
    /// worker.
    pub fn start(setup: HostDeviceSetup) -> Result<Self, HostModelError> {
        let (ram_host, ram_bytes) = (setup.memory.host_address(), setup.memory.size());
        let mut net = None;
        let (model, disk) = match setup.backing {
            HostBacking::Disk {
                file,
                bytes,
                readonly,
            } => {
                let mut id = [0u8; ID_BYTES];
                let n = setup.vdev.len().min(ID_BYTES);
                id[..n].copy_from_slice(&setup.vdev.as_bytes()[..n]);
                let config = BlkConfig {
                    read_only: readonly,
                    id,
                    ..BlkConfig::new(bytes)
                };
                (DeviceModel::blk(config), Some(file))
            }
            HostBacking::Console => (DeviceModel::console(OFFERED_QUEUE_SIZE), None),
            HostBacking::Net { tap, params } => {
                net = Some(params);
                (DeviceModel::net(NetConfig::new(params.mac)), Some(tap))
            }
        };
        let ring = new_ring(disk.as_ref().map(AsRawFd::as_raw_fd), ram_host, ram_bytes)?;
        let stop = EventFd::new(EFD_NONBLOCK).map_err(host("eventfd"))?;
        let mut io = RingIo::new(
            ram_host,
            ram_bytes,
            setup.notify,
            setup.interrupt,
            stop.try_clone().map_err(host("eventfd"))?,
        );
        io.arm();
        let tap = match (net, disk.as_ref()) {
            (Some(params), Some(file)) => Some(TapIo::new(&params, file.as_raw_fd(), |entry| {
                io.queue(entry)
            })?),
            _ => None,
        };
        let tracer = Tracer {
            domid: setup.domid,
            device: (setup.mmio_base >> 12) as u32,
        };
        let platform = HostPlatform::new(tracer, setup.memory, ram_bytes, setup.console, io);
        let shared = Arc::new(Shared::new(ring, model, platform, tap, disk));
        let worker = {
            let shared = Arc::clone(&shared);
            let (domid, vdev) = (setup.domid, setup.vdev.clone());
            std::thread::Builder::new()
                .name(format!("hostio{domid}.{vdev}"))
                .spawn(move || worker::run(&shared, domid, &vdev))
                .map_err(host("starting the device thread"))?
        };
        Ok(Self {
            shared,
            stop,
            worker: Some(worker),
            domid: setup.domid,
            vdev: setup.vdev,
        })
    }
}

impl MmioHandler for HostDevice {
    fn read(&self, access: &MmioAccess) -> u64 {
        let mut state = self.shared.lock();
        state.accesses += 1;
        state.model.read(access.offset, access.size)
    }

    fn write(&self, access: &MmioAccess, value: u64) {
        let mut state = self.shared.lock();
        let State {
            model, platform, ..
        } = &mut *state;
        model.write(platform, access.offset, access.size, value);
        state.accesses += 1;
        state.check_health(self.domid, &self.vdev);
        // A write may have started I/O or raised an interrupt (a reset, a
        // queue index the ioeventfds do not catch): hand it to the kernel.
        if state.platform.io.has_waiting() && state.platform.io.push(&self.shared.ring) {
            state.platform.io.count_enter();
            drop(state);
            if let Err(e) = self.shared.ring.submit() {
                tracing::warn!("host model: io_uring_enter: {e}");
            }
        }
    }
}

impl HostDevice {
    /// What the backend did so far.
    pub fn stats(&self) -> BackendStats {
        let state = self.shared.lock();
        let t = state.model.stats();
        let r = state.platform.io.stats();
        BackendStats {
            domid: self.domid,
            vdev: Name::new(&self.vdev),
            requests: r.completed,
            notifies: t.notifies,
            polled: t.polled,
            interrupts: r.interrupts,
            register_accesses: state.accesses,
            wakeups: self.shared.wakeups.load(Ordering::Relaxed),
            backend_interrupts: 0,
            sqes: r.sqes,
            submits: r.enters,
            fsyncs: r.fsyncs,
        }
    }
}

impl Drop for HostDevice {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        let state = self.shared.lock();
        if let (Some(tap), Some(net)) = (state.tap.as_ref(), state.model.as_net()) {
            let (tap, port) = tap.stats();
            tracing::info!(
                domid = self.domid,
                "host model: {}: {}; tap {} frames read ({} held for a receive buffer), {} written ({} times every write buffer busy), {} errors; port: {port}",
                self.vdev,
                net.stats(),
                tap.reads,
                tap.held,
                tap.writes,
                tap.tx_full,
                tap.errors,
            );
        }
        drop(state);
        let s = self.stats();
        tracing::info!(
            domid = self.domid,
            "host model: removed {}: {} requests, {} notifies, {} interrupts, {} io_uring_enter",
            self.vdev,
            s.requests,
            s.notifies,
            s.interrupts,
            s.submits
        );
    }
}
