//! The split virtqueue (virtio 1.2, section 2.7).
//!
//! A queue of size `N` (a power of two, at most
//! [`super::mmio::MAX_QUEUE_SIZE`]) is three areas in the driver's RAM,
//! each at an address the driver gives the device:
//!
//! ```text
//! descriptor table  N x Descriptor (16 bytes), 16-byte aligned
//! available ring    flags u16, idx u16, ring[N] u16, used_event u16   (2-aligned)
//! used ring         flags u16, idx u16, ring[N] UsedElem, avail_event u16 (4-aligned)
//! ```
//!
//! The driver fills descriptors, writes the head index of each chain to
//! `avail.ring[avail.idx % N]` and then advances `avail.idx`. The device
//! answers by writing a [`UsedElem`] to `used.ring[used.idx % N]` and then
//! advancing `used.idx`. Both indices free-run modulo 2^16.
//!
//! With `VIRTIO_F_EVENT_IDX`, `used_event` (written by the driver) is the
//! used index after which the driver wants an interrupt, and `avail_event`
//! (written by the device) is the available index after which the device
//! wants a notification; [`vring_need_event`] decides. Without it, the
//! ring `flags` fields ([`AVAIL_F_NO_INTERRUPT`], [`USED_F_NO_NOTIFY`]) are
//! coarse hints instead.

/// Descriptor flag: the chain continues with descriptor `next`.
pub const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the buffer is device-writable (otherwise device-readable).
pub const DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer is a table of descriptors (with
/// `VIRTIO_F_INDIRECT_DESC`); `len` is the table's size in bytes.
pub const DESC_F_INDIRECT: u16 = 4;

/// Available-ring flag: the driver asks for no interrupts (only without
/// `VIRTIO_F_EVENT_IDX`).
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used-ring flag: the device asks for no notifications (only without
/// `VIRTIO_F_EVENT_IDX`).
pub const USED_F_NO_NOTIFY: u16 = 1;

/// Required alignment of the descriptor table (and of indirect tables'
/// length: a whole number of descriptors).
pub const DESC_ALIGN: u64 = 16;
/// Required alignment of the available ring.
pub const AVAIL_ALIGN: u64 = 2;
/// Required alignment of the used ring.
pub const USED_ALIGN: u64 = 4;

/// One entry of a descriptor table: a buffer in the driver's RAM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Descriptor {
    /// Guest-physical address of the buffer.
    pub addr: u64,
    /// Length of the buffer in bytes.
    pub len: u32,
    /// `DESC_F_*` bits.
    pub flags: u16,
    /// Index of the next descriptor when [`DESC_F_NEXT`] is set.
    pub next: u16,
}

/// Bytes of one [`Descriptor`].
pub const DESC_SIZE: u64 = 16;

impl Descriptor {
    /// Decodes a descriptor from its 16 little-endian bytes.
    pub fn from_bytes(b: &[u8; 16]) -> Self {
        Self {
            addr: u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            len: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            flags: u16::from_le_bytes([b[12], b[13]]),
            next: u16::from_le_bytes([b[14], b[15]]),
        }
    }

    /// Encodes the descriptor as its 16 little-endian bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..14].copy_from_slice(&self.flags.to_le_bytes());
        b[14..16].copy_from_slice(&self.next.to_le_bytes());
        b
    }

    /// True if [`DESC_F_NEXT`] is set.
    pub fn has_next(&self) -> bool {
        self.flags & DESC_F_NEXT != 0
    }

    /// True if [`DESC_F_WRITE`] is set.
    pub fn is_write_only(&self) -> bool {
        self.flags & DESC_F_WRITE != 0
    }

    /// True if [`DESC_F_INDIRECT`] is set.
    pub fn is_indirect(&self) -> bool {
        self.flags & DESC_F_INDIRECT != 0
    }
}

/// One entry of the used ring: a chain the device has finished with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct UsedElem {
    /// Index of the chain's head descriptor (a `u32` for padding reasons).
    pub id: u32,
    /// Bytes the device wrote into the chain's device-writable buffers.
    pub len: u32,
}

/// Bytes of one [`UsedElem`].
pub const USED_ELEM_SIZE: u64 = 8;

