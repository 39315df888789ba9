//! The virtio-net driver: one receive and one transmit queue, a frame per
//! buffer.
//!
//! The device offers no offloads and no mergeable receive buffers, so
//! every buffer is one descriptor holding a 12-byte [`NetHeader`] and
//! one whole Ethernet frame (without FCS), in either direction:
//!
//! * **Receive.** Every descriptor of the receive queue carries a
//!   device-writable buffer of [`RX_BUFFER_SIZE`](protocol::virtio::net::RX_BUFFER_SIZE) bytes, posted at
//!   bring-up. [`Net::take_frame`] takes the next filled one (the header's
//!   `num_buffers` is ignored) and, when its [`RxFrame`] is dropped, posts
//!   the same buffer again; re-posted buffers are published every
//!   [`RX_BATCH`](rings::RX_BATCH) and by [`Net::flush`] (the device drops a frame it has
//!   no buffer for, so refills must not wait for a long burst to end).
//! * **Transmit.** [`Net::take_tx`] hands out a free buffer, writes an
//!   all-zero header and adds the frame when its [`TxFrame`] is sent;
//!   buffers come back as the device consumes them and are reclaimed
//!   lazily, when the driver runs short. Added frames are published every
//!   [`TX_BATCH`](rings::TX_BATCH) frames and by [`Net::flush`].
//!
//! [`Net::reinit`] resets the device and brings it up again on the same
//! memory (after DEVICE_NEEDS_RESET, or a hostile test that wrote the
//! rings raw through [`Net::tx_queue`]); dropping a [`Net`] resets the
//! device, so that it stops writing into receive buffers about to be
//! freed (a device detached from a running guest). The two halves are in
//! [`rings`].
//!
//! Notifications follow the block driver's policy: with
//! `VIRTIO_F_EVENT_IDX` the device rings no interrupt while the driver
//! is busy (the driver writes `used_event` only in [`Net::arm`], right
//! before it sleeps) and the driver rings the doorbell only when the
//! device asked for it (`avail_event`). The receive queue is armed for
//! every sleep; the transmit queue only when the driver found it full
//! ("starved"), since only then is anyone waiting for buffers to return.

mod rings;

use core::fmt;

use protocol::device::GuestDevice;
use protocol::virtio::feature;
use protocol::virtio::features::VIRTIO_F_EVENT_IDX;
use protocol::virtio::mmio::DEVICE_ID_NET;
use protocol::virtio::net::{
    MTU, RECEIVEQ, TRANSMITQ, VIRTIO_NET_F_MAC, VIRTIO_NET_F_MTU, VIRTIO_NET_F_STATUS,
    VIRTIO_NET_S_LINK_UP,
};

use super::mmio::{Transport, TransportError};
use super::queue::{QueueError, VirtQueue};
use super::wait::Waitable;
use crate::dma::OutOfMemory;
pub use rings::{RxFrame, TxFrame};
use rings::{RxRing, TxRing};

/// Largest queue this driver asks for, in each direction.
const QUEUE_SIZE: u16 = 256;
/// Offset of `mtu` in the configuration space.
const CONFIG_MTU_OFFSET: u64 = 8;
/// Smallest MTU believed (IPv4's minimum).
const MIN_MTU: u16 = 68;

/// Why the network device could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// Bring-up failed or the device needs a reset.
    Transport(TransportError),
    /// Out of driver memory.
    Memory(OutOfMemory),
    /// The device broke the used-ring protocol; the driver stopped.
    Queue(QueueError),
}

impl From<TransportError> for NetError {
    fn from(e: TransportError) -> Self {
        Self::Transport(e)
    }
}

impl From<OutOfMemory> for NetError {
    fn from(e: OutOfMemory) -> Self {
        Self::Memory(e)
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "{e}"),
            Self::Memory(e) => write!(f, "out of memory ({} bytes)", e.0),
            Self::Queue(e) => write!(f, "device broke a used ring: {e:?}"),
        }
    }
}

