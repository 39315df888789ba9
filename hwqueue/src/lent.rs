//! A [`LentQueue`]: a [`HardwareQueue`] lent to Dom0 together with the
//! doorbell thread that submits for it, and the way it is taken back.

use crate::doorbell::{Doorbell, QueueTrace};
use crate::{HardwareQueue, HwQueueConfig, HwQueueError};
use protocol::hwqueue::QueueLayout;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::EventFd;

/// Longest wait, when a queue is taken back, for the requests the kernel
/// already took to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// A hardware queue and its doorbell thread, living until it is taken
/// back with [`LentQueue::close`] (or dropped, which does the same).
#[derive(Debug)]
pub struct LentQueue {
    queue: Arc<HardwareQueue>,
    doorbell: Doorbell,
    /// The doorbell is stopped and the queue drained (as far as it goes).
    drained: bool,
}

impl LentQueue {
    /// Makes the queue ([`HardwareQueue::new`]) and starts its doorbell
    /// thread.
    ///
    /// # Safety
    ///
    /// As for [`HardwareQueue::new`]; the regions must also stay mapped
    /// until [`LentQueue::close`] returns (or the queue is dropped).
    pub unsafe fn new(config: HwQueueConfig) -> Result<Self, HwQueueError> {
        // SAFETY: forwarded to the caller.
        let queue = Arc::new(unsafe { HardwareQueue::new(config) }?);
        let doorbell = Doorbell::start(Arc::clone(&queue))
            .map_err(crate::error::sys("starting the doorbell thread"))?;
        Ok(Self {
            queue,
            doorbell,
            drained: false,
        })
    }

    /// What Dom0 needs to drive the queue (before the doorbell and the
    /// completion vector are filled in by whoever wires them).
    pub fn layout(&self) -> QueueLayout {
        self.queue.layout()
    }

    /// Records the doorbell thread's steps in `trace` while a trace session
    /// is on.
    pub fn trace_to(&self, trace: QueueTrace) {
        self.doorbell.trace_to(trace);
    }

    /// The queue itself, for a doorbell that submits on another thread
    /// ([`crate::submit_traced`]).
    pub fn queue(&self) -> Arc<HardwareQueue> {
        Arc::clone(&self.queue)
    }

    /// Signalled by the kernel on each completion: register it as the
    /// irqfd of the queue's port in Dom0.
    pub fn completion_eventfd(&self) -> &EventFd {
        self.queue.completion_eventfd()
    }

    /// Signalled when Dom0 rings: register it as the ioeventfd of the
    /// queue's port in Dom0.
    pub fn doorbell_eventfd(&self) -> &EventFd {
        self.doorbell.eventfd()
    }

    /// Takes the queue back: stops the doorbell thread, lets the requests
    /// the kernel already took finish (for at most [`DRAIN_TIMEOUT`]), and
    /// closes the ring. Returns how many requests were still in flight
    /// when it gave up waiting (0 normally).
    ///
    /// An io_uring is torn down asynchronously: requests still in flight
    /// when it closes post their completions into the ring memory later.
    /// The caller must therefore keep the ring memory out of use for a
    /// while after this returns (`hypd` quarantines the pages), so a
    /// closing queue never writes into the next user of the same pages.
    pub fn close(mut self) -> u32 {
        self.drain()
    }

    /// Takes back a queue whose requests in flight are reads that only
    /// a device's input ends (a tap's posted reads): stops the doorbell
    /// and closes the ring without waiting, which cancels them. Their
    /// buffers must stay out of use for a while afterwards, as for
    /// [`LentQueue::close`]; returns how many were in flight.
    pub fn close_cancelling_reads(mut self) -> u32 {
        self.drained = true;
        self.doorbell.stop();
        self.queue.in_flight()
    }

    /// Stops the doorbell and waits for what the kernel took, once.
    fn drain(&mut self) -> u32 {
        if !self.drained {
            self.drained = true;
            self.doorbell.stop();
            // With no doorbell, nothing takes Dom0's SQEs any more, except
            // a kernel SQ thread, which may until the ring closes: let it
            // take them all now (waking it if it sleeps), so none starts
            // after this returns.
            let polled = self.queue.is_sq_polled();
            if polled && self.queue.unsubmitted() != 0 {
                let _ = self.queue.submit();
            }
            let deadline = Instant::now() + DRAIN_TIMEOUT;
            while (self.queue.in_flight() != 0 || polled && self.queue.unsubmitted() != 0)
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.queue.in_flight()
    }
}

impl Drop for LentQueue {
    fn drop(&mut self) {
        if !self.drained {
            let left = self.drain();
            if left != 0 {
                tracing::warn!("hardware queue dropped with {left} requests in flight");
            }
        }
    }
}
