//! A block device's hardware queue, Dom0's side: SQEs written straight
//! into the io_uring rings `hypd` set up in Dom0's reserved RAM, CQEs read
//! back, and the bookkeeping that turns one virtio-blk request into SQEs
//! and their completions back into one result.
//!
//! A request ([`HostIo`]) becomes one `READ_FIXED`/`WRITE_FIXED` per guest
//! buffer (split further where a buffer crosses two fixed buffers), with
//! the file offset advancing, or one `FSYNC`. Every SQE carries the same
//! `user_data`: the device id in the high half (so completions left over
//! from an earlier user of the queue are recognised and dropped) and the
//! index of the request's record in the low half. The record counts the
//! parts still out, their bytes and the first error; when the last part
//! completes, [`HwQueue::reap`] reports `Ok(bytes)` or `Err(errno)`.
//!
//! SQEs that do not fit in the SQ wait in an overflow list, in order, and
//! go out as the kernel frees slots. The doorbell (a send on the queue's
//! port) is rung once per round of the main loop, not once per SQE.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use backends::inflight::{Inflight, PartDone};
use backends::{HostIo, IoKind, IoResult, Submission};
use guest_runtime::{evtchn, println};
use protocol::hwqueue::{QueueLayout, QueueView, Sqe, CQE_SIZE, MAX_FIXED_BUFFERS, SQE_SIZE};

use crate::reserved::Reserved;
use crate::window::Window;

/// Most completions one [`HwQueue::reap`] pops.
const MAX_REAP_PER_CALL: usize = 512;

/// Counters of a hardware queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HwStats {
    /// SQEs pushed onto the SQ.
    pub sqes: u64,
    /// Requests completed.
    pub completed: u64,
    /// Completions that matched no request (dropped).
    pub stray: u64,
    /// Doorbells rung.
    pub doorbells: u64,
    /// Times an SQE had to wait in the overflow list.
    pub overflowed: u64,
    /// Flushes the host kernel completed successfully (`fdatasync` on the
    /// backing file).
    pub fsyncs: u64,
}

/// Dom0's end of one hardware queue.
#[derive(Debug)]
pub struct HwQueue {
    layout: QueueLayout,
    view: QueueView,
    port: u32,
    device_id: u32,
    inflight: Inflight,
    overflow: VecDeque<Sqe>,
    scratch: Vec<Sqe>,
    doorbell: bool,
    interrupts: bool,
    doorbell_failed: bool,
    stats: HwStats,
}

/// Why a queue layout was refused.
pub type LayoutError = &'static str;

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
    Ok(l)
}

impl HwQueue {
    /// Dom0's end of the queue whose [`QueueLayout`] `hypd` put at
    /// Dom0-physical `layout_addr`, for device `device_id`, with doorbell
    /// and completions on Dom0 port `port`.
    ///
    /// # Safety
    ///
    /// No other `HwQueue` of the same queue may exist while this one does.
    pub unsafe fn new(
        layout_addr: u64,
        port: u32,
        device_id: u32,
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
        // Start from a known state: completions interrupt.
        view.set_completion_interrupts(true);
        Ok(Self {
            layout,
            view,
            port,
            device_id,
            inflight: Inflight::new(),
            overflow: VecDeque::new(),
            scratch: Vec::new(),
            doorbell: false,
            interrupts: true,
            doorbell_failed: false,
            stats: HwStats::default(),
        })
    }

    /// Counters.
    pub fn stats(&self) -> HwStats {
        self.stats
    }

