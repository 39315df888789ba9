//! The data pattern written across a disk and checked when read back.
//!
//! Every 512-byte sector starts with its own sector number and the run's
//! seed, and the rest of it is a hash of (seed, sector, word), so a sector
//! that lands at the wrong place, a stale sector from an earlier run and a
//! torn sector all read back as mismatches.

use protocol::virtio::blk::SECTOR_SIZE;

const WORDS: usize = SECTOR_SIZE as usize / 8;

fn mix(mut z: u64) -> u64 {
    // splitmix64's finaliser.
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn word(seed: u64, sector: u64, w: usize) -> u64 {
    match w {
        0 => sector,
        1 => seed,
        _ => mix(seed ^ sector.wrapping_mul(WORDS as u64).wrapping_add(w as u64)),
    }
}

/// Fills `buf` (whole sectors) with the pattern of the sectors from
/// `first_sector` on.
pub fn fill(buf: &mut [u8], first_sector: u64, seed: u64) {
    for (i, sector) in buf.chunks_exact_mut(SECTOR_SIZE as usize).enumerate() {
        let s = first_sector + i as u64;
        for (w, bytes) in sector.chunks_exact_mut(8).enumerate() {
            bytes.copy_from_slice(&word(seed, s, w).to_le_bytes());
        }
    }
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
/// `first_sector` on.
pub fn verify(buf: &[u8], first_sector: u64, seed: u64) -> Mismatches {
    let mut out = Mismatches::default();
    for (i, sector) in buf.chunks_exact(SECTOR_SIZE as usize).enumerate() {
        let s = first_sector + i as u64;
        for (w, bytes) in sector.chunks_exact(8).enumerate() {
            let expected = word(seed, s, w).to_le_bytes();
            let differ = bytes
                .iter()
                .zip(expected)
                .filter(|(a, b)| **a != *b)
                .count();
            if differ > 0 {
                out.bytes += differ as u64;
                out.first_sector.get_or_insert(s);
            }
        }
    }
    out
}
