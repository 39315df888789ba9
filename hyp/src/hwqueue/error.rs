//! What can go wrong making or driving a hardware queue.

/// Everything that can go wrong with a [`super::HardwareQueue`].
#[derive(Debug, thiserror::Error)]
pub enum HwQueueError {
    /// The ring size is not a power of two in `1..=32768`.
    #[error("hardware queue: {0} entries; want a power of two from 1 to 32768")]
    BadEntries(u32),
    /// An address or length the kernel needs page-aligned is not.
    #[error("hardware queue: {what} {value:#x} is not page-aligned")]
    Unaligned {
        /// Which value.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// The ring region cannot hold the rings and the SQE array.
    #[error("hardware queue: ring region of {have:#x} bytes, the rings need {need:#x}")]
    RegionTooSmall {
        /// Bytes needed.
        need: u64,
        /// Bytes given.
        have: u64,
    },
    /// A fixed buffer is empty, too large for the kernel (1 GiB), or wraps.
    #[error("hardware queue: fixed buffer {slot}: {why}")]
    BadBuffer {
        /// The slot.
        slot: usize,
        /// What is wrong.
        why: &'static str,
    },
    /// More fixed-buffer slots than the layout describes.
    #[error("hardware queue: {0} fixed-buffer slots, at most {max}", max = protocol::hwqueue::MAX_FIXED_BUFFERS)]
    TooManyBuffers(usize),
    /// The kernel placed a ring field outside the room reserved for it.
    #[error("hardware queue: kernel ring layout does not fit: {0}")]
    KernelLayout(String),
    /// A system call failed.
    #[error("hardware queue: {op}: {source}")]
    Sys {
        /// The call (and what it was for).
        op: &'static str,
        /// The error the kernel returned.
        source: std::io::Error,
    },
}

/// Maps an I/O error into [`HwQueueError::Sys`] naming the call.
pub(crate) fn sys(op: &'static str) -> impl FnOnce(std::io::Error) -> HwQueueError {
    move |source| HwQueueError::Sys { op, source }
}
