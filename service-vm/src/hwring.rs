//! [`HwRing`]: Dom0's end of one hardware queue, whatever it serves (a
//! disk's [`crate::hwqueue`], a switch's [`crate::uplink`]): the
//! [`QueueLayout`] `hypd` put in Dom0's reserved RAM, checked; SQEs pushed
//! straight into the submission ring (or, when it is full, into an
//! overflow list that drains in order as the kernel frees slots); CQEs
//! popped; Dom0 addresses turned into fixed-buffer addresses; the
//! doorbell (a send on the queue's port) rung at most once per round of
//! the main loop; completion interrupts on or off.

use alloc::collections::VecDeque;

use guest_runtime::{evtchn, println};
use protocol::hwqueue::{Cqe, QueueLayout, QueueView, Sqe, CQE_SIZE, MAX_FIXED_BUFFERS, SQE_SIZE};
use protocol::memory::{DOORBELL_ADDR, QUEUE_SUBMIT_ADDR};

use crate::reserved::Reserved;

/// Why a queue layout was refused.
pub type LayoutError = &'static str;

/// Counters of a ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// SQEs pushed onto the SQ.
    pub sqes: u64,
    /// Doorbells rung.
    pub doorbells: u64,
    /// Times an SQE had to wait in the overflow list.
    pub overflowed: u64,
}

/// Dom0's end of one hardware queue's rings.
#[derive(Debug)]
pub struct HwRing {
    layout: QueueLayout,
    view: QueueView,
    port: u32,
    /// The device id the queue was announced with (for messages).
    owner: u32,
    overflow: VecDeque<Sqe>,
    doorbell: bool,
    interrupts: bool,
    doorbell_failed: bool,
    /// `stats.sqes` when the doorbell last rang.
    sqes_at_ring: u64,
    stats: RingStats,
}

/// True if a `u32` ring field at `off` lies inside a ring area of `bytes`.
fn field_ok(off: u32, bytes: u64) -> bool {
    off.is_multiple_of(4) && u64::from(off) + 4 <= bytes
}

/// True if an array of `n` entries of `size` bytes at `off`, aligned to
/// `align`, lies inside a ring area of `bytes`.
fn array_ok(off: u32, n: u32, size: u64, align: u32, bytes: u64) -> bool {
    off.is_multiple_of(align) && u64::from(off) + u64::from(n) * size <= bytes
}

/// Copies the [`QueueLayout`] at Dom0-physical `addr` and checks that
/// everything it describes lies in the reserved RAM.
fn read_layout(addr: u64, reserved: Reserved) -> Result<QueueLayout, LayoutError> {
    if !reserved.holds(addr, core::mem::size_of::<QueueLayout>() as u64, 8) {
        return Err("layout outside the reserved RAM");
    }
    // SAFETY: a `QueueLayout` `hypd` wrote in the reserved region
    // (checked above); it is plain data, read-only for Dom0.
    let l = unsafe { (addr as *const QueueLayout).read_volatile() };
    let (sq, cq) = (l.sq_entries, l.cq_entries);
    if !sq.is_power_of_two() || !cq.is_power_of_two() {
        return Err("ring sizes are not powers of two");
    }
    let rings_ok = reserved.holds(l.sq_ring_gpa, l.rings_bytes, 8)
        && reserved.holds(l.cq_ring_gpa, l.rings_bytes, 8)
        && reserved.holds(l.sqes_gpa, l.sqes_bytes, 8)
        && u64::from(sq) * SQE_SIZE as u64 <= l.sqes_bytes;
    if !rings_ok {
        return Err("rings outside the reserved RAM");
    }
    let (s, c, bytes) = (&l.sq_off, &l.cq_off, l.rings_bytes);
    let fields_ok = [s.head, s.tail, s.flags, c.head, c.tail, c.flags, c.overflow]
        .iter()
        .all(|&off| field_ok(off, bytes))
        && (s.array == 0 || array_ok(s.array, sq, 4, 4, bytes))
        && array_ok(c.cqes, cq, CQE_SIZE as u64, 8, bytes);
    if !fields_ok {
        return Err("ring offsets outside the ring area");
    }
    if l.nr_buffers as usize > MAX_FIXED_BUFFERS {
        return Err("too many fixed buffers");
    }
    if l.doorbell_addr != DOORBELL_ADDR && l.doorbell_addr != QUEUE_SUBMIT_ADDR {
        return Err(
            "a doorbell that is neither the event-channel doorbell nor the submit register",
        );
    }
    Ok(l)
}

impl HwRing {
    /// Dom0's end of the queue whose [`QueueLayout`] `hypd` put at
    /// Dom0-physical `layout_addr`, announced as device `owner`, with
    /// doorbell and completions on Dom0 port `port`. Completions start
    /// with their interrupt on.
    ///
    /// # Safety
    ///
    /// No other `HwRing` of the same queue may exist while this one does.
    pub unsafe fn new(
        layout_addr: u64,
        port: u32,
        owner: u32,
        reserved: Reserved,
    ) -> Result<Self, LayoutError> {
        let layout = read_layout(layout_addr, reserved)?;
        // SAFETY: `read_layout` checked that the rings and the SQE array
        // lie in the reserved RAM (identity-mapped, user-accessible), with
        // every field inside and aligned; the caller guarantees this is
        // the queue's only view.
        let mut view = unsafe {
            QueueView::new(
                &layout,
                layout.sq_ring_gpa as *mut u8,
                layout.cq_ring_gpa as *mut u8,
                layout.sqes_gpa as *mut u8,
            )
        };
        view.set_completion_interrupts(true);
        Ok(Self {
            layout,
            view,
            port,
            owner,
            overflow: VecDeque::new(),
            doorbell: false,
            interrupts: true,
            doorbell_failed: false,
            sqes_at_ring: 0,
            stats: RingStats::default(),
        })
    }

