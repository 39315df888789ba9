//! What a device's vCPU-thread side ([`crate::device`]) and its worker
//! thread ([`crate::worker`]) share: the ring, and the model and platform
//! behind one lock.

use backends::DeviceModel;
use io_uring::IoUring;
use protocol::domain::DomId;
use std::fs::File;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};

use crate::platform::HostPlatform;
use crate::tap::TapIo;

/// What the vCPU threads and the worker share.
pub(crate) struct Shared {
    /// The device's io_uring. Its SQ and CQ are touched only with `state`
    /// locked; `io_uring_enter` is called without it.
    pub ring: IoUring,
    /// The model and its platform.
    pub state: Mutex<State>,
    /// Times the worker's wait returned.
    pub wakeups: AtomicU64,
    /// The backing file (a disk or a tap), open for as long as the ring
    /// may use it.
    _disk: Option<File>,
}

/// The lock-protected part of a device.
pub(crate) struct State {
    pub model: DeviceModel,
    pub platform: HostPlatform,
    /// A vif's tap (network devices only).
    pub tap: Option<TapIo>,
    pub accesses: u64,
    pub reset_logged: bool,
    /// A guest that breaks its rings again and again logs a few lines.
    pub log_limit: hyp::LogLimit,
}

impl Shared {
    /// The ring over `disk` (if any), serving `model` on `platform`.
    pub fn new(
        ring: IoUring,
        model: DeviceModel,
        platform: HostPlatform,
        tap: Option<TapIo>,
        disk: Option<File>,
    ) -> Self {
        Self {
            ring,
            state: Mutex::new(State {
                model,
                platform,
                tap,
                accesses: 0,
                reset_logged: false,
                log_limit: hyp::LogLimit::default(),
            }),
            wakeups: AtomicU64::new(0),
            _disk: disk,
        }
    }

    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("host-model device lock")
    }
}

impl State {
    /// Logs, once per occurrence, a device that gave up on its guest's
    /// rings.
    pub fn check_health(&mut self, domid: DomId, vdev: &str) {
        let broken = self.model.needs_reset();
        if broken && !self.reset_logged {
            if let Some(admitted) = self.log_limit.admit() {
                tracing::warn!(
                    domid,
                    "host model: {vdev} needs reset: {:?}; still serving the others{admitted}",
                    self.model.last_error()
                );
            }
        }
        self.reset_logged = broken;
    }
}
