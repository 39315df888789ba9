//! The two halves of the network driver: the receive ring, whose buffers
//! are posted again when their [`RxFrame`] is dropped, and the transmit
//! ring, whose free buffers are handed out as [`TxFrame`]s (see
//! [`super`] for the policy).

use alloc::vec;
use alloc::vec::Vec;

use protocol::virtio::net::{HEADER_SIZE, MAX_FRAME, MIN_FRAME, RX_BUFFER_SIZE};

use crate::dma::{DmaBuf, OutOfMemory};
use crate::virtio::queue::{QueueError, Seg, VirtQueue};

/// Bytes between buffers: [`RX_BUFFER_SIZE`] rounded up to a cache line.
pub(super) const BUF_STRIDE: usize = RX_BUFFER_SIZE.next_multiple_of(64);

/// Frames added to the transmit queue before they are published.
pub const TX_BATCH: u16 = 32;
/// Receive buffers posted again before they are published.
pub const RX_BATCH: u16 = 16;

/// The receive half.
pub(super) struct RxRing {
    /// The receive queue.
    pub(super) queue: VirtQueue,
    /// The buffers, [`BUF_STRIDE`] bytes apart.
    bufs: DmaBuf,
    /// Buffer index of the chain each head descriptor starts.
    buf_of_head: Vec<u16>,
    /// Buffers posted again since the last kick.
    pub(super) unkicked: u16,
    /// The first ring error; the driver stopped using the queue.
    pub(super) broken: Option<QueueError>,
    /// Frames taken in.
    pub(super) frames: u64,
    /// Bytes of those frames.
    pub(super) bytes: u64,
    /// Buffers that held no plausible frame.
    pub(super) dropped: u64,
}

/// The transmit half.
pub(super) struct TxRing {
    /// The transmit queue.
    pub(super) queue: VirtQueue,
    /// The buffers, [`BUF_STRIDE`] bytes apart.
    bufs: DmaBuf,
    /// Buffer index of the chain each head descriptor starts.
    buf_of_head: Vec<u16>,
    /// Buffers the device does not hold.
    free: Vec<u16>,
    /// Frames added since the last kick.
    pub(super) unkicked: u16,
    /// The driver found no free buffer since the last reclaim: arm the
    /// queue before sleeping, and take no frame in until buffers return.
    pub(super) starved: bool,
    /// The first ring error; the driver stopped using the queue.
    pub(super) broken: Option<QueueError>,
    /// Frames sent.
    pub(super) frames: u64,
    /// Bytes of those frames.
    pub(super) bytes: u64,
    /// Frames too large to send.
    pub(super) dropped: u64,
}

impl RxRing {
    /// A receive ring of `size` buffers for the queue whose doorbell is
    /// at `notify_addr`.
    pub(super) fn new(index: u16, size: u16, notify_addr: u64) -> Result<Self, OutOfMemory> {
        Ok(Self {
            queue: VirtQueue::new(index, size, notify_addr)?,
            bufs: DmaBuf::new(usize::from(size) * BUF_STRIDE)?,
            buf_of_head: vec![0; usize::from(size)],
            unkicked: 0,
            broken: None,
            frames: 0,
            bytes: 0,
            dropped: 0,
        })
    }

    /// Back to a fresh queue (the device was reset) with every buffer
    /// posted (not yet published); the counters are kept.
    pub(super) fn restart(&mut self, event_idx: bool) -> Result<(), QueueError> {
        self.queue.reset(event_idx);
        self.unkicked = 0;
        self.broken = None;
        for buf in 0..self.queue.size() {
            self.post(buf)?;
        }
        Ok(())
    }

    /// Posts receive buffer `buf` (not yet published).
    fn post(&mut self, buf: u16) -> Result<(), QueueError> {
        let at = usize::from(buf) * BUF_STRIDE;
        let head = self
            .queue
            .add(&[Seg::write(self.bufs.addr(at), RX_BUFFER_SIZE as u32)])?;
        self.buf_of_head[usize::from(head)] = buf;
        Ok(())
    }

    /// Records the first ring error.
    fn stop(&mut self, e: QueueError) {
        self.broken.get_or_insert(e);
    }

    /// The next filled buffer and its frame's length; buffers holding no
    /// plausible frame are counted and posted again.
    fn next(&mut self) -> Option<(u16, usize)> {
        while self.broken.is_none() {
            let elem = match self.queue.pop_used() {
                Ok(Some(elem)) => elem,
                Ok(None) => return None,
                Err(e) => {
                    self.stop(e);
                    return None;
                }
            };
            // `pop_used` checked that the id heads a chain in flight.
            let buf = self.buf_of_head[elem.id as usize];
            let len = elem.len as usize;
            if (HEADER_SIZE + MIN_FRAME..=RX_BUFFER_SIZE).contains(&len) {
                self.frames += 1;
                self.bytes += (len - HEADER_SIZE) as u64;
                return Some((buf, len - HEADER_SIZE));
            }
            self.dropped += 1;
            if let Err(e) = self.post(buf) {
                self.stop(e);
            }
        }
        None
    }

    /// The next received frame.
    pub(super) fn take(&mut self) -> Option<RxFrame<'_>> {
        let (buf, len) = self.next()?;
        Some(RxFrame {
            ring: self,
            buf,
            len,
        })
    }
}

impl TxRing {
    /// A transmit ring of `size` buffers for the queue whose doorbell is
    /// at `notify_addr`.
    pub(super) fn new(index: u16, size: u16, notify_addr: u64) -> Result<Self, OutOfMemory> {
        Ok(Self {
            queue: VirtQueue::new(index, size, notify_addr)?,
            bufs: DmaBuf::new(usize::from(size) * BUF_STRIDE)?,
            buf_of_head: vec![0; usize::from(size)],
            free: (0..size).rev().collect(),
            unkicked: 0,
            starved: false,
            broken: None,
            frames: 0,
            bytes: 0,
            dropped: 0,
        })
    }

