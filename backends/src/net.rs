//! The virtio-net device: one receive and one transmit queue, no offloads,
//! the link always up.
//!
//! The device does not switch frames itself: a placement moves them
//! between devices (and its uplink) with Domain-0's [`crate::switch`]
//! deciding where each goes.
//!
//! **Transmit.** On a notification of [`TRANSMITQ`] the device takes every
//! chain the driver made available. A chain must be device-readable only
//! and hold a [`NetHeader`] and a frame of [`MIN_FRAME`] to [`MAX_FRAME`]
//! bytes, and the header may ask for no offload (no flag, `gso_type`
//! NONE: none was offered). A chain that breaks these rules is returned at
//! once with a used length of 0 and counted in [`NetStats::tx_malformed`];
//! it is the driver's mistake, not a broken ring. A good chain becomes a
//! [`TxFrame`] and **stays outstanding** until the placement has switched
//! it: the placement looks at the pending frames in order
//! ([`Net::pending_tx`]), copies each where the switch says, and returns
//! the first `n` to the driver ([`Net::finish_tx`]), so it may stop at any
//! frame (a rate limit saying "later") and resume there on its next call.
//! The pending frames are bounded by the queue size: a head the driver
//! makes available again while the device holds it is a ring violation.
//!
//! The first [`INSPECT_BYTES`] of each frame (its Ethernet header and the
//! IPv4 or ARP sender) are copied out of the guest's memory once, when the
//! frame is taken, and parsed into its [`FrameHeader`]; that copy, not the
//! guest's buffer (which the guest may rewrite meanwhile), is what every
//! receiver gets, so the frame delivered is the frame the switch policed.
//! The rest is read from the sender's memory when it is delivered.
//!
//! **Receive.** [`Net::receive`] puts one frame from a [`FrameSource`]
//! (bytes of the placement's, such as a frame read from the uplink, or a
//! [`GuestFrame`], another guest's pending frame, copied once with
//! [`Platform::copy_from`]) into the next buffer the driver posted in
//! [`RECEIVEQ`]: [`NetHeader::RECEIVED`] (`num_buffers` 1), then the
//! frame. A switch drops, it does not queue: with no buffer posted the
//! frame is dropped and counted. A buffer that cannot take the frame (one
//! with a device-readable part, or smaller than the header and the frame,
//! which a driver posting [`wire::RX_BUFFER_SIZE`] bytes as the MTU asks
//! never is) costs the frame: it is dropped, counted, and the buffer goes
//! back to the driver at once with a used length of 0, so the ring keeps
//! moving. The device never waits for receive buffers, so it asks the
//! driver not to notify [`RECEIVEQ`].

use alloc::collections::vec_deque::{self, VecDeque};
use alloc::vec;
use alloc::vec::Vec;

use protocol::virtio::features::{VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1};
use protocol::virtio::net::{
    self as wire, FrameHeader, Mac, NetHeader, HDR_GSO_NONE, HEADER_SIZE, INSPECT_BYTES, MAX_FRAME,
    MIN_FRAME, MTU, NUM_QUEUES, RECEIVEQ, TRANSMITQ, VIRTIO_NET_S_LINK_UP,
};
use protocol::virtio::{feature, mmio::DEVICE_ID_NET};

use crate::chain::{for_each_piece, Chain};
use crate::device::VirtioDevice;
use crate::platform::{GuestBuf, MemError, Platform};
use crate::queue::{Queue, QueueError};

/// How a network device is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The MAC address the device reports (`VIRTIO_NET_F_MAC`).
    pub mac: Mac,
    /// Largest size offered for each queue.
    pub queue_size: u16,
}

impl NetConfig {
    /// A device with `mac` and queues of
    /// [`OFFERED_QUEUE_SIZE`](protocol::virtio::mmio::OFFERED_QUEUE_SIZE)
    /// entries.
    pub fn new(mac: Mac) -> Self {
        Self {
            mac,
            queue_size: protocol::virtio::mmio::OFFERED_QUEUE_SIZE,
        }
    }
}

