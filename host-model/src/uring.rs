//! A device's io_uring, owned by the core's process: the host model's
//! counterpart of Domain-0's hardware queue.
//!
//! The disk is fixed file 0 and the guest's RAM is registered as fixed
//! buffers (1 GiB each, the kernel's limit), so a request becomes one
//! `READ_FIXED`/`WRITE_FIXED` per guest buffer (split where a buffer
//! crosses a 1 GiB boundary) or one `FSYNC` with `DATASYNC`, exactly the
//! SQEs Domain-0 writes. Two more kinds of entries ride the same ring:
//! a read of the queue-notify eventfd, always armed, so the worker waits
//! for kicks and completions in one `io_uring_enter`; and writes of the
//! guest's irqfd, so raising the device interrupt costs no system call of
//! its own.
//!
//! [`RingIo`] is the part the backend touches (under the device's lock):
//! requests in flight and entries not yet in the SQ. The SQ and CQ are
//! only touched with that lock held; `io_uring_enter` is called without it.

use backends::inflight::{Inflight, PartDone};
use backends::{HostIo, IoKind, IoResult, Submission};
use io_uring::{opcode, squeue, types, IoUring};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, RawFd};
use vmm_sys_util::eventfd::EventFd;

use crate::error::{host, HostModelError};

/// `user_data` of the armed read of the queue-notify eventfd.
pub const NOTIFY: u64 = u64::MAX;
/// `user_data` of the armed read of the stop eventfd.
pub const STOP: u64 = u64::MAX - 1;
/// `user_data` of an interrupt (a write of the irqfd).
pub const IRQ: u64 = u64::MAX - 2;
/// `user_data` of the cancellation of the notify read, at stop.
pub const CANCEL: u64 = u64::MAX - 3;

/// `user_data` of a vif's multishot poll saying its tap has frames
/// ([`crate::tap`]).
pub const POLL_TAG: u64 = 1 << 40;
/// `user_data` tag of a write to a vif's tap (slot in the low bits).
pub const TX_TAG: u64 = 2 << 40;
/// `user_data` of a vif's rate timer.
pub const TIMER_TAG: u64 = 3 << 40;
/// `user_data` of a vif's cancellations at stop.
pub const CANCEL_TAG: u64 = 4 << 40;
/// Mask of the slot in a tag.
pub const SLOT_MASK: u64 = (1 << 40) - 1;

/// What an interrupt writes to the irqfd; static, so the kernel may read
/// it whenever it runs the write.
static IRQ_VALUE: u64 = 1;

/// Entries in the SQ (the CQ gets twice as many).
const RING_ENTRIES: u32 = 256;
/// Largest fixed buffer the kernel accepts.
const FIXED_BUFFER_BYTES: u64 = 1 << 30;

/// Counters of one device's io_uring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// SQEs for host block I/O pushed onto the SQ.
    pub sqes: u64,
    /// Requests completed.
    pub completed: u64,
    /// Flushes the host completed successfully.
    pub fsyncs: u64,
    /// `io_uring_enter` calls.
    pub enters: u64,
    /// Interrupts raised in the guest.
    pub interrupts: u64,
    /// Completions that matched no request.
    pub stray: u64,
}

/// What one completion was.
pub enum Completion {
    /// The guest kicked a queue (the notify read completed; re-armed).
    Notify,
    /// The device is being stopped.
    Stop,
    /// A block request finished: hand `(tag, result)` to the device.
    Request(u64, IoResult),
    /// The vif's tap has frames to read (the poll's events or a negative
    /// errno, and the completion's flags: whether the poll goes on).
    TapReadable(i32, u32),
    /// A write to the vif's tap finished (slot, bytes or negative errno).
    TapWritten(usize, i32),
    /// The vif's rate timer fired (or was removed).
    Timer,
    /// Nothing for the device (an interrupt written, a part of a request,
    /// a cancellation).
    Nothing,
}

/// Host I/O waiting to go into a device's ring, and what is out.
pub struct RingIo {
    inflight: Inflight,
    waiting: VecDeque<squeue::Entry>,
    scratch: Vec<squeue::Entry>,
    ram_host: u64,
    ram_bytes: u64,
    irq: EventFd,
    notify: EventFd,
    stop: EventFd,
    /// Targets of the armed eventfd reads; boxed so their addresses stay
    /// put while the kernel holds them.
    buffers: Box<[u64; 2]>,
    irq_wanted: bool,
    /// The notify read is queued or in the kernel.
    notify_out: bool,
    stopping: bool,
    stats: RingStats,
}

