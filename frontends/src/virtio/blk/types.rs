//! The block driver's public types: requests, completions, what the
//! device offers, and errors.

use protocol::virtio::blk as wire;

use crate::dma::OutOfMemory;
use crate::virtio::mmio::TransportError;
use crate::virtio::queue::QueueError;
use crate::virtio::wait::WaitError;

/// Why a block operation failed (as opposed to completing with an error
/// status, which is a [`Completion`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// The transport failed or the device needs a reset.
    Transport(TransportError),
    /// Out of driver memory.
    Memory(OutOfMemory),
    /// The device broke the used-ring protocol; the driver stopped.
    Queue(QueueError),
    /// No completion before the deadline.
    Timeout,
    /// No free slot or descriptors: reap completions first.
    Busy,
    /// The driver stopped using the device after an error; reset it.
    Stopped,
    /// The data range does not fit in the buffer given.
    BadBuffer,
}

impl From<TransportError> for BlkError {
    fn from(e: TransportError) -> Self {
        Self::Transport(e)
    }
}

impl From<OutOfMemory> for BlkError {
    fn from(e: OutOfMemory) -> Self {
        Self::Memory(e)
    }
}

impl From<WaitError> for BlkError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Timeout => Self::Timeout,
            WaitError::Device(e) => Self::Transport(e),
        }
    }
}

impl core::fmt::Display for BlkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "{e}"),
            Self::Memory(e) => write!(f, "out of memory ({} bytes)", e.0),
            Self::Queue(e) => write!(f, "device broke the used ring: {e:?}"),
            Self::Timeout => write!(f, "timed out"),
            Self::Busy => write!(f, "queue full"),
            Self::Stopped => write!(f, "device stopped after an error"),
            Self::BadBuffer => write!(f, "data range outside its buffer"),
        }
    }
}

/// What the device offers, from its features and configuration space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkInfo {
    /// Disk size in 512-byte sectors.
    pub capacity: u64,
    /// The device offered `VIRTIO_BLK_F_RO`.
    pub read_only: bool,
    /// Flush requests are accepted (`VIRTIO_BLK_F_FLUSH`).
    pub flush: bool,
    /// Most data segments per request (0: not given).
    pub seg_max: u32,
    /// Indirect descriptors in use.
    pub indirect: bool,
    /// Event indices in use.
    pub event_idx: bool,
    /// Entries in the request queue.
    pub queue_size: u16,
}

/// A request type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read sectors into the buffer.
    Read,
    /// Write the buffer to sectors.
    Write,
    /// Flush the write cache.
    Flush,
    /// Read the device id (up to 20 bytes) into the buffer.
    GetId,
}

/// One request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// What to do.
    pub op: Op,
    /// First sector (reads and writes).
    pub sector: u64,
    /// Guest-physical address of the data buffer (unused for flushes).
    pub addr: u64,
    /// Bytes of data (0 for flushes).
    pub len: u32,
    /// The caller's tag, returned in the completion.
    pub token: u64,
}

/// A finished request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The request's token.
    pub token: u64,
    /// The status byte the device wrote (`S_OK`, `S_IOERR`, `S_UNSUPP`;
    /// 0xFF if it wrote none).
    pub status: u8,
    /// The used length the device reported.
    pub used_len: u32,
    /// TSC ticks from submission to harvest.
    pub ticks: u64,
}

impl Completion {
    /// True if the device answered `S_OK`.
    pub fn ok(&self) -> bool {
        self.status == wire::S_OK
    }
}
