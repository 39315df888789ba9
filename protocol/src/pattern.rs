//! The verification pattern a guest writes across its disk, shared so the
//! host can check the image afterwards.
//!
//! Every 8-byte word encodes its own disk offset and a seed, so data that
//! lands at the wrong offset, or stale data from an earlier run, is caught.

/// The 8-byte word at disk offset `offset` (a multiple of 8).
pub fn word(offset: u64, seed: u64) -> u64 {
    (offset ^ seed.rotate_left(17)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed
}

/// Fills `buf` with the pattern for the bytes starting at disk offset
/// `start` (a multiple of 8).
pub fn fill(buf: &mut [u8], start: u64, seed: u64) {
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let bytes = word(start + 8 * i as u64, seed).to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

/// Counts the bytes of `buf` (from disk offset `start`) that differ from
/// the pattern.
pub fn mismatches(buf: &[u8], start: u64, seed: u64) -> u64 {
    buf.chunks(8)
        .enumerate()
        .map(|(i, chunk)| {
            let expected = word(start + 8 * i as u64, seed).to_le_bytes();
            chunk.iter().zip(expected).filter(|(a, b)| *a != b).count() as u64
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn pattern_differs_by_offset_and_seed_and_checks_itself() {
        let mut a = [0u8; 64];
        super::fill(&mut a, 4096, 7);
        assert_eq!(super::mismatches(&a, 4096, 7), 0);
        assert!(
            super::mismatches(&a, 4096 + 8, 7) > 0,
            "shifted data is caught"
        );
        assert!(super::mismatches(&a, 4096, 8) > 0, "another seed is caught");
        assert_ne!(super::word(0, 1), super::word(8, 1));
    }
}
