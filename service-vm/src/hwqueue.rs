//! A block device's hardware queue, Dom0's side: on the rings
//! ([`HwRing`]: SQEs written straight into the io_uring rings `hypd` set
//! up in Dom0's reserved RAM, CQEs read back), the bookkeeping that turns
//! one virtio-blk request into SQEs and their completions back into one
//! result.
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
//! SQEs that do not fit in the SQ wait in the ring's overflow list, in
//! order, and go out as the kernel frees slots. The doorbell (a send on
//! the queue's port) is rung once per round of the main loop, not once per
//! SQE.

use alloc::vec::Vec;

use backends::inflight::{Inflight, PartDone};
use backends::{HostIo, IoKind, IoResult, Submission};
use protocol::hwqueue::Sqe;

use crate::hwring::{HwRing, LayoutError};
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

/// Dom0's end of one block device's hardware queue.
#[derive(Debug)]
pub struct HwQueue {
    ring: HwRing,
    device_id: u32,
    inflight: Inflight,
    scratch: Vec<Sqe>,
    stats: HwStats,
}

impl HwQueue {
    /// Dom0's end of the queue whose [`protocol::hwqueue::QueueLayout`]
    /// `hypd` put at Dom0-physical `layout_addr`, for device `device_id`,
    /// with doorbell and completions on Dom0 port `port`.
    ///
    /// # Safety
    ///
    /// No other `HwQueue` (or [`HwRing`]) of the same queue may exist
    /// while this one does.
    pub unsafe fn new(
        layout_addr: u64,
        port: u32,
        device_id: u32,
        reserved: Reserved,
    ) -> Result<Self, LayoutError> {
        // SAFETY: the caller's guarantee, passed on.
        let ring = unsafe { HwRing::new(layout_addr, port, device_id, reserved) }?;
        Ok(Self {
            ring,
            device_id,
            inflight: Inflight::new(),
            scratch: Vec::new(),
            stats: HwStats::default(),
        })
    }

    /// Counters.
    pub fn stats(&self) -> HwStats {
        let ring = self.ring.stats();
        HwStats {
            sqes: ring.sqes,
            doorbells: ring.doorbells,
            overflowed: ring.overflowed,
            ..self.stats
        }
    }

    /// Requests submitted and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
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
                        let Some((slot, io_addr, n)) = self.ring.translate(addr, left) else {
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
            for sqe in &self.scratch {
                self.ring.push(sqe);
            }
        }
        submission
    }

    /// True if completions wait in the CQ (one acquire load).
    pub fn has_completions(&self) -> bool {
        self.ring.has_completions()
    }

    /// Pops completions (at most [`MAX_REAP_PER_CALL`]); appends `(tag, result)` to `done` for each
    /// request whose parts have all completed. Returns the number of CQEs
    /// popped.
    pub fn reap(&mut self, done: &mut Vec<(u64, IoResult)>) -> usize {
        let mut popped = 0;
        // A CQ whose indices went wrong must not keep Dom0 busy: reap at most
        // one ring's worth per call.
        while popped < MAX_REAP_PER_CALL {
            let Some(cqe) = self.ring.pop() else { break };
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
        self.ring.after_reap();
        popped
    }

    /// Retries waiting SQEs and rings the doorbell if anything was pushed
    /// since the last ring: once per round of the main loop. `before_ring`
    /// runs just before the doorbell does, with the SQEs it announces.
    pub fn flush(&mut self, before_ring: impl FnOnce(u32)) {
        self.ring.flush(before_ring);
    }

    /// Turns completion interrupts on or off (off while Dom0 polls).
    pub fn set_interrupts(&mut self, enabled: bool) {
        self.ring.set_interrupts(enabled);
    }
}
