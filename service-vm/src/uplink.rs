//! [`Uplink`]: Dom0's end of one switch's uplink, a tap on the host's
//! bridge lent to Dom0 as a hardware queue ([`HwRing`]: the tap is fixed
//! file 0, Dom0's RAM below its reserved region the only fixed buffer,
//! [`RAM_BUFFER`]).
//!
//! **Receive.** Up to [`RX_SLOTS`] `READ_FIXED`s of [`MAX_FRAME`] bytes
//! are kept posted, each into its own buffer in Dom0's heap, at file
//! offset -1 (the tap is a stream: read from where it is; the kernel
//! takes -1 as "the current position" and ignores it for a stream). A
//! completed read is one frame: [`Uplink::reap`] hands it to the switch
//! (which copies it into the guests' receive buffers at once) and posts
//! the read again. The switch drops, it does not queue: a frame no guest
//! has room for is gone, as on a real switch.
//!
//! **Transmit.** A frame the switch sends to the bridge is copied out of
//! the sender's memory into one of [`TX_SLOTS`] buffers and written with
//! one `WRITE_FIXED`; the buffer is free again when the write completes.
//! With every buffer in flight the switch leaves the sender's frames
//! outstanding ([`Uplink::has_tx_buffer`]) until a completion frees one.
//!
//! Reads and writes out never exceed the completion ring, so the kernel
//! never holds completions back. Every SQE's `user_data` holds the
//! uplink's device id in the high half (completions of another user of
//! the queue are dropped) and the direction and buffer in the low half.
//!
//! The buffers are never freed: the kernel may write into a posted read's
//! buffer until the queue is closed, which `hypd` does after Dom0 has
//! been told the uplink is gone; uplinks live as long as Dom0 anyway.

use alloc::vec;
use alloc::vec::Vec;
use core::alloc::Layout;

use backends::{DropReason, MemError};
use guest_runtime::println;
use protocol::device::{BackendEvent, VDEV_LEN};
use protocol::hwqueue::{Sqe, RAM_BUFFER};
use protocol::virtio::net::MAX_FRAME;

use crate::backend::vdev_name;
use crate::hwring::{HwRing, RingStats};
use crate::reserved::Reserved;

/// Reads of the tap kept posted (at most; fewer on a small CQ).
pub const RX_SLOTS: usize = 64;
/// Writes to the tap in flight at most (fewer on a small CQ).
pub const TX_SLOTS: usize = 64;
/// Bytes between two frame buffers: [`MAX_FRAME`] rounded up, so no
/// buffer crosses a page more than it must.
const STRIDE: usize = 2048;
/// Bit of the low half of `user_data` that marks a write.
const TX_BIT: u32 = 1 << 31;
/// Most completions one [`Uplink::reap`] pops.
const MAX_REAP_PER_CALL: usize = 256;
/// Reads in a row that brought no frame (failed, or to be retried) after
/// which such a read is not posted again: a tap that errors at once must
/// not keep Dom0 spinning.
const MAX_FAILED_READS: u32 = 1024;
/// `EAGAIN`, `EINTR`: a read to post again, not an error.
const RETRY_ERRNOS: [i32; 2] = [11, 4];

const _: () = assert!(STRIDE >= MAX_FRAME);

/// Counters of an uplink.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UplinkStats {
    /// Frames read from the tap.
    pub rx_frames: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames written to the tap.
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Reads the kernel failed.
    pub rx_errors: u64,
    /// Writes the kernel failed (or wrote short).
    pub tx_errors: u64,
    /// Completions that were not the uplink's (dropped).
    pub stray: u64,
}

/// `count` buffers of [`STRIDE`] bytes in Dom0's heap, which the kernel
/// reads and writes through the queue: Rust never holds a reference into
/// one while the kernel may touch it.
#[derive(Debug)]
struct FrameBuffers {
    base: *mut u8,
    count: usize,
}

impl FrameBuffers {
    /// `count` zeroed buffers, or `None` if the heap has no room.
    fn new(count: usize) -> Option<Self> {
        let layout = Layout::from_size_align(count.max(1) * STRIDE, 4096).ok()?;
        // SAFETY: the layout has a non-zero size; the memory is never
        // freed (see the module documentation).
        let base = unsafe { alloc::alloc::alloc_zeroed(layout) };
        (!base.is_null()).then_some(Self { base, count })
    }

    /// The Dom0 address of buffer `i` (identity-mapped: also its
    /// Dom0-physical address).
    fn addr(&self, i: usize) -> u64 {
        debug_assert!(i < self.count);
        self.base as u64 + (i * STRIDE) as u64
    }
}

