//! One device served in the core's process: its model, its platform, its
//! ring and its worker thread.
//!
//! The model and the platform sit behind one lock, taken by the guest's
//! vCPU threads for register accesses and by the worker for queue
//! notifications and completions. The lock is never held across
//! `io_uring_enter`.

use backends::{BlkConfig, DeviceModel};
use hyp::devices::{open_disk, Backing, LocalDevice, LocalDeviceSetup};
use io_uring::IoUring;
use protocol::domain::DomId;
use protocol::report::{heapless_name::Name, BackendStats};
use protocol::virtio::blk::ID_BYTES;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::platform::HostPlatform;
use crate::uring::{new_ring, Work};
use crate::{worker, QUEUE_SIZE};

/// What the vCPU threads and the worker share.
pub(crate) struct Shared {
    /// The device's io_uring. Its SQ and CQ are touched only with `state`
    /// locked; `io_uring_enter` is called without it.
    pub ring: IoUring,
    /// The model and its platform.
    pub state: Mutex<State>,
    /// Times the worker's wait returned.
    pub wakeups: AtomicU64,
    /// The backing file, open for as long as the ring may use it.
    _disk: Option<File>,
}

/// The lock-protected part of a device.
pub(crate) struct State {
    pub model: DeviceModel,
    pub platform: HostPlatform,
    pub accesses: u64,
    pub reset_logged: bool,
}

impl Shared {
    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("host-model device lock")
    }
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
    /// Opens the backing, builds the model and the ring, and starts the
    /// worker.
    pub fn start(setup: LocalDeviceSetup) -> Result<Self, String> {
        let region = setup.memory.iter().next().ok_or("the guest has no RAM")?;
        let (ram_host, ram_bytes) = (region.as_ptr() as u64, region.len());
        let (model, disk) = match &setup.backing {
            Backing::Disk { path, readonly } => {
                let (file, bytes) = open_disk(path, *readonly)?;
                let mut id = [0u8; ID_BYTES];
                let n = setup.vdev.len().min(ID_BYTES);
                id[..n].copy_from_slice(&setup.vdev.as_bytes()[..n]);
                let config = BlkConfig {
                    read_only: *readonly,
                    id,
                    queue_size: QUEUE_SIZE,
                    ..BlkConfig::new(bytes)
                };
                (DeviceModel::blk(config), Some(file))
            }
            Backing::Console => (DeviceModel::console(QUEUE_SIZE), None),
        };
        let ring = new_ring(disk.as_ref().map(AsRawFd::as_raw_fd), ram_host, ram_bytes)?;
        let stop = EventFd::new(EFD_NONBLOCK).map_err(|e| e.to_string())?;
        let mut work = Work::new(
            ram_host,
            ram_bytes,
            setup.notify,
            setup.interrupt,
            stop.try_clone().map_err(|e| e.to_string())?,
        );
        work.arm();
        let platform = HostPlatform::new(setup.memory, ram_bytes, setup.console, work);
        let shared = Arc::new(Shared {
            ring,
            state: Mutex::new(State {
                model,
                platform,
                accesses: 0,
                reset_logged: false,
            }),
            wakeups: AtomicU64::new(0),
            _disk: disk,
        });
        let worker = {
            let shared = Arc::clone(&shared);
            let (domid, vdev) = (setup.domid, setup.vdev.clone());
            std::thread::Builder::new()
                .name(format!("hostio{domid}.{vdev}"))
                .spawn(move || worker::run(&shared, domid, &vdev))
                .map_err(|e| format!("starting the device thread: {e}"))?
        };
        Ok(Self {
            shared,
            stop,
            worker: Some(worker),
            domid: setup.domid,
            vdev: setup.vdev,
        })
    }

    /// The guest the device belongs to.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// The device's name.
    pub fn vdev(&self) -> &str {
        &self.vdev
    }
}

impl LocalDevice for HostDevice {
    fn read(&self, offset: u64, size: u8) -> u64 {
        let mut state = self.shared.lock();
        state.accesses += 1;
        state.model.read(offset, size)
    }

    fn write(&self, offset: u64, size: u8, value: u64) {
        let mut state = self.shared.lock();
        let State {
            model, platform, ..
        } = &mut *state;
        model.write(platform, offset, size, value);
        state.accesses += 1;
        worker::check_health(&mut state, self.domid, &self.vdev);
        // A write may have started I/O or raised an interrupt (a reset, a
        // queue index the ioeventfds do not catch): hand it to the kernel.
        if state.platform.work.has_waiting() && state.platform.work.push(&self.shared.ring) {
            state.platform.work.count_enter();
            drop(state);
            if let Err(e) = self.shared.ring.submit() {
                tracing::warn!("host model: io_uring_enter: {e}");
            }
        }
    }

    fn stats(&self) -> BackendStats {
        let state = self.shared.lock();
        let t = state.model.stats();
        let r = state.platform.work.stats();
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
