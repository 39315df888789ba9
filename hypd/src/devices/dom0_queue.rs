//! [`Dom0Queue`]: a hardware queue lent to Domain-0 (a disk's, or the
//! uplink of one of its switches), with the reserved pages its rings and
//! its layout live in and the Dom0 port that is both its doorbell and its
//! completion interrupt.

use super::doorbells::DoorbellMode;
use super::DeviceError;
use hwqueue::{BufferRegion, HwQueueConfig, LentQueue, QueueNotify, RingRegion, SqPoll};
use hyp::{Hypervisor, ReservedPages};
use protocol::domain::DOM0;
use protocol::evtchn::port_vector;
use protocol::memory::PAGE_SIZE;
use std::os::fd::{OwnedFd, RawFd};

/// How long the SQ thread of the sqpoll doorbell polls an idle queue
/// before it sleeps (the kernel counts in milliseconds; 1 is the least).
const SQ_IDLE_MS: u32 = 1;

/// Entries in each hardware queue's submission ring.
const QUEUE_ENTRIES: u32 = 128;

/// A hardware queue lent to Dom0, and the pages it lives in. The queue is
/// declared first: dropped, it drains before its pages go, and they go
/// through the quarantine.
pub(crate) struct Dom0Queue {
    lent: LentQueue,
    /// Dom0's port: its completions raise it, Dom0's sends ring the
    /// doorbell.
    pub port: u32,
    /// The pages of the rings (held, never read here: the queue uses them).
    _ring: ReservedPages,
    /// The page of the layout Dom0 reads.
    pub layout: ReservedPages,
}

impl Dom0Queue {
    /// A hardware queue over `file` in Dom0's reserved RAM, with Dom0's own
    /// RAM as fixed buffer 0 and `guest` (a guest's foreign window, for a
    /// disk) as buffer 1, wired to a new Dom0 port, its layout published
    /// for Dom0 with the doorbell of `mode` (sqpoll: sharing the SQ thread
    /// of the queue whose ring is `sq_share`, if any).
    ///
    /// # Safety
    ///
    /// `guest`'s memory must stay mapped until the queue is closed (or
    /// dropped).
    pub unsafe fn lend(
        core: &Hypervisor,
        file: OwnedFd,
        guest: Option<BufferRegion>,
        mode: DoorbellMode,
        sq_share: Option<RawFd>,
    ) -> Result<Dom0Queue, DeviceError> {
        let bytes = hwqueue::HardwareQueue::region_bytes_for(QUEUE_ENTRIES)?;
        let mut ring = core.dom0_pages(bytes.div_ceil(PAGE_SIZE) as usize)?;
        let mut layout = core.dom0_pages(1)?;
        ring.quarantine_when_dropped();
        layout.quarantine_when_dropped();
        let dom0 = core.domain(DOM0).ok_or(DeviceError::NoDom0)?;
        let mut buffers = vec![Some(BufferRegion {
            host_addr: dom0.ram().host_address(),
            guest_addr: 0,
            len: core.dom0_reserved_start()?,
        })];
        buffers.extend(guest.map(Some));
        let config = HwQueueConfig {
            region: RingRegion {
                host_addr: ring.host_addr(),
                guest_addr: ring.gpa(),
                len: ring.bytes(),
            },
            entries: QUEUE_ENTRIES,
            file,
            buffers,
            notify: QueueNotify {
                doorbell_addr: mode.doorbell_addr(),
                doorbell_value: 0,
                completion_vector: 0,
            },
            sq_poll: (mode == DoorbellMode::SqPoll).then_some(SqPoll {
                idle_ms: SQ_IDLE_MS,
                share_with: sq_share,
            }),
        };
        // SAFETY: the ring pages are reserved Dom0 RAM lent to this queue
        // alone (and quarantined after it is dropped), and the buffers are
        // guest memory no Rust reference covers. Dom0's RAM stays mapped
        // while `ring` (a handle on the reserved region and so on Dom0's
        // RAM) lives, and `guest`'s as the caller promised; both outlive
        // the queue, which is dropped before its pages.
        let lent = unsafe { LentQueue::new(config) }?;
        let port = core.bind_eventfd_port(
            DOM0,
            Some(lent.completion_eventfd()),
            Some(lent.doorbell_eventfd()),
        )?;
        let mut described = lent.layout();
        described.doorbell_value = port;
        described.completion_vector = u32::from(port_vector(port));
        layout.write_struct(0, &described);
        Ok(Dom0Queue {
            lent,
            port,
            _ring: ring,
            layout,
        })
    }

    /// Names this queue (its layout page and port) in `event`, what
    /// Domain-0 is told of the device or uplink it serves.
    pub fn name_in(&self, event: &mut protocol::device::BackendEvent) {
        event.queue_layout = self.layout.gpa();
        event.queue_port = self.port;
    }

    /// The queue, for the submit register of the exit mode.
    pub fn queue(&self) -> std::sync::Arc<hwqueue::HardwareQueue> {
        self.lent.queue()
    }

    /// Records the doorbell thread's steps in `trace` while tracing.
    pub fn trace_to(&self, trace: hwqueue::QueueTrace) {
        self.lent.trace_to(trace);
    }

    /// Takes an uplink's queue back (Domain-0 is gone): its posted tap
    /// reads are cancelled as the ring closes, without the wait of
    /// [`Dom0Queue::close`]; the pages go through the quarantine.
    pub fn close_uplink(self) {
        let posted = self.lent.close_cancelling_reads();
        tracing::debug!("uplink queue closed, {posted} reads cancelled");
    }

    /// Takes the queue back (its port is the caller's to close first):
    /// drains it, then its pages go, through the quarantine.
    pub fn close(self) {
        let left = self.lent.close();
        if left != 0 {
            tracing::warn!("hardware queue closed with {left} requests in flight");
        }
    }
}