/// Creates a device's ring: `file` (a disk or a tap, if any) as fixed
/// file 0 and the guest's RAM (`ram_bytes` at host address `ram_host`) as
/// fixed buffers.
pub fn new_ring(
    file: Option<RawFd>,
    ram_host: u64,
    ram_bytes: u64,
) -> Result<IoUring, HostModelError> {
    let ring = IoUring::builder()
        .setup_cqsize(RING_ENTRIES * 2)
        .build(RING_ENTRIES)
        .map_err(host("io_uring_setup"))?;
    if let Some(fd) = file {
        ring.submitter()
            .register_files(&[fd])
            .map_err(host("registering the device's file with the io_uring"))?;
        let iovecs: Vec<libc::iovec> = (0..ram_bytes.div_ceil(FIXED_BUFFER_BYTES))
            .map(|i| libc::iovec {
                iov_base: (ram_host + i * FIXED_BUFFER_BYTES) as *mut libc::c_void,
                iov_len: (ram_bytes - i * FIXED_BUFFER_BYTES).min(FIXED_BUFFER_BYTES) as usize,
            })
            .collect();
        // SAFETY: the iovecs cover the guest's RAM, which the device's
        // platform keeps mapped (a `GuestRam` handle) for as long as the
        // ring exists; the kernel pins the pages.
        unsafe { ring.submitter().register_buffers(&iovecs) }
            .map_err(host("registering guest RAM with the io_uring"))?;
    }
    Ok(ring)
}