    /// Counters.
    pub fn stats(&self) -> RingStats {
        self.stats
    }

    /// Completion-ring entries: how many requests may be out at once
    /// without the kernel holding completions back.
    pub fn cq_entries(&self) -> u32 {
        self.layout.cq_entries
    }

    /// The fixed-buffer slot, [`Sqe::addr`] and length of the longest
    /// prefix (at most `len` bytes) of Dom0-physical `addr` that one fixed
    /// buffer holds.
    pub fn translate(&self, addr: u64, len: u64) -> Option<(u16, u64, u64)> {
        let used = (self.layout.nr_buffers as usize).min(MAX_FIXED_BUFFERS);
        self.layout.buffers[..used]
            .iter()
            .enumerate()
            .find_map(|(slot, buf)| {
                let offset = addr.checked_sub(buf.gpa)?;
                let n = buf.len.checked_sub(offset)?.min(len);
                let io_addr = buf.io_addr_of(addr, n)?;
                (n > 0).then_some((slot as u16, io_addr, n))
            })
    }

    /// The fixed-buffer slot and [`Sqe::addr`] of all `len` bytes at
    /// Dom0-physical `addr`, if one fixed buffer holds them.
    pub fn translate_whole(&self, addr: u64, len: u64) -> Option<(u16, u64)> {
        self.layout.io_addr(addr, len)
    }

    /// Pushes `sqe`, or queues it behind earlier SQEs still waiting.
    pub fn push(&mut self, sqe: &Sqe) {
        if self.overflow.is_empty() && self.view.push(sqe).is_ok() {
            self.stats.sqes += 1;
        } else {
            self.stats.overflowed += 1;
            self.overflow.push_back(*sqe);
        }
        self.doorbell = true;
    }

    /// Pushes waiting SQEs into the slots the kernel freed.
    fn drain_overflow(&mut self) {
        while let Some(sqe) = self.overflow.front() {
            if self.view.push(sqe).is_err() {
                break;
            }
            self.overflow.pop_front();
            self.stats.sqes += 1;
            self.doorbell = true;
        }
    }

    /// True if completions wait in the CQ (one acquire load).
    pub fn has_completions(&self) -> bool {
        self.view.cq_ready() != 0
    }

    /// Takes the oldest completion, if any.
    pub fn pop(&mut self) -> Option<Cqe> {
        self.view.pop()
    }

    /// After popping completions: SQEs waiting for room go out, and a CQ
    /// the kernel overflowed gets the doorbell it needs to post the rest.
    pub fn after_reap(&mut self) {
        self.drain_overflow();
        if self.view.cq_overflowed() {
            // The kernel holds completions back until it is entered again.
            self.doorbell = true;
        }
    }

    /// Retries waiting SQEs and rings the doorbell if anything was pushed
    /// since the last ring: once per round of the main loop.
    /// `before_ring` runs just before the doorbell does (a trace point),
    /// with the number of SQEs pushed since the last ring.
    pub fn flush(&mut self, before_ring: impl FnOnce(u32)) {
        if !self.overflow.is_empty() {
            self.drain_overflow();
        }
        if !core::mem::take(&mut self.doorbell) {
            return;
        }
        if self.layout.sq_polled != 0 && !self.view.sq_needs_wakeup() {
            // The SQ thread is awake: it takes the SQEs by itself.
            return;
        }
        self.stats.doorbells += 1;
        before_ring((self.stats.sqes - self.sqes_at_ring) as u32);
        self.sqes_at_ring = self.stats.sqes;
        if self.layout.doorbell_addr == QUEUE_SUBMIT_ADDR {
            // SAFETY: the submit register (checked by `read_layout`), MMIO
            // the core handles: the write exits, and the core's vCPU thread
            // submits the queue before it completes. (From ring 3: through
            // a ring-0 gate the exit measured slower here, the gate's own
            // emulated instructions costing more than the exit saved.)
            unsafe { (QUEUE_SUBMIT_ADDR as *mut u32).write_volatile(self.layout.doorbell_value) };
            return;
        }
        if let Err(errno) = evtchn::send(self.port) {
            if !self.doorbell_failed {
                println!(
                    "service-vm: doorbell of device {} on port {} failed: {}",
                    self.owner,
                    self.port,
                    errno.name()
                );
                self.doorbell_failed = true;
            }
        }
    }

    /// Turns completion interrupts on or off (off while Dom0 polls).
    pub fn set_interrupts(&mut self, enabled: bool) {
        if self.interrupts != enabled {
            self.view.set_completion_interrupts(enabled);
            self.interrupts = enabled;
        }
    }
}
