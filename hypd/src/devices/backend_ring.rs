//! Domain-0's backend ring, the producer's end (the ring's code is
//! [`protocol::backend_ring`]'s): device setup announces each device it
//! gives Dom0 to serve, and each it takes away.

use super::DeviceError;
use hyp::BackendRingPage;
use protocol::backend_ring::{BackendRing, Producer};
use protocol::device::BackendEvent;
use std::time::{Duration, Instant};

/// How long device setup waits for Dom0 to make room in a full ring.
const RING_WAIT: Duration = Duration::from_secs(2);

/// The producer's end of Dom0's backend ring, and the device ids it
/// hands out.
pub struct BackendRingWriter {
    page: BackendRingPage,
    producer: Producer,
    next_device: u32,
}

impl std::fmt::Debug for BackendRingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackendRingWriter(next device {})", self.next_device)
    }
}

impl BackendRingWriter {
    /// The writer of the ring in `page`.
    pub fn new(page: BackendRingPage) -> Self {
        // SAFETY: the core reserved the page for this ring in Dom0's RAM
        // (zeroed, 8-aligned), keeps it mapped while `page` lives, which
        // the writer holds; this writer is its only producer, and Dom0
        // consumes it as `protocol::backend_ring` describes.
        let producer = unsafe { Producer::new(page.host_addr() as *mut BackendRing) };
        Self {
            page,
            producer,
            next_device: 1,
        }
    }

    /// A new device id, for Dom0 to tell devices apart.
    pub fn device_id(&mut self) -> u32 {
        self.next_device += 1;
        self.next_device - 1
    }

    /// Appends `event` and raises the backend vector, waiting (bounded)
    /// for Dom0 to make room.
    pub fn post(&mut self, event: &BackendEvent) -> Result<(), DeviceError> {
        let deadline = Instant::now() + RING_WAIT;
        while self.producer.push(event).is_err() {
            if Instant::now() > deadline {
                tracing::error!("Domain-0 does not consume its backend ring; event dropped");
                return Err(DeviceError::Dom0Unresponsive);
            }
            self.page.raise();
            std::thread::sleep(Duration::from_millis(1));
        }
        self.page.raise();
        Ok(())
    }
}