impl RingIo {
    /// Bookkeeping for a ring over RAM at `ram_host` of `ram_bytes`,
    /// woken by `notify` and `stop`, interrupting through `irq`.
    pub fn new(
        ram_host: u64,
        ram_bytes: u64,
        notify: EventFd,
        irq: EventFd,
        stop: EventFd,
    ) -> Self {
        Self {
            inflight: Inflight::new(),
            waiting: VecDeque::new(),
            scratch: Vec::new(),
            ram_host,
            ram_bytes,
            irq,
            notify,
            stop,
            buffers: Box::new([0, 0]),
            irq_wanted: false,
            notify_out: false,
            stopping: false,
            stats: RingStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> RingStats {
        self.stats
    }

    /// Queues the reads of the notify and stop eventfds (once, at start).
    pub fn arm(&mut self) {
        let stop = self.eventfd_read(self.stop.as_raw_fd(), 1, STOP);
        self.waiting.push_back(stop);
        self.arm_notify();
    }

    fn arm_notify(&mut self) {
        let read = self.eventfd_read(self.notify.as_raw_fd(), 0, NOTIFY);
        self.waiting.push_back(read);
        self.notify_out = true;
    }

    fn eventfd_read(&mut self, fd: RawFd, buffer: usize, user_data: u64) -> squeue::Entry {
        let target = &mut self.buffers[buffer] as *mut u64 as *mut u8;
        opcode::Read::new(types::Fd(fd), target, 8)
            .build()
            .user_data(user_data)
    }

    /// Queues an entry built elsewhere (the vif's tap reads and writes)
    /// for [`RingIo::push`].
    pub fn queue(&mut self, entry: squeue::Entry) {
        self.waiting.push_back(entry);
    }

    /// Asks for the device interrupt to be raised (once per round, however
    /// many completions asked).
    pub fn raise_interrupt(&mut self) {
        self.irq_wanted = true;
    }

    /// Turns `io` into SQEs, queued for [`RingIo::push`]; the result comes
    /// back from [`RingIo::complete`].
    pub fn submit(&mut self, io: &HostIo<'_>) -> Submission {
        let slot = self.inflight.reserve();
        let parts = self
            .build(io, u64::from(slot))
            .then_some(self.scratch.len() as u32);
        let submission = self.inflight.settle(slot, io, parts);
        if submission == Submission::Pending {
            self.stats.sqes += self.scratch.len() as u64;
            self.waiting.extend(self.scratch.drain(..));
        }
        submission
    }

    /// Builds `io`'s SQEs into `self.scratch`; false if a buffer lies
    /// outside the guest's RAM.
    fn build(&mut self, io: &HostIo<'_>, user_data: u64) -> bool {
        self.scratch.clear();
        let file = types::Fixed(0);
        if io.kind == IoKind::Flush {
            let fsync = opcode::Fsync::new(file)
                .flags(types::FsyncFlags::DATASYNC)
                .build();
            self.scratch.push(fsync.user_data(user_data));
            return true;
        }
        let mut offset = io.offset;
        for buf in io.buffers {
            let (mut gpa, mut left) = (buf.gpa, u64::from(buf.len));
            if gpa.checked_add(left).is_none_or(|end| end > self.ram_bytes) {
                return false;
            }
            while left > 0 {
                let index = gpa / FIXED_BUFFER_BYTES;
                let n = left.min((index + 1) * FIXED_BUFFER_BYTES - gpa);
                let host = (self.ram_host + gpa) as *mut u8;
                let entry = match io.kind {
                    IoKind::Read => opcode::ReadFixed::new(file, host, n as u32, index as u16)
                        .offset(offset)
                        .build(),
                    _ => opcode::WriteFixed::new(file, host, n as u32, index as u16)
                        .offset(offset)
                        .build(),
                };
                self.scratch.push(entry.user_data(user_data));
                gpa += n;
                offset = offset.wrapping_add(n);
                left -= n;
            }
        }
        true
    }

    /// Moves waiting entries (and the interrupt, if one is wanted) into
    /// the SQ, as far as it has room. Call with the device's lock held.
    /// True if the SQ holds entries the kernel has not taken yet.
    pub fn push(&mut self, ring: &IoUring) -> bool {
        if std::mem::take(&mut self.irq_wanted) {
            // A successful write posts no completion, so it never wakes
            // the worker for nothing.
            let value = &IRQ_VALUE as *const u64 as *const u8;
            let write = opcode::Write::new(types::Fd(self.irq.as_raw_fd()), value, 8)
                .build()
                .flags(squeue::Flags::SKIP_SUCCESS)
                .user_data(IRQ);
            self.waiting.push_back(write);
            self.stats.interrupts += 1;
        }
        // SAFETY: the SQ is only touched under the device's lock, which
        // the caller holds.
        let mut sq = unsafe { ring.submission_shared() };
        while let Some(entry) = self.waiting.front() {
            // SAFETY: every entry points at memory that outlives its
            // completion: guest RAM (kept mapped by the platform),
            // `self.buffers` (dropped only once the reads are done, see
            // `wind_down`), a static, or a vif's buffers and timer, which
            // live in the device's state until its worker saw every one of
            // them complete (`TapIo::wind_down`).
            if unsafe { sq.push(entry) }.is_err() {
                break;
            }
            self.waiting.pop_front();
        }
        sq.sync();
        !sq.is_empty()
    }

    /// True if entries still wait for room in the SQ.
    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty() || self.irq_wanted
    }

    /// Pops every completion into `out`. Call with the device's lock held.
    pub fn complete(&mut self, ring: &IoUring, out: &mut Vec<Completion>) {
        // SAFETY: the CQ is only touched under the device's lock.
        let cq = unsafe { ring.completion_shared() };
        for cqe in cq {
            out.push(match cqe.user_data() {
                NOTIFY => {
                    self.notify_out = false;
                    if cqe.result() >= 0 && !self.stopping {
                        self.arm_notify();
                    }
                    if cqe.result() >= 0 {
                        Completion::Notify
                    } else {
                        Completion::Nothing
                    }
                }
                STOP => Completion::Stop,
                IRQ => {
                    tracing::warn!("host model: raising an interrupt failed: {}", cqe.result());
                    Completion::Nothing
                }
                CANCEL => Completion::Nothing,
                POLL_TAG => Completion::TapReadable(cqe.result(), cqe.flags()),
                tag if tag & !SLOT_MASK == TX_TAG => {
                    Completion::TapWritten((tag & SLOT_MASK) as usize, cqe.result())
                }
                TIMER_TAG => Completion::Timer,
                CANCEL_TAG => Completion::Nothing,
                slot => match self.inflight.part_done(slot as u32, cqe.result()) {
                    PartDone::Stray => {
                        self.stats.stray += 1;
                        Completion::Nothing
                    }
                    PartDone::Pending => Completion::Nothing,
                    PartDone::Finished(f) => {
                        self.stats.completed += 1;
                        if f.flush && f.result.is_ok() {
                            self.stats.fsyncs += 1;
                        }
                        Completion::Request(f.tag, f.result)
                    }
                },
            });
        }
    }

    /// Counts one `io_uring_enter`.
    pub fn count_enter(&mut self) {
        self.stats.enters += 1;
    }

    /// At stop: cancels the notify read. True once nothing the kernel
    /// could still write into (the read, a request) is out.
    pub fn wind_down(&mut self) -> bool {
        if !self.stopping {
            self.stopping = true;
            if self.notify_out {
                let cancel = opcode::AsyncCancel::new(NOTIFY).build().user_data(CANCEL);
                self.waiting.push_back(cancel);
            }
        }
        self.inflight.is_empty() && !self.notify_out
    }
}