impl UsedElem {
    /// Encodes the element as its 8 little-endian bytes.
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0..4].copy_from_slice(&self.id.to_le_bytes());
        b[4..8].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    /// Decodes an element from its 8 little-endian bytes.
    pub fn from_bytes(b: &[u8; 8]) -> Self {
        Self {
            id: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            len: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// Offset of `flags` in either ring.
pub const RING_FLAGS_OFFSET: u64 = 0;
/// Offset of `idx` in either ring.
pub const RING_IDX_OFFSET: u64 = 2;
/// Offset of `ring[0]` in either ring.
pub const RING_ENTRIES_OFFSET: u64 = 4;
/// Bytes of one available-ring entry (a descriptor index).
pub const AVAIL_ELEM_SIZE: u64 = 2;

/// Bytes of the descriptor table of a queue of `size` entries.
pub const fn desc_table_size(size: u16) -> u64 {
    DESC_SIZE * size as u64
}

/// Bytes of the available ring of a queue of `size` entries, `used_event`
/// included.
pub const fn avail_ring_size(size: u16) -> u64 {
    RING_ENTRIES_OFFSET + AVAIL_ELEM_SIZE * size as u64 + 2
}

/// Bytes of the used ring of a queue of `size` entries, `avail_event`
/// included.
pub const fn used_ring_size(size: u16) -> u64 {
    RING_ENTRIES_OFFSET + USED_ELEM_SIZE * size as u64 + 2
}

/// Offset of `avail.ring[slot]` from the start of the available ring.
pub const fn avail_entry_offset(slot: u16) -> u64 {
    RING_ENTRIES_OFFSET + AVAIL_ELEM_SIZE * slot as u64
}

/// Offset of `used.ring[slot]` from the start of the used ring.
pub const fn used_entry_offset(slot: u16) -> u64 {
    RING_ENTRIES_OFFSET + USED_ELEM_SIZE * slot as u64
}

/// Offset of `used_event` (driver-written, after the available ring's
/// entries) from the start of the available ring.
pub const fn used_event_offset(size: u16) -> u64 {
    RING_ENTRIES_OFFSET + AVAIL_ELEM_SIZE * size as u64
}

/// Offset of `avail_event` (device-written, after the used ring's entries)
/// from the start of the used ring.
pub const fn avail_event_offset(size: u16) -> u64 {
    RING_ENTRIES_OFFSET + USED_ELEM_SIZE * size as u64
}

/// True if `size` is a valid split-queue size: a power of two in
/// `1..=MAX_QUEUE_SIZE`.
pub const fn is_valid_size(size: u16) -> bool {
    size != 0 && size <= super::mmio::MAX_QUEUE_SIZE && size.is_power_of_two()
}

/// The event-index test (virtio 1.2, 2.7.10): having moved an index from
/// `old` to `new`, notify the other side if its event index `event` lies in
/// `[old, new)` modulo 2^16, that is if the other side asked to hear about
/// entry `event` and that entry was just published.
pub const fn vring_need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layouts_have_the_wire_sizes() {
        assert_eq!(size_of::<Descriptor>() as u64, DESC_SIZE);
        assert_eq!(size_of::<UsedElem>() as u64, USED_ELEM_SIZE);
        assert_eq!(desc_table_size(256), 4096);
        assert_eq!(avail_ring_size(256), 6 + 512);
        assert_eq!(used_ring_size(256), 6 + 2048);
        assert_eq!(used_event_offset(8), 20);
        assert_eq!(avail_event_offset(8), 68);
    }

    #[test]
    fn descriptor_round_trips_through_bytes() {
        let d = Descriptor {
            addr: 0x1122_3344_5566_7788,
            len: 0x99aa_bbcc,
            flags: DESC_F_NEXT | DESC_F_WRITE,
            next: 0xdeef,
        };
        let b = d.to_bytes();
        assert_eq!(b[0], 0x88, "little-endian");
        assert_eq!(Descriptor::from_bytes(&b), d);
        let u = UsedElem { id: 7, len: 513 };
        assert_eq!(UsedElem::from_bytes(&u.to_bytes()), u);
    }

    #[test]
    fn need_event_follows_the_spec_formula() {
        // The driver wants to hear when entry 5 is used.
        assert!(vring_need_event(5, 6, 5));
        assert!(vring_need_event(5, 10, 0));
        assert!(!vring_need_event(5, 5, 0), "entry 5 not published yet");
        assert!(!vring_need_event(5, 9, 6), "already past it before");
        // Wrap-around.
        assert!(vring_need_event(0xffff, 2, 0xfffe));
        assert!(!vring_need_event(3, 2, 0xfffe));
        // Nothing published: never notify.
        assert!(!vring_need_event(7, 7, 7));
    }

    #[test]
    fn sizes_are_powers_of_two_up_to_the_max() {
        assert!(is_valid_size(1) && is_valid_size(256) && is_valid_size(32768));
        assert!(!is_valid_size(0) && !is_valid_size(3) && !is_valid_size(65535));
    }
}