    /// Back to a fresh queue (the device was reset) with every buffer
    /// free; the counters are kept.
    pub(super) fn restart(&mut self, event_idx: bool) {
        self.queue.reset(event_idx);
        self.free = (0..self.queue.size()).rev().collect();
        self.unkicked = 0;
        self.starved = false;
        self.broken = None;
    }

    /// A free buffer, reclaiming the ones the device consumed first;
    /// `None` (and the ring marked starved) if there is none.
    fn take_buf(&mut self) -> Option<u16> {
        if self.broken.is_some() {
            return None;
        }
        if self.free.is_empty() || self.starved {
            loop {
                match self.queue.pop_used() {
                    // `pop_used` checked that the id heads a chain in flight.
                    Ok(Some(elem)) => self.free.push(self.buf_of_head[elem.id as usize]),
                    Ok(None) => break,
                    Err(e) => {
                        self.broken.get_or_insert(e);
                        return None;
                    }
                }
            }
        }
        let buf = self.free.pop();
        self.starved = buf.is_none();
        buf
    }

    /// A free buffer as a frame to fill and send.
    pub(super) fn take(&mut self) -> Option<TxFrame<'_>> {
        let buf = self.take_buf()?;
        Some(TxFrame {
            ring: self,
            buf: Some(buf),
        })
    }
}

/// Takes a received frame and a transmit buffer for a reply, or neither
/// (see [`super::Net::take_frame`]).
pub(super) fn take_pair<'a>(
    rx: &'a mut RxRing,
    tx: &'a mut TxRing,
) -> Option<(RxFrame<'a>, TxFrame<'a>)> {
    let tx_buf = tx.take_buf()?;
    let Some((buf, len)) = rx.next() else {
        tx.free.push(tx_buf);
        return None;
    };
    Some((
        RxFrame { ring: rx, buf, len },
        TxFrame {
            ring: tx,
            buf: Some(tx_buf),
        },
    ))
}

/// A received frame; its buffer is posted again when this is dropped.
pub struct RxFrame<'a> {
    /// The ring the buffer goes back to.
    ring: &'a mut RxRing,
    /// The buffer's index.
    buf: u16,
    /// Bytes of the frame (after the header).
    len: usize,
}

impl RxFrame<'_> {
    /// The Ethernet frame.
    pub fn bytes(&self) -> &[u8] {
        let at = usize::from(self.buf) * BUF_STRIDE + HEADER_SIZE;
        // SAFETY: the device returned this buffer (its used entry was
        // harvested) and it is not posted again until `self` is dropped,
        // so nothing writes it while the slice lives; `len` was checked
        // to fit in the buffer's RX_BUFFER_SIZE bytes.
        unsafe { core::slice::from_raw_parts(self.ring.bufs.ptr(at), self.len) }
    }
}

impl Drop for RxFrame<'_> {
    fn drop(&mut self) {
        let ring = &mut *self.ring;
        if let Err(e) = ring.post(self.buf) {
            ring.stop(e);
            return;
        }
        // The device drops frames it has no buffer for: publish refills
        // in batches even while a long burst is being taken in.
        ring.unkicked += 1;
        if ring.unkicked >= RX_BATCH {
            ring.queue.kick();
            ring.unkicked = 0;
        }
    }
}

/// A transmit buffer taken from the free list: [`TxFrame::send`] adds it
/// to the queue; dropped unsent, it goes back to the free list.
pub struct TxFrame<'a> {
    /// The ring the buffer belongs to.
    ring: &'a mut TxRing,
    /// The buffer's index, until it is sent.
    buf: Option<u16>,
}

impl TxFrame<'_> {
    /// Lets `fill` write a frame of `len` bytes into the buffer and sends
    /// it. A frame larger than [`MAX_FRAME`] is built in a scratch buffer
    /// and dropped (counted in `tx_dropped`).
    pub fn send<R>(mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R {
        let ring = &mut *self.ring;
        let Some(buf) = self.buf.take() else {
            unreachable!("a TxFrame holds its buffer until it is sent")
        };
        if len > MAX_FRAME {
            ring.free.push(buf);
            ring.dropped += 1;
            return fill(&mut vec![0; len]);
        }
        let at = usize::from(buf) * BUF_STRIDE;
        // SAFETY: the buffer is free (the free list holds only buffers the
        // device returned or never had), so the device does not read it
        // until it is added below; header and frame fit in BUF_STRIDE.
        let bytes =
            unsafe { core::slice::from_raw_parts_mut(ring.bufs.ptr(at), HEADER_SIZE + len) };
        bytes[..HEADER_SIZE].fill(0);
        let result = fill(&mut bytes[HEADER_SIZE..]);
        let seg = Seg::read(ring.bufs.addr(at), (HEADER_SIZE + len) as u32);
        match ring.queue.add(&[seg]) {
            Ok(head) => {
                ring.buf_of_head[usize::from(head)] = buf;
                ring.frames += 1;
                ring.bytes += len as u64;
                ring.unkicked += 1;
                if ring.unkicked >= TX_BATCH {
                    ring.queue.kick();
                    ring.unkicked = 0;
                }
            }
            Err(e) => {
                // Cannot happen (a free buffer means a free descriptor);
                // stop rather than lose track of the buffer.
                ring.free.push(buf);
                ring.broken.get_or_insert(e);
            }
        }
        result
    }
}

impl Drop for TxFrame<'_> {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.ring.free.push(buf);
        }
    }
}
