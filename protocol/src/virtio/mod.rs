//! Virtio 1.x layouts: the bytes a virtio frontend (in a guest) and a
//! virtio backend (in Domain-0 or in the core's process) both read and
//! write.
//!
//! * [`mmio`]: the virtio-mmio (version 2, "modern") register file, device
//!   ids, the device-status bits and the transport-level feature bits;
//! * [`queue`]: the split virtqueue: descriptor table, available ring, used
//!   ring, the event-index fields and their offsets;
//! * [`blk`]: virtio-blk request header, status codes, feature bits and
//!   configuration space;
//! * [`console`]: virtio-console configuration space, feature bits and
//!   queue numbers;
//! * [`net`]: virtio-net header, configuration space, feature bits and
//!   queue numbers, and the frame fields a switch reads;
//! * [`saved`]: a device's state as it outlives its backend (Domain-0's
//!   restart).
//!
//! Every multi-byte field is little-endian on the wire (virtio 1.x has no
//! legacy big-endian mode); the structures are `#[repr(C)]` with fixed
//! sizes that the unit tests pin down, and nothing here allocates.
//! The constants follow the virtio 1.2 specification; they are written
//! out by hand so that this crate keeps no dependencies that need `std`.

pub mod blk;
pub mod console;
pub mod mmio;
pub mod net;
pub mod queue;
pub mod saved;

/// Builds a feature mask with bit `bit` set (feature bits are numbered
/// 0..64 across the two 32-bit feature words of the transport).
pub const fn feature(bit: u32) -> u64 {
    1u64 << bit
}

/// Transport-independent feature bits (virtio 1.2, section 6 "Reserved
/// Feature Bits"), given as bit numbers.
pub mod features {
    /// The device accepts descriptors with
    /// [`super::queue::DESC_F_INDIRECT`] (tables of descriptors).
    pub const VIRTIO_F_INDIRECT_DESC: u32 = 28;
    /// Both sides use the `used_event` / `avail_event` fields to suppress
    /// notifications instead of the ring flags.
    pub const VIRTIO_F_EVENT_IDX: u32 = 29;
    /// The device complies with virtio 1.x (not legacy); required by the
    /// version-2 mmio transport.
    pub const VIRTIO_F_VERSION_1: u32 = 32;
    /// The device sits behind an IOMMU or restricted DMA window.
    pub const VIRTIO_F_ACCESS_PLATFORM: u32 = 33;
    /// The packed virtqueue layout (not implemented here).
    pub const VIRTIO_F_RING_PACKED: u32 = 34;
    /// Buffers are used in the order they are made available.
    pub const VIRTIO_F_IN_ORDER: u32 = 35;
    /// Memory accesses need platform (not SMP) barriers.
    pub const VIRTIO_F_ORDER_PLATFORM: u32 = 36;
    /// The driver passes extra data with each queue notification.
    pub const VIRTIO_F_NOTIFICATION_DATA: u32 = 38;
    /// Individual queues can be reset.
    pub const VIRTIO_F_RING_RESET: u32 = 40;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_masks_span_both_words() {
        assert_eq!(feature(features::VIRTIO_F_EVENT_IDX), 0x2000_0000);
        assert_eq!(feature(features::VIRTIO_F_VERSION_1), 0x1_0000_0000);
    }
}
