//! virtio-blk (virtio 1.2, section 5.2).
//!
//! One request is one descriptor chain:
//!
//! ```text
//! device-readable   RequestHeader (16 bytes)
//!                   data (OUT: the sectors to write)
//! device-writable   data (IN: room for the sectors read; GET_ID: 20 bytes)
//!                   status (1 byte, the last byte of the chain)
//! ```
//!
//! The split between descriptors is free: a device must not assume that
//! the header, the data or the status sit in descriptors of their own.
//! Offsets and lengths are in [`SECTOR_SIZE`]-byte sectors regardless of
//! the disk's own block size.

/// Feature bit: `size_max` in the configuration is valid.
pub const VIRTIO_BLK_F_SIZE_MAX: u32 = 1;
/// Feature bit: `seg_max` in the configuration is valid.
pub const VIRTIO_BLK_F_SEG_MAX: u32 = 2;
/// Feature bit: `geometry` in the configuration is valid.
pub const VIRTIO_BLK_F_GEOMETRY: u32 = 4;
/// Feature bit: the disk is read-only; writes fail.
pub const VIRTIO_BLK_F_RO: u32 = 5;
/// Feature bit: `blk_size` in the configuration is valid.
pub const VIRTIO_BLK_F_BLK_SIZE: u32 = 6;
/// Feature bit: the device accepts [`T_FLUSH`] (it has a write cache).
pub const VIRTIO_BLK_F_FLUSH: u32 = 9;
/// Feature bit: `topology` in the configuration is valid.
pub const VIRTIO_BLK_F_TOPOLOGY: u32 = 10;
/// Feature bit: the driver may switch the cache mode through `writeback`.
pub const VIRTIO_BLK_F_CONFIG_WCE: u32 = 11;
/// Feature bit: more than one request queue (`num_queues`).
pub const VIRTIO_BLK_F_MQ: u32 = 12;
/// Feature bit: discard requests.
pub const VIRTIO_BLK_F_DISCARD: u32 = 13;
/// Feature bit: write-zeroes requests.
pub const VIRTIO_BLK_F_WRITE_ZEROES: u32 = 14;

/// Request type: read sectors into the device-writable data.
pub const T_IN: u32 = 0;
/// Request type: write the device-readable data to sectors.
pub const T_OUT: u32 = 1;
/// Request type: flush the write cache to stable storage.
pub const T_FLUSH: u32 = 4;
/// Request type: return the device's id string ([`ID_BYTES`] bytes).
pub const T_GET_ID: u32 = 8;
/// Request type: discard sectors.
pub const T_DISCARD: u32 = 11;
/// Request type: write zeroes to sectors.
pub const T_WRITE_ZEROES: u32 = 13;

/// Status byte: success.
pub const S_OK: u8 = 0;
/// Status byte: the request failed (I/O error, out of range, read-only...).
pub const S_IOERR: u8 = 1;
/// Status byte: the request type is not supported.
pub const S_UNSUPP: u8 = 2;

/// Bytes in a virtio-blk sector (the unit of `sector` and `capacity`).
pub const SECTOR_SIZE: u64 = 512;
/// Bytes of the id string a [`T_GET_ID`] request returns (NUL-padded, not
/// necessarily NUL-terminated).
pub const ID_BYTES: usize = 20;

/// The device-readable header that starts every request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RequestHeader {
    /// `T_*` request type.
    pub kind: u32,
    /// Reserved (legacy I/O priority); ignored.
    pub reserved: u32,
    /// First sector, for [`T_IN`] and [`T_OUT`]; 0 otherwise.
    pub sector: u64,
}

/// Bytes of a [`RequestHeader`].
pub const HEADER_SIZE: usize = 16;

impl RequestHeader {
    /// Decodes a header from its 16 little-endian bytes.
    pub fn from_bytes(b: &[u8; HEADER_SIZE]) -> Self {
        Self {
            kind: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            reserved: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            sector: u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]),
        }
    }

    /// Encodes the header as its 16 little-endian bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(&self.kind.to_le_bytes());
        b[4..8].copy_from_slice(&self.reserved.to_le_bytes());
        b[8..16].copy_from_slice(&self.sector.to_le_bytes());
        b
    }
}

/// Disk geometry (legacy, with [`VIRTIO_BLK_F_GEOMETRY`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Geometry {
    /// Cylinders.
    pub cylinders: u16,
    /// Heads.
    pub heads: u8,
    /// Sectors per track.
    pub sectors: u8,
}

/// Optimal I/O alignment hints (with [`VIRTIO_BLK_F_TOPOLOGY`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Topology {
    /// log2 of logical blocks per physical block.
    pub physical_block_exp: u8,
    /// Offset of the first aligned logical block.
    pub alignment_offset: u8,
    /// Suggested minimum I/O size, in blocks.
    pub min_io_size: u16,
    /// Optimal (suggested maximum) I/O size, in blocks.
    pub opt_io_size: u32,
}

