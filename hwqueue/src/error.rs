//! What can go wrong making, driving or closing a hardware queue.

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
    /// The kernel gave the rings other sizes than asked for.
    #[error("hardware queue: asked the kernel for {asked_sq}/{asked_cq} SQ/CQ entries, got {got_sq}/{got_cq}")]
    KernelEntries {
        /// SQ entries asked for.
        asked_sq: u32,
        /// CQ entries asked for.
        asked_cq: u32,
        /// SQ entries the kernel made.
        got_sq: u32,
        /// CQ entries the kernel made.
        got_cq: u32,
    },
    /// The kernel placed a ring field outside the room reserved for it.
    #[error("hardware queue: the kernel's {field} ends at {end:#x}, past the {reserved:#x} bytes reserved")]
    KernelLayout {
        /// The field (`sq head`, `cqes`, ...).
        field: &'static str,
        /// Where it ends, from the ring area's start.
        end: u64,
        /// Bytes reserved for the ring area.
        reserved: u64,
    },
    /// The kernel placed a ring field at an offset it cannot start at.
    #[error("hardware queue: the kernel's {field} at {offset:#x} is misaligned")]
    KernelMisaligned {
        /// The field.
        field: &'static str,
        /// Its offset from the ring area's start.
        offset: u32,
    },
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