/// Counters of a network device. Byte counts are frame bytes, without the
/// virtio-net header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Frames the driver transmitted that the device accepted.
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Transmit chains refused: writable, too short or too long, or asking
    /// for an offload.
    pub tx_malformed: u64,
    /// Frames delivered into receive buffers.
    pub rx_frames: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames dropped because the driver had posted no receive buffer.
    pub rx_no_buffer: u64,
    /// Frames dropped because the next receive buffer could not hold them
    /// (too small, or not device-writable only).
    pub rx_bad_buffer: u64,
    /// Frames refused because their length was outside
    /// `MIN_FRAME..=MAX_FRAME`.
    pub rx_bad_frame: u64,
    /// Frames dropped because copying them failed (the source's memory
    /// went away).
    pub rx_faults: u64,
}

impl core::fmt::Display for NetStats {
    /// The counters as both placements log them when a vif goes.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} frames sent ({} bytes), {} received ({} bytes), {} malformed sent; received frames dropped: {} no buffer, {} bad buffer, {} bad length, {} copy faults",
            self.tx_frames,
            self.tx_bytes,
            self.rx_frames,
            self.rx_bytes,
            self.tx_malformed,
            self.rx_no_buffer,
            self.rx_bad_buffer,
            self.rx_bad_frame,
            self.rx_faults
        )
    }
}

/// What [`Net::receive`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Delivered: the driver's buffer holds the header and the frame.
    Delivered,
    /// No receive buffer posted (or the receive queue not running): the
    /// frame was dropped.
    NoBuffer,
    /// The next buffer could not hold the frame: the frame was dropped and
    /// the buffer returned with a used length of 0.
    BadBuffer,
    /// The frame's length is outside `MIN_FRAME..=MAX_FRAME`: refused
    /// without taking a buffer.
    BadFrame,
    /// Reading the frame failed (its source's memory is gone): the frame
    /// was dropped and the buffer returned with a used length of 0.
    Fault(MemError),
}

/// A frame the driver transmitted, waiting for the placement to switch it;
/// its chain is still outstanding.
#[derive(Debug)]
pub struct TxFrame {
    head: u16,
    header: FrameHeader,
    len: usize,
    prefix: [u8; INSPECT_BYTES],
    segments: Vec<GuestBuf>,
}

/// One piece of a frame: bytes the device holds, or a range of the
/// sender's memory.
enum Piece<'a> {
    Local(&'a [u8]),
    Guest(u64, u32),
}

impl TxFrame {
    /// What the switch reads: addresses, ethertype, IPv4 or ARP sender.
    pub fn header(&self) -> &FrameHeader {
        &self.header
    }

    /// Bytes of the frame (without the virtio-net header).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a frame of no bytes, which the device never accepts.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The frame's first `min(len, INSPECT_BYTES)` bytes, as copied and
    /// parsed when the device took the frame.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix[..self.len.min(INSPECT_BYTES)]
    }

    /// The rest of the frame, after [`TxFrame::prefix`]: guest-physical
    /// ranges of the sender's memory, in order. A placement that hands the
    /// frame to the host without copying it (a vectored write to the tap)
    /// sends [`TxFrame::prefix`], the device's copy, then these ranges;
    /// never the prefix from the sender's memory, which the sender may
    /// have rewritten since it was checked.
    pub fn segments(&self) -> &[GuestBuf] {
        &self.segments
    }

    /// Copies `buf.len()` bytes of the frame from byte `offset` out of the
    /// sender's memory `p` (for the uplink or a tap). Fails if the range
    /// passes the frame's end or the sender's memory refuses it.
    pub fn read<P: Platform>(&self, p: &P, offset: usize, buf: &mut [u8]) -> Result<(), MemError> {
        self.pieces(offset, buf.len(), |piece, done| match piece {
            Piece::Local(bytes) => {
                buf[done..done + bytes.len()].copy_from_slice(bytes);
                Ok(())
            }
            Piece::Guest(gpa, n) => p.read(gpa, &mut buf[done..done + n as usize]),
        })
    }

    /// Calls `f(piece, bytes before it)` for the pieces of frame bytes
    /// `[offset, offset + len)`, in order.
    fn pieces(
        &self,
        offset: usize,
        len: usize,
        mut f: impl FnMut(Piece<'_>, usize) -> Result<(), MemError>,
    ) -> Result<(), MemError> {
        let past_end = MemError {
            gpa: offset as u64,
            len: len as u64,
        };
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(past_end);
        }
        let prefix = self.prefix();
        let mut done = 0usize;
        if offset < prefix.len() {
            let n = (prefix.len() - offset).min(len);
            f(Piece::Local(&prefix[offset..offset + n]), 0)?;
            done = n;
        }
        if done == len {
            return Ok(());
        }
        let pieces = self.segments.iter().map(|s| (s.gpa, s.len));
        let from = (offset + done - prefix.len()) as u64;
        for_each_piece(pieces, from, (len - done) as u64, |gpa, n| {
            f(Piece::Guest(gpa, n), done)?;
            done += n as usize;
            Ok(())
        })
    }
}

