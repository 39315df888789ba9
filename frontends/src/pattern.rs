//! The data pattern written across a disk and checked when read back:
//! [`protocol::pattern`], shared with the host so tests can check the image
//! afterwards. Every 8-byte word encodes its own disk offset and the run's
//! seed, so data that lands at the wrong place, or stale data from an
//! earlier run, reads back as a mismatch.

use protocol::pattern::word;
use protocol::virtio::blk::SECTOR_SIZE;

/// Fills `buf` with the pattern of the sectors from `first_sector` on.
pub fn fill(buf: &mut [u8], first_sector: u64, seed: u64) {
    protocol::pattern::fill(buf, first_sector * SECTOR_SIZE, seed);
}

/// The outcome of comparing a buffer with the pattern.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mismatches {
    /// Bytes that differ.
    pub bytes: u64,
    /// The first sector with a difference.
    pub first_sector: Option<u64>,
}

/// Compares `buf` (whole sectors) with the pattern of the sectors from
/// `first_sector` on, a word at a time (the same count as
/// [`protocol::pattern::mismatches`], faster).
pub fn verify(buf: &[u8], first_sector: u64, seed: u64) -> Mismatches {
    let mut out = Mismatches::default();
    let start = first_sector * SECTOR_SIZE;
    for (i, bytes) in buf.chunks_exact(8).enumerate() {
        let offset = start + 8 * i as u64;
        let mut got = [0u8; 8];
        got.copy_from_slice(bytes);
        let diff = u64::from_le_bytes(got) ^ word(offset, seed);
        if diff != 0 {
            let differ = diff.to_le_bytes().iter().filter(|&&b| b != 0).count();
            out.bytes += differ as u64;
            out.first_sector.get_or_insert(offset / SECTOR_SIZE);
        }
    }
    out
}