/// What the device offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetInfo {
    /// The MAC address (`VIRTIO_NET_F_MAC`; else the one given to
    /// [`Net::open`]).
    pub mac: [u8; 6],
    /// The MTU (`VIRTIO_NET_F_MTU`, at most the buffers' 1500; else 1500).
    pub mtu: u16,
    /// The link was up at bring-up (always true without
    /// `VIRTIO_NET_F_STATUS`).
    pub link_up: bool,
    /// Event indices in use.
    pub event_idx: bool,
    /// Entries in the receive queue.
    pub rx_size: u16,
    /// Entries in the transmit queue.
    pub tx_size: u16,
    /// The agreed feature bits.
    pub features: u64,
}

/// What went through the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes of frames received (without the virtio header).
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Bytes of frames sent.
    pub tx_bytes: u64,
    /// Received buffers dropped: shorter than a header and an Ethernet
    /// header, or longer than the buffer.
    pub rx_dropped: u64,
    /// Frames not sent: larger than a buffer.
    pub tx_dropped: u64,
}

/// A virtio-net device in use.
pub struct Net {
    /// The register window.
    transport: Transport,
    /// The receive half.
    rx: RxRing,
    /// The transmit half.
    tx: TxRing,
    /// What the device offered at bring-up.
    info: NetInfo,
}

impl Net {
    /// Probes and initialises the network device `dev`; `fallback_mac` is
    /// used if the device offers none.
    pub fn open(dev: &GuestDevice, fallback_mac: [u8; 6]) -> Result<Self, NetError> {
        let mut t = Transport::probe(dev, DEVICE_ID_NET)?;
        t.negotiate(wanted_features(), 0)?;
        let rx_size = t.queue_size(RECEIVEQ, QUEUE_SIZE)?;
        let tx_size = t.queue_size(TRANSMITQ, QUEUE_SIZE)?;
        let rx = RxRing::new(RECEIVEQ, rx_size, t.notify_addr())?;
        let tx = TxRing::new(TRANSMITQ, tx_size, t.notify_addr())?;
        let mut net = Self {
            transport: t,
            rx,
            tx,
            info: NetInfo {
                mac: fallback_mac,
                mtu: MTU,
                link_up: false,
                event_idx: false,
                rx_size,
                tx_size,
                features: 0,
            },
        };
        // On failure `net` is dropped, which resets the device: it must
        // not keep buffers that are freed on return.
        net.start()?;
        Ok(net)
    }

    /// Resets the device and brings it up again with fresh rings and every
    /// receive buffer posted (after the device asked for a reset, or after
    /// a hostile test). The driver's memory is kept, so a late device
    /// write cannot land in memory the heap has given to someone else;
    /// the counters are kept too.
    pub fn reinit(&mut self) -> Result<(), NetError> {
        self.transport.negotiate(wanted_features(), 0)?;
        self.start()
    }

    /// Programs the negotiated device: queues, configuration, receive
    /// buffers, DRIVER_OK.
    fn start(&mut self) -> Result<(), NetError> {
        let t = &mut self.transport;
        let (rx_size, tx_size) = (self.info.rx_size, self.info.tx_size);
        if t.queue_size(RECEIVEQ, rx_size)? != rx_size {
            return Err(TransportError::NoQueue(RECEIVEQ).into());
        }
        if t.queue_size(TRANSMITQ, tx_size)? != tx_size {
            return Err(TransportError::NoQueue(TRANSMITQ).into());
        }
        let event_idx = t.has(VIRTIO_F_EVENT_IDX);
        self.rx.restart(event_idx).map_err(NetError::Queue)?;
        self.tx.restart(event_idx);
        t.setup_queue(RECEIVEQ, rx_size, self.rx.queue.addrs());
        t.setup_queue(TRANSMITQ, tx_size, self.tx.queue.addrs());
        // mac[0..6] and status, then max_virtqueue_pairs and mtu.
        let head = t.config_u64(0).to_le_bytes();
        if t.has(VIRTIO_NET_F_MAC) {
            self.info.mac.copy_from_slice(&head[..6]);
        }
        let status = u16::from_le_bytes([head[6], head[7]]);
        self.info.mtu = if t.has(VIRTIO_NET_F_MTU) {
            ((t.config_u32(CONFIG_MTU_OFFSET) >> 16) as u16).clamp(MIN_MTU, MTU)
        } else {
            MTU
        };
        self.info.link_up = !t.has(VIRTIO_NET_F_STATUS) || status & VIRTIO_NET_S_LINK_UP != 0;
        self.info.event_idx = event_idx;
        self.info.features = t.features();
        t.driver_ok()?;
        self.rx.queue.kick();
        Ok(())
    }