/// Dom0's end of one switch's uplink.
#[derive(Debug)]
pub struct Uplink {
    ring: HwRing,
    layout: u64,
    device_id: u32,
    bridge: [u8; VDEV_LEN],
    rx: FrameBuffers,
    /// The fixed-buffer address of each read's buffer.
    rx_io: Vec<u64>,
    /// Reads out, by buffer.
    rx_out: Vec<bool>,
    failed_reads: u32,
    reads_stopped: bool,
    tx: FrameBuffers,
    tx_io: Vec<u64>,
    tx_out: Vec<bool>,
    tx_free: Vec<usize>,
    stats: UplinkStats,
}

impl Uplink {
    /// Dom0's end of the uplink `event` announces (a [`kind::UPLINK`]
    /// event: `queue_layout`, `queue_port`, the bridge as `vdev`), with
    /// its reads posted (they go out with the next doorbell).
    ///
    /// [`kind::UPLINK`]: protocol::device::kind::UPLINK
    ///
    /// # Safety
    ///
    /// No other user of the same queue may exist while this one does.
    pub unsafe fn new(event: &BackendEvent, reserved: Reserved) -> Result<Self, &'static str> {
        // SAFETY: the caller's guarantee, passed on.
        let ring = unsafe {
            HwRing::new(
                event.queue_layout,
                event.queue_port,
                event.device_id,
                reserved,
            )
        }?;
        let room = ring.cq_entries() as usize / 2;
        let (nrx, ntx) = (RX_SLOTS.min(room), TX_SLOTS.min(room));
        if nrx == 0 || ntx == 0 {
            return Err("completion ring too small");
        }
        let rx = FrameBuffers::new(nrx).ok_or("no memory for frame buffers")?;
        let tx = FrameBuffers::new(ntx).ok_or("no memory for frame buffers")?;
        let io_addrs = |b: &FrameBuffers| -> Option<Vec<u64>> {
            (0..b.count)
                .map(|i| match ring.translate_whole(b.addr(i), STRIDE as u64) {
                    Some((RAM_BUFFER, io)) => Some(io),
                    _ => None,
                })
                .collect()
        };
        let outside = "frame buffers outside the queue's fixed buffer";
        let rx_io = io_addrs(&rx).ok_or(outside)?;
        let tx_io = io_addrs(&tx).ok_or(outside)?;
        let mut uplink = Self {
            ring,
            layout: event.queue_layout,
            device_id: event.device_id,
            bridge: event.vdev,
            rx,
            rx_io,
            rx_out: vec![false; nrx],
            failed_reads: 0,
            reads_stopped: false,
            tx,
            tx_io,
            tx_out: vec![false; ntx],
            tx_free: (0..ntx).rev().collect(),
            stats: UplinkStats::default(),
        };
        for slot in 0..nrx {
            uplink.post_read(slot);
        }
        Ok(uplink)
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        vdev_name(&self.bridge)
    }

    /// The Dom0-physical address of the queue's layout (which queue it
    /// is).
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// The device id the uplink was announced with.
    pub fn device_id(&self) -> u32 {
        self.device_id
    }

    /// Reads kept posted and write buffers.
    pub fn buffers(&self) -> (usize, usize) {
        (self.rx.count, self.tx.count)
    }

    /// Counters of the uplink and of its ring.
    pub fn stats(&self) -> (UplinkStats, RingStats) {
        (self.stats, self.ring.stats())
    }

    /// The `user_data` of a read (`tx` false) or write of buffer `slot`.
    fn user_data(&self, tx: bool, slot: usize) -> u64 {
        let low = slot as u32 | if tx { TX_BIT } else { 0 };
        (u64::from(self.device_id) << 32) | u64::from(low)
    }

    /// Posts the read of buffer `slot`.
    fn post_read(&mut self, slot: usize) {
        self.rx_out[slot] = true;
        let user_data = self.user_data(false, slot);
        let sqe = Sqe::read_fixed(
            RAM_BUFFER,
            self.rx_io[slot],
            MAX_FRAME as u32,
            u64::MAX,
            user_data,
        );
        self.ring.push(&sqe);
    }

    /// True if a write buffer is free.
    pub fn has_tx_buffer(&self) -> bool {
        !self.tx_free.is_empty()
    }

    /// Sends a frame of `len` bytes to the bridge: `fill` copies it into a
    /// free buffer, which one `WRITE_FIXED` then writes. Fails (a drop at
    /// the uplink's port) if no buffer is free, `len` is no frame, or
    /// `fill` fails.
    pub fn send(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<(), MemError>,
    ) -> Result<(), DropReason> {
        if len == 0 || len > MAX_FRAME {
            return Err(DropReason::Malformed);
        }
        let slot = *self.tx_free.last().ok_or(DropReason::NoBuffer)?;
        // SAFETY: buffer `slot` is free: no write of it is in flight, so
        // the kernel does not read it, and nothing else in Dom0 refers to
        // it; `len <= MAX_FRAME <= STRIDE` keeps the slice inside it.
        let buf = unsafe { core::slice::from_raw_parts_mut(self.tx.addr(slot) as *mut u8, len) };
        fill(buf).map_err(|_| DropReason::Malformed)?;
        self.tx_free.pop();
        self.tx_out[slot] = true;
        let user_data = self.user_data(true, slot);
        let sqe = Sqe::write_fixed(
            RAM_BUFFER,
            self.tx_io[slot],
            len as u32,
            u64::MAX,
            user_data,
        );
        self.ring.push(&sqe);
        Ok(())
    }

    /// True if completions wait (one acquire load).
    pub fn has_completions(&self) -> bool {
        self.ring.has_completions()
    }

    /// Pops completions (at most [`MAX_REAP_PER_CALL`]): each frame read
    /// goes to `on_frame`, then its read is posted again; each write done
    /// frees its buffer. Returns the completions popped.
    pub fn reap(&mut self, mut on_frame: impl FnMut(&[u8])) -> usize {
        let mut popped = 0;
        while popped < MAX_REAP_PER_CALL {
            let Some(cqe) = self.ring.pop() else { break };
            popped += 1;
            let low = cqe.user_data as u32;
            let (tx, slot) = (low & TX_BIT != 0, (low & !TX_BIT) as usize);
            let ours = cqe.user_data >> 32 == u64::from(self.device_id);
            if !ours {
                self.stats.stray += 1;
            } else if tx {
                self.write_done(slot, cqe.res);
            } else {
                self.read_done(slot, cqe.res, &mut on_frame);
            }
        }
        self.ring.after_reap();
        popped
    }

    /// A read of buffer `slot` completed with `res`.
    fn read_done(&mut self, slot: usize, res: i32, on_frame: &mut impl FnMut(&[u8])) {
        if !self.rx_out.get(slot).copied().unwrap_or(false) {
            self.stats.stray += 1;
            return;
        }
        self.rx_out[slot] = false;
        match usize::try_from(res) {
            Ok(len) if len > 0 => {
                self.failed_reads = 0;
                self.stats.rx_frames += 1;
                self.stats.rx_bytes += len as u64;
                let len = len.min(MAX_FRAME);
                // SAFETY: the read of buffer `slot` completed and is not
                // posted again until `on_frame` returns, so the kernel
                // does not write the buffer meanwhile; it wrote `len`
                // bytes at its start.
                let frame =
                    unsafe { core::slice::from_raw_parts(self.rx.addr(slot) as *const u8, len) };
                on_frame(frame);
            }
            _ => {
                if !RETRY_ERRNOS.contains(&res.wrapping_neg()) {
                    self.stats.rx_errors += 1;
                }
                self.failed_reads += 1;
                if self.failed_reads > MAX_FAILED_READS {
                    if !core::mem::replace(&mut self.reads_stopped, true) {
                        println!(
                            "service-vm: uplink on bridge {}: reads keep failing (last: {res}): stopped reading",
                            self.bridge()
                        );
                    }
                    return;
                }
            }
        }
        self.post_read(slot);
    }

    /// A write of buffer `slot` completed with `res`.
    fn write_done(&mut self, slot: usize, res: i32) {
        if !self.tx_out.get(slot).copied().unwrap_or(false) {
            self.stats.stray += 1;
            return;
        }
        self.tx_out[slot] = false;
        self.tx_free.push(slot);
        if res > 0 {
            self.stats.tx_frames += 1;
            self.stats.tx_bytes += res as u64;
        } else {
            self.stats.tx_errors += 1;
        }
    }

    /// Rings the doorbell if SQEs were pushed since the last ring.
    pub fn flush(&mut self) {
        self.ring.flush(|_| {});
    }

    /// Turns completion interrupts on or off (off while Dom0 polls).
    pub fn set_interrupts(&mut self, enabled: bool) {
        self.ring.set_interrupts(enabled);
    }
}