/// A frame to deliver into a receive buffer of a device whose memory is a
/// `P`.
pub trait FrameSource<P: Platform> {
    /// Bytes of the frame.
    fn len(&self) -> usize;

    /// True for a frame of no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies frame bytes `[offset, offset + len)` into the receiver's
    /// memory `dst` at `gpa`.
    fn copy_into(&self, dst: &mut P, gpa: u64, offset: usize, len: usize) -> Result<(), MemError>;
}

/// A frame in the placement's own memory (one read from the uplink).
impl<P: Platform> FrameSource<P> for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn copy_into(&self, dst: &mut P, gpa: u64, offset: usize, len: usize) -> Result<(), MemError> {
        let bytes = offset
            .checked_add(len)
            .and_then(|end| self.get(offset..end))
            .ok_or(MemError {
                gpa,
                len: len as u64,
            })?;
        dst.write(gpa, bytes)
    }
}

/// Another guest's pending frame, with that guest's memory: delivered with
/// [`Platform::copy_from`], so a guest-to-guest frame is copied once.
#[derive(Clone, Copy, Debug)]
pub struct GuestFrame<'a, P> {
    /// The sender's memory.
    pub platform: &'a P,
    /// The frame, from the sender's [`Net::pending_tx`].
    pub frame: &'a TxFrame,
}

impl<P: Platform> FrameSource<P> for GuestFrame<'_, P> {
    fn len(&self) -> usize {
        self.frame.len()
    }

    fn copy_into(&self, dst: &mut P, gpa: u64, offset: usize, len: usize) -> Result<(), MemError> {
        self.frame.pieces(offset, len, |piece, done| {
            let at = gpa + done as u64;
            match piece {
                Piece::Local(bytes) => dst.write(at, bytes),
                Piece::Guest(src, n) => dst.copy_from(at, self.platform, src, u64::from(n)),
            }
        })
    }
}

/// The length of the frame a transmit chain carries, if the chain has the
/// shape the device accepts: device-readable only, a header and a frame of
/// `MIN_FRAME..=MAX_FRAME` bytes.
fn tx_frame_len(chain: &Chain) -> Option<usize> {
    if !chain.writable().is_empty() {
        return None;
    }
    let frame = chain.readable_len().checked_sub(HEADER_SIZE as u64)?;
    let frame = usize::try_from(frame).ok()?;
    (MIN_FRAME..=MAX_FRAME).contains(&frame).then_some(frame)
}

/// True if a transmit header asks for nothing: no offload was offered, so
/// a checksum to complete or a segmentation to do is malformed.
fn tx_header_ok(h: &NetHeader) -> bool {
    h.flags == 0 && h.gso_type == HDR_GSO_NONE
}

/// A virtio-net device model.
#[derive(Debug)]
pub struct Net {
    config: NetConfig,
    queue_max: [u16; NUM_QUEUES],
    chain: Chain,
    pending: VecDeque<TxFrame>,
    /// Segment lists of finished frames, for the next ones.
    spare: Vec<Vec<GuestBuf>>,
    /// Transmit heads held in `pending`, by index.
    held: Vec<bool>,
    rx_segments: Vec<GuestBuf>,
    stats: NetStats,
}

