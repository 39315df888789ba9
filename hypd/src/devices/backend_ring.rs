//! Domain-0's backend ring, the producer's end (the ring's code is
//! [`protocol::backend_ring`]'s): device setup announces each device it
//! gives Dom0 to serve, and each it takes away.

use super::DeviceError;
use hyp::BackendRingPage;
use protocol::backend_ring::{BackendRing, Producer};
use protocol::device::BackendEvent;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long device setup waits for Dom0 to make room in a full ring.
const RING_WAIT: Duration = Duration::from_secs(2);

/// The producer's end of Dom0's backend ring, and the device ids it
/// hands out. Shared by every guest's device setup; its lock is held only
/// while an entry goes in.
pub struct BackendRingWriter {
    page: BackendRingPage,
    state: Mutex<WriterState>,
}

/// What the lock guards.
struct WriterState {
    producer: Producer,
    next_device: u32,
}

impl std::fmt::Debug for BackendRingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackendRingWriter")
    }
}

impl BackendRingWriter {
    /// The writer of the ring in `page`.
    pub fn new(page: BackendRingPage) -> Self {
        // SAFETY: the core reserved the page for this ring in Dom0's RAM
        // (zeroed, 8-aligned) and keeps it mapped while `page` lives, which
        // the writer holds; the core hands the page out once, so this
        // writer is its only producer; Dom0 consumes it as
        // `protocol::backend_ring` describes.
        let producer = unsafe { Producer::new(page.host_addr() as *mut BackendRing) };
        Self {
            page,
            state: Mutex::new(WriterState {
                producer,
                next_device: 1,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, WriterState> {
        self.state.lock().expect("backend ring lock")
    }

    /// Starts the ring again from the page the core zeroed for a
    /// restarted Domain-0 (device ids go on from where they were).
    pub fn restart(&self) {
        // SAFETY: as in `new`: the same page, still this writer's alone,
        // which the core zeroed while no Domain-0 ran.
        let producer = unsafe { Producer::new(self.page.host_addr() as *mut BackendRing) };
        self.state().producer = producer;
    }

    /// Entries Domain-0 has not consumed yet.
    pub fn unread(&self) -> u32 {
        self.state().producer.unread()
    }

    /// Waits (up to `timeout`) until Domain-0 has read every entry. Dom0
    /// applies an entry before it serves anything else, so a device
    /// announced before this returns is known to it from then on.
    pub fn wait_read(&self, timeout: Duration) -> Result<(), DeviceError> {
        let deadline = Instant::now() + timeout;
        while self.unread() != 0 {
            if Instant::now() > deadline {
                return Err(DeviceError::Dom0Unresponsive);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// A new device id, for Dom0 to tell devices apart.
    pub fn device_id(&self) -> u32 {
        let mut state = self.state();
        state.next_device += 1;
        state.next_device - 1
    }

    /// Appends `event` and raises the backend vector, waiting (bounded)
    /// for Dom0 to make room.
    pub fn post(&self, event: &BackendEvent) -> Result<(), DeviceError> {
        let deadline = Instant::now() + RING_WAIT;
        let mut state = self.state();
        while state.producer.push(event).is_err() {
            if Instant::now() > deadline {
                tracing::error!("Domain-0 does not consume its backend ring; event dropped");
                return Err(DeviceError::Dom0Unresponsive);
            }
            self.page.raise();
            drop(state);
            std::thread::sleep(Duration::from_millis(1));
            state = self.state();
        }
        self.page.raise();
        Ok(())
    }
}