/// The virtio-blk configuration space, at [`super::mmio::CONFIG`].
/// Fields are valid only with their feature bit, except `capacity`.
///
/// The wire layout is 60 bytes with `capacity` only 4-byte aligned, hence
/// `packed(4)`: copy fields out instead of borrowing them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, packed(4))]
pub struct Config {
    /// Disk size in [`SECTOR_SIZE`]-byte sectors.
    pub capacity: u64,
    /// Largest single data segment, in bytes ([`VIRTIO_BLK_F_SIZE_MAX`]).
    pub size_max: u32,
    /// Most data segments in one request ([`VIRTIO_BLK_F_SEG_MAX`]).
    pub seg_max: u32,
    /// Legacy geometry ([`VIRTIO_BLK_F_GEOMETRY`]).
    pub geometry: Geometry,
    /// The disk's logical block size ([`VIRTIO_BLK_F_BLK_SIZE`]).
    pub blk_size: u32,
    /// Alignment hints ([`VIRTIO_BLK_F_TOPOLOGY`]).
    pub topology: Topology,
    /// Cache mode: 1 write-back, 0 write-through
    /// ([`VIRTIO_BLK_F_CONFIG_WCE`]).
    pub writeback: u8,
    /// Reserved.
    pub unused0: u8,
    /// Number of request queues ([`VIRTIO_BLK_F_MQ`]).
    pub num_queues: u16,
    /// Largest discard, in sectors ([`VIRTIO_BLK_F_DISCARD`]).
    pub max_discard_sectors: u32,
    /// Most discard segments in one request.
    pub max_discard_seg: u32,
    /// Discard alignment, in sectors.
    pub discard_sector_alignment: u32,
    /// Largest write-zeroes, in sectors ([`VIRTIO_BLK_F_WRITE_ZEROES`]).
    pub max_write_zeroes_sectors: u32,
    /// Most write-zeroes segments in one request.
    pub max_write_zeroes_seg: u32,
    /// Whether write-zeroes may deallocate sectors.
    pub write_zeroes_may_unmap: u8,
    /// Reserved.
    pub unused1: [u8; 3],
}

/// Bytes of [`Config`].
pub const CONFIG_SIZE: usize = 60;
/// Offset of [`Config::capacity`] in the configuration space.
pub const CONFIG_CAPACITY_OFFSET: usize = 0;
/// Offset of [`Config::seg_max`] in the configuration space.
pub const CONFIG_SEG_MAX_OFFSET: usize = 12;
/// Offset of [`Config::blk_size`] in the configuration space.
pub const CONFIG_BLK_SIZE_OFFSET: usize = 20;

impl Config {
    /// Encodes the configuration space as its little-endian bytes.
    pub fn to_bytes(&self) -> [u8; CONFIG_SIZE] {
        let mut b = [0u8; CONFIG_SIZE];
        b[0..8].copy_from_slice(&self.capacity.to_le_bytes());
        b[8..12].copy_from_slice(&self.size_max.to_le_bytes());
        b[12..16].copy_from_slice(&self.seg_max.to_le_bytes());
        b[16..18].copy_from_slice(&self.geometry.cylinders.to_le_bytes());
        b[18] = self.geometry.heads;
        b[19] = self.geometry.sectors;
        b[20..24].copy_from_slice(&self.blk_size.to_le_bytes());
        b[24] = self.topology.physical_block_exp;
        b[25] = self.topology.alignment_offset;
        b[26..28].copy_from_slice(&self.topology.min_io_size.to_le_bytes());
        b[28..32].copy_from_slice(&self.topology.opt_io_size.to_le_bytes());
        b[32] = self.writeback;
        b[33] = self.unused0;
        b[34..36].copy_from_slice(&self.num_queues.to_le_bytes());
        b[36..40].copy_from_slice(&self.max_discard_sectors.to_le_bytes());
        b[40..44].copy_from_slice(&self.max_discard_seg.to_le_bytes());
        b[44..48].copy_from_slice(&self.discard_sector_alignment.to_le_bytes());
        b[48..52].copy_from_slice(&self.max_write_zeroes_sectors.to_le_bytes());
        b[52..56].copy_from_slice(&self.max_write_zeroes_seg.to_le_bytes());
        b[56] = self.write_zeroes_may_unmap;
        b[57..60].copy_from_slice(&self.unused1);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layouts_have_the_wire_sizes_and_offsets() {
        assert_eq!(size_of::<RequestHeader>(), HEADER_SIZE);
        assert_eq!(size_of::<Config>(), CONFIG_SIZE);
        assert_eq!(offset_of!(Config, capacity), CONFIG_CAPACITY_OFFSET);
        assert_eq!(offset_of!(Config, seg_max), CONFIG_SEG_MAX_OFFSET);
        assert_eq!(offset_of!(Config, blk_size), CONFIG_BLK_SIZE_OFFSET);
        assert_eq!(offset_of!(Config, writeback), 32);
        assert_eq!(offset_of!(Config, num_queues), 34);
        assert_eq!(offset_of!(Config, max_write_zeroes_seg), 52);
    }

    #[test]
    fn config_bytes_match_the_struct_offsets() {
        let c = Config {
            capacity: 0x0102_0304_0506_0708,
            seg_max: 126,
            blk_size: 512,
            num_queues: 1,
            ..Config::default()
        };
        let b = c.to_bytes();
        assert_eq!(b[0], 0x08);
        assert_eq!(b[12..16], 126u32.to_le_bytes());
        assert_eq!(b[20..24], 512u32.to_le_bytes());
        assert_eq!(b[34..36], 1u16.to_le_bytes());
    }

    #[test]
    fn header_round_trips() {
        let h = RequestHeader {
            kind: T_OUT,
            reserved: 0,
            sector: 77,
        };
        assert_eq!(RequestHeader::from_bytes(&h.to_bytes()), h);
    }
}
