//! The doorbell thread: each time Dom0 rings (a send on the queue's port,
//! whose ioeventfd signals [`Doorbell::eventfd`]), it submits what Dom0
//! queued. This host thread is the "hardware" behind Dom0's queue. While a
//! trace session is on it records, in the core's ring, when it woke and
//! how long `io_uring_enter` took ([`QueueTrace`]).

use crate::HardwareQueue;
use protocol::domain::DomId;
use protocol::trace::{Party, Step, TraceRing, BATCH};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Where a doorbell thread's trace records go: the core's ring, named by
/// the guest and the device whose requests the queue carries.
#[derive(Clone, Copy, Debug)]
pub struct QueueTrace {
    ring: &'static TraceRing,
    domain: DomId,
    device: u32,
}

impl QueueTrace {
    /// Records into `ring` as the queue of `domain`'s device whose window
    /// is at guest page `device`.
    pub fn new(ring: &'static TraceRing, domain: DomId, device: u32) -> Self {
        Self {
            ring,
            domain,
            device,
        }
    }

    fn emit(&self, step: Step, detail: u32) {
        self.ring
            .emit(Party::Core, step, self.domain, BATCH, [self.device, detail]);
    }
}

/// A running doorbell thread for one queue.
#[derive(Debug)]
pub struct Doorbell {
    eventfd: Arc<EventFd>,
    stop: Arc<AtomicBool>,
    trace: Arc<OnceLock<QueueTrace>>,
    thread: Option<JoinHandle<()>>,
}

impl Doorbell {
    /// Starts the thread that submits `queue` each time the returned
    /// doorbell's eventfd is signalled.
    pub fn start(queue: Arc<HardwareQueue>) -> std::io::Result<Self> {
        let eventfd = Arc::new(EventFd::new(EFD_NONBLOCK)?);
        let stop = Arc::new(AtomicBool::new(false));
        let trace = Arc::new(OnceLock::new());
        let thread = {
            let (eventfd, stop, trace) =
                (Arc::clone(&eventfd), Arc::clone(&stop), Arc::clone(&trace));
            std::thread::Builder::new()
                .name("hwq-doorbell".into())
                .spawn(move || ring_on_signal(&queue, &eventfd, &stop, &trace))?
        };
        Ok(Self {
            eventfd,
            stop,
            trace,
            thread: Some(thread),
        })
    }

    /// Sends the thread's trace records to `trace` from now on (once; a
    /// later call changes nothing).
    pub fn trace_to(&self, trace: QueueTrace) {
        let _ = self.trace.set(trace);
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
fn ring_on_signal(
    queue: &HardwareQueue,
    doorbell: &EventFd,
    stop: &AtomicBool,
    trace: &OnceLock<QueueTrace>,
) {
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
        submit_traced(queue, trace.get());
    }
}

/// Submits `queue` now (the doorbell thread woke, or Domain-0's vCPU
/// exited on the submit register), recording the steps in `trace`.
pub fn submit_traced(queue: &HardwareQueue, trace: Option<&QueueTrace>) {
    if let Some(trace) = trace {
        trace.emit(Step::DoorbellWoken, 0);
        trace.emit(Step::EnterStart, 0);
    }
    let submitted = queue.submit();
    if let Some(trace) = trace {
        trace.emit(Step::EnterEnd, *submitted.as_ref().unwrap_or(&0));
    }
    if let Err(e) = submitted {
        tracing::warn!("hardware queue submit: {e}");
    }
}