impl Net {
    /// A network device described by `config`.
    pub fn new(config: NetConfig) -> Self {
        let size = config
            .queue_size
            .clamp(1, protocol::virtio::mmio::MAX_QUEUE_SIZE);
        Self {
            config,
            queue_max: [size; NUM_QUEUES],
            chain: Chain::new(),
            pending: VecDeque::new(),
            spare: Vec::new(),
            held: vec![false; usize::from(size)],
            rx_segments: Vec::new(),
            stats: NetStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// The transmitted frames waiting to be switched, oldest first. Reach
    /// them through [`crate::DeviceModel::tx_frames`], which shows none
    /// while the device is stopped.
    pub fn pending_tx(&self) -> vec_deque::Iter<'_, TxFrame> {
        self.pending.iter()
    }

    /// Returns the `n` oldest pending frames' chains to the driver (used
    /// length 0), or all of them if fewer are pending; returns how many.
    /// Call it through the transport's `with_device`, which then decides
    /// the interrupt.
    pub fn finish_tx<P: Platform>(
        &mut self,
        p: &mut P,
        queues: &mut [Queue],
        n: usize,
    ) -> Result<usize, QueueError> {
        let q = &mut queues[usize::from(TRANSMITQ)];
        let n = n.min(self.pending.len());
        for _ in 0..n {
            let Some(frame) = self.pending.pop_front() else {
                break;
            };
            self.held[usize::from(frame.head)] = false;
            self.spare.push(frame.segments);
            q.add_used(p, frame.head, 0)?;
        }
        Ok(n)
    }

    /// True if the driver has a receive buffer posted: a placement that
    /// can hold frames back (the host model's tap) waits for one instead
    /// of dropping.
    pub fn has_rx_buffer<P: Platform>(&self, p: &P, queues: &[Queue]) -> Result<bool, QueueError> {
        queues[usize::from(RECEIVEQ)].has_available(p)
    }

    /// Asks the driver to notify the receive queue when it posts a buffer
    /// (the device otherwise asks for no receive notifications): for a
    /// placement that holds a frame back until there is room. True if a
    /// buffer is posted already (deliver now instead of waiting). The
    /// device turns the notifications off again when one comes.
    pub fn wait_for_rx_buffer<P: Platform>(
        &mut self,
        p: &mut P,
        queues: &mut [Queue],
    ) -> Result<bool, QueueError> {
        queues[usize::from(RECEIVEQ)].enable_notification(p)
    }

    /// Delivers `source` into the next receive buffer (see the module
    /// documentation for what happens when there is none, or it is too
    /// small). Call it through the transport's `with_device`.
    pub fn receive<P: Platform, S: FrameSource<P> + ?Sized>(
        &mut self,
        p: &mut P,
        queues: &mut [Queue],
        source: &S,
    ) -> Result<Received, QueueError> {
        let len = source.len();
        if !(MIN_FRAME..=MAX_FRAME).contains(&len) {
            self.stats.rx_bad_frame += 1;
            return Ok(Received::BadFrame);
        }
        let q = &mut queues[usize::from(RECEIVEQ)];
        if !q.ready() || !q.pop(p, &mut self.chain)? {
            self.stats.rx_no_buffer += 1;
            return Ok(Received::NoBuffer);
        }
        let head = self.chain.head();
        let total = HEADER_SIZE + len;
        if !self.chain.readable().is_empty() || self.chain.writable_len() < total as u64 {
            self.stats.rx_bad_buffer += 1;
            q.add_used(p, head, 0)?;
            return Ok(Received::BadBuffer);
        }
        self.chain
            .write_writable(p, 0, &NetHeader::RECEIVED.to_bytes())?;
        self.rx_segments.clear();
        self.chain
            .writable_segments(HEADER_SIZE as u64, len as u64, &mut self.rx_segments);
        let mut done = 0usize;
        for seg in &self.rx_segments {
            let n = seg.len as usize;
            if let Err(e) = source.copy_into(p, seg.gpa, done, n) {
                self.stats.rx_faults += 1;
                q.add_used(p, head, 0)?;
                return Ok(Received::Fault(e));
            }
            done += n;
        }
        self.stats.rx_frames += 1;
        self.stats.rx_bytes += len as u64;
        q.add_used(p, head, total as u32)?;
        Ok(Received::Delivered)
    }

    /// Takes every chain the driver made available in the transmit queue.
    fn transmit<P: Platform>(&mut self, p: &mut P, q: &mut Queue) -> Result<(), QueueError> {
        loop {
            if !q.pop(p, &mut self.chain)? {
                if q.enable_notification(p)? {
                    continue;
                }
                return Ok(());
            }
            let head = self.chain.head();
            let held = self
                .held
                .get_mut(usize::from(head))
                .ok_or(QueueError::HeadOutOfRange(head))?;
            if *held {
                return Err(QueueError::HeadInFlight(head));
            }
            match self.take_frame(p)? {
                Some(frame) => {
                    self.held[usize::from(head)] = true;
                    self.stats.tx_frames += 1;
                    self.stats.tx_bytes += frame.len as u64;
                    self.pending.push_back(frame);
                }
                None => {
                    self.stats.tx_malformed += 1;
                    q.add_used(p, head, 0)?;
                }
            }
        }
    }

    /// The frame in `self.chain`, or `None` if the chain is malformed.
    fn take_frame<P: Platform>(&mut self, p: &P) -> Result<Option<TxFrame>, MemError> {
        let Some(len) = tx_frame_len(&self.chain) else {
            return Ok(None);
        };
        let mut raw = [0u8; HEADER_SIZE];
        self.chain.read_readable(p, 0, &mut raw)?;
        if !tx_header_ok(&NetHeader::from_bytes(&raw)) {
            return Ok(None);
        }
        let mut prefix = [0u8; INSPECT_BYTES];
        let inspected = len.min(INSPECT_BYTES);
        self.chain
            .read_readable(p, HEADER_SIZE as u64, &mut prefix[..inspected])?;
        let Some(header) = FrameHeader::parse(&prefix[..inspected]) else {
            return Ok(None);
        };
        let mut segments = self.spare.pop().unwrap_or_default();
        segments.clear();
        let rest = (HEADER_SIZE + inspected) as u64;
        self.chain
            .readable_segments(rest, (len - inspected) as u64, &mut segments);
        Ok(Some(TxFrame {
            head: self.chain.head(),
            header,
            len,
            prefix,
            segments,
        }))
    }
}

impl VirtioDevice for Net {
    fn device_id(&self) -> u32 {
        DEVICE_ID_NET
    }