    /// Requests submitted and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// The fixed-buffer slot, [`Sqe::addr`] and length of the longest
    /// prefix (at most `len` bytes) of Dom0-physical `addr` that one fixed
    /// buffer holds.
    fn translate(&self, addr: u64, len: u64) -> Option<(u16, u64, u64)> {
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

    /// Turns `io` into SQEs in `self.scratch`; false if a buffer is not
    /// inside the window or not covered by the fixed buffers.
    fn build(&mut self, window: &Window, io: &HostIo<'_>, user_data: u64) -> bool {
        let mut sqes = core::mem::take(&mut self.scratch);
        sqes.clear();
        let mut ok = true;
        let mut offset = io.offset;
        match io.kind {
            IoKind::Flush => sqes.push(Sqe::fsync(true, user_data)),
            IoKind::Read | IoKind::Write => {
                'buffers: for buf in io.buffers {
                    let Some(mut addr) = window.dom0_addr(buf.gpa, u64::from(buf.len)) else {
                        ok = false;
                        break;
                    };
                    let mut left = u64::from(buf.len);
                    while left > 0 {
                        let Some((slot, io_addr, n)) = self.translate(addr, left) else {
                            ok = false;
                            break 'buffers;
                        };
                        // `n <= buf.len`, a `u32`.
                        let len = n as u32;
                        sqes.push(if io.kind == IoKind::Read {
                            Sqe::read_fixed(slot, io_addr, len, offset, user_data)
                        } else {
                            Sqe::write_fixed(slot, io_addr, len, offset, user_data)
                        });
                        addr += n;
                        offset = offset.wrapping_add(n);
                        left -= n;
                    }
                }
            }
        }
        self.scratch = sqes;
        ok
    }

    /// Starts `io` on the queue: its SQEs are pushed (or wait in the
    /// overflow list) and its result comes back from [`HwQueue::reap`].
    pub fn submit(&mut self, window: &Window, io: &HostIo<'_>) -> Submission {
        let slot = self.inflight.reserve();
        let user_data = (u64::from(self.device_id) << 32) | u64::from(slot);
        let parts = self
            .build(window, io, user_data)
            .then_some(self.scratch.len() as u32);
        let submission = self.inflight.settle(slot, io, parts);
        if submission == Submission::Pending {
            let sqes = core::mem::take(&mut self.scratch);
            for sqe in &sqes {
                self.enqueue(sqe);
            }
            self.scratch = sqes;
        }
        submission
    }

    /// Pushes `sqe`, or queues it behind earlier SQEs still waiting.
    fn enqueue(&mut self, sqe: &Sqe) {
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

    /// Pops completions (at most [`MAX_REAP_PER_CALL`]); appends `(tag, result)` to `done` for each
    /// request whose parts have all completed. Returns the number of CQEs
    /// popped.
    pub fn reap(&mut self, done: &mut Vec<(u64, IoResult)>) -> usize {
        let mut popped = 0;
        // A CQ whose indices went wrong must not keep Dom0 busy: reap at most
        // one ring's worth per call.
        while popped < MAX_REAP_PER_CALL {
            let Some(cqe) = self.view.pop() else { break };
            popped += 1;
            let ours = cqe.user_data >> 32 == u64::from(self.device_id);
            let outcome = if ours {
                self.inflight.part_done(cqe.user_data as u32, cqe.res)
            } else {
                PartDone::Stray
            };
            match outcome {
                PartDone::Stray => self.stats.stray += 1,
                PartDone::Pending => {}
                PartDone::Finished(f) => {
                    if f.flush && f.result.is_ok() {
                        self.stats.fsyncs += 1;
                    }
                    done.push((f.tag, f.result));
                    self.stats.completed += 1;
                }
            }
        }
        self.drain_overflow();
        if self.view.cq_overflowed() {
            // The kernel holds completions back until it is entered again.
            self.doorbell = true;
        }
        popped
    }

    /// Retries waiting SQEs and rings the doorbell if anything was pushed
    /// since the last ring: once per round of the main loop.
    pub fn flush(&mut self) {
        if !self.overflow.is_empty() {
            self.drain_overflow();
        }
        if !core::mem::take(&mut self.doorbell) {
            return;
        }
        self.stats.doorbells += 1;
        if let Err(errno) = evtchn::send(self.port) {
            if !self.doorbell_failed {
                println!(
                    "service-vm: doorbell of device {} on port {} failed: {}",
                    self.device_id,
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
