//! The doorbell thread: each time Dom0 rings (a send on the queue's port,
//! whose ioeventfd signals [`Doorbell::eventfd`]), it submits what Dom0
//! queued. This host thread is the "hardware" behind Dom0's queue.

use crate::HardwareQueue;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// A running doorbell thread for one queue.
#[derive(Debug)]
pub struct Doorbell {
    eventfd: Arc<EventFd>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Doorbell {
    /// Starts the thread that submits `queue` each time the returned
    /// doorbell's eventfd is signalled.
    pub fn start(queue: Arc<HardwareQueue>) -> std::io::Result<Self> {
        let eventfd = Arc::new(EventFd::new(EFD_NONBLOCK)?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (eventfd, stop) = (Arc::clone(&eventfd), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("hwq-doorbell".into())
                .spawn(move || ring_on_signal(&queue, &eventfd, &stop))?
        };
        Ok(Self {
            eventfd,
            stop,
            thread: Some(thread),
        })
    }

    /// The eventfd Dom0's doorbell signals: register it as the ioeventfd of
    /// the queue's port.
    pub fn eventfd(&self) -> &EventFd {
        &self.eventfd
    }

    /// Stops the thread and waits for it; nothing is submitted after.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.eventfd.write(1);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Doorbell {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread's body: wait for a ring, submit, until told to stop.
fn ring_on_signal(queue: &HardwareQueue, doorbell: &EventFd, stop: &AtomicBool) {
    loop {
        let mut poll = libc::pollfd {
            fd: doorbell.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut poll, 1, -1) };
        let _ = doorbell.read();
        if stop.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = queue.submit() {
            tracing::warn!("hardware queue submit: {e}");
        }
    }
}