    fn device_features(&self) -> u64 {
        feature(VIRTIO_F_VERSION_1)
            | feature(VIRTIO_F_EVENT_IDX)
            | feature(VIRTIO_F_INDIRECT_DESC)
            | feature(wire::VIRTIO_NET_F_MAC)
            | feature(wire::VIRTIO_NET_F_STATUS)
            | feature(wire::VIRTIO_NET_F_MTU)
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_max
    }

    fn buffers_are_work(&self, queue: u16) -> bool {
        // Receive buffers wait for frames: polling them would find "work"
        // for as long as the driver keeps buffers posted, which is always.
        queue != RECEIVEQ
    }

    fn config_size(&self) -> usize {
        wire::CONFIG_SIZE
    }

    fn read_config(&self, offset: usize, data: &mut [u8]) {
        let bytes = wire::Config {
            mac: self.config.mac,
            status: VIRTIO_NET_S_LINK_UP,
            max_virtqueue_pairs: 1,
            mtu: MTU,
        }
        .to_bytes();
        if let Some(src) = bytes.get(offset..offset + data.len()) {
            data.copy_from_slice(src);
        }
    }

    fn write_config<P: Platform>(&mut self, _p: &mut P, _offset: usize, _data: &[u8]) -> bool {
        // The MAC is the toolstack's, not the driver's
        // (no VIRTIO_NET_F_CTRL_MAC_ADDR).
        false
    }

    fn activate(&mut self, _features: u64) {}

    fn reset(&mut self) {
        for frame in self.pending.drain(..) {
            self.spare.push(frame.segments);
        }
        self.held.iter_mut().for_each(|h| *h = false);
    }

    fn queue_notify<P: Platform>(
        &mut self,
        p: &mut P,
        queues: &mut [Queue],
        queue: u16,
    ) -> Result<(), QueueError> {
        match queue {
            // Buffers are taken when a frame arrives; none is awaited.
            RECEIVEQ => queues[usize::from(RECEIVEQ)].disable_notification(p),
            TRANSMITQ => self.transmit(p, &mut queues[usize::from(TRANSMITQ)]),
            _ => Ok(()),
        }
    }
}