    /// What the device offers.
    pub fn info(&self) -> NetInfo {
        self.info
    }

    /// What went through the device so far.
    pub fn counters(&self) -> NetCounters {
        NetCounters {
            rx_frames: self.rx.frames,
            rx_bytes: self.rx.bytes,
            tx_frames: self.tx.frames,
            tx_bytes: self.tx.bytes,
            rx_dropped: self.rx.dropped,
            tx_dropped: self.tx.dropped,
        }
    }

    /// Register accesses made so far.
    pub fn accesses(&self) -> u64 {
        self.transport.accesses()
    }

    /// The port the device interrupts on.
    pub fn irq_port(&self) -> u32 {
        self.transport.irq_port()
    }

    /// The ring error that stopped the driver, if any.
    pub fn broken(&self) -> Option<QueueError> {
        self.rx.broken.or(self.tx.broken)
    }

    /// True if the transmit queue was found full and no buffer has come
    /// back since (then received frames wait: their replies need room).
    pub fn starved(&self) -> bool {
        self.tx.starved
    }

    /// True if [`Net::take_frame`] or [`Net::take_tx`] has something new to
    /// give: a received frame (unless the transmit queue is starved), or
    /// returned buffers the driver is short of.
    pub fn pending(&self) -> bool {
        if self.broken().is_some() {
            return false;
        }
        if self.tx.starved {
            self.tx.queue.has_used()
        } else {
            self.rx.queue.has_used()
        }
    }

    /// Takes the next received frame, and a transmit buffer for a reply;
    /// `None` if no frame came or no transmit buffer is free. The receive
    /// buffer goes back to the device when its [`RxFrame`] is dropped.
    pub fn take_frame(&mut self) -> Option<(RxFrame<'_>, TxFrame<'_>)> {
        rings::take_pair(&mut self.rx, &mut self.tx)
    }

    /// Takes the next received frame alone (a workload that reads frames
    /// itself, bypassing the stack).
    pub fn take_rx(&mut self) -> Option<RxFrame<'_>> {
        self.rx.take()
    }

    /// A transmit buffer for one frame, if one is free.
    pub fn take_tx(&mut self) -> Option<TxFrame<'_>> {
        self.tx.take()
    }

    /// The register window (to read the device status).
    pub fn transport(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// The transmit queue, for a driver that writes its rings raw (the
    /// hostile workload): [`Net::reinit`] afterwards.
    pub fn tx_queue(&mut self) -> &mut VirtQueue {
        &mut self.tx.queue
    }

    /// Publishes re-posted receive buffers and added frames, ringing the
    /// doorbells the device asked for.
    pub fn flush(&mut self) {
        if self.rx.broken.is_none() {
            self.rx.queue.kick();
            self.rx.unkicked = 0;
        }
        if self.tx.broken.is_none() {
            self.tx.queue.kick();
            self.tx.unkicked = 0;
        }
    }
}

impl Waitable for Net {
    fn ready(&self) -> bool {
        self.pending()
    }

    fn arm(&mut self) -> bool {
        if self.broken().is_some() {
            return false;
        }
        if self.tx.starved {
            self.tx.queue.arm()
        } else {
            self.rx.queue.arm()
        }
    }

    fn disarm(&mut self) {
        self.rx.queue.disarm();
        self.tx.queue.disarm();
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // The device writes received frames into posted buffers until it
        // is reset; they are freed right after this.
        self.transport.reset();
    }
}

/// The features this driver asks for.
fn wanted_features() -> u64 {
    feature(VIRTIO_F_EVENT_IDX)
        | feature(VIRTIO_NET_F_MAC)
        | feature(VIRTIO_NET_F_STATUS)
        | feature(VIRTIO_NET_F_MTU)
}
