//! The body of an HTTP `GET /bytes/N`, as the guests serve it and the
//! network benchmark serves and checks it: byte `i` is
//! `STREAM_PATTERN[i % 64]`, so either end can check every byte it
//! receives, wherever a read starts.

/// The repeating body: 62 letters and digits, `+` and a newline.
pub const STREAM_PATTERN: &[u8; 64] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+\n";

/// Fills `out` with the body's bytes from offset `pos`.
pub fn fill(out: &mut [u8], pos: u64) {
    let mut phase = (pos % STREAM_PATTERN.len() as u64) as usize;
    let mut at = 0;
    while at < out.len() {
        let n = (STREAM_PATTERN.len() - phase).min(out.len() - at);
        out[at..at + n].copy_from_slice(&STREAM_PATTERN[phase..phase + n]);
        at += n;
        phase = 0;
    }
}

/// Counts the bytes of `data` that differ from the body at offset `pos`.
pub fn mismatches(data: &[u8], pos: u64) -> u64 {
    let mut phase = (pos % STREAM_PATTERN.len() as u64) as usize;
    let mut at = 0;
    let mut bad = 0;
    while at < data.len() {
        let n = (STREAM_PATTERN.len() - phase).min(data.len() - at);
        let (got, want) = (&data[at..at + n], &STREAM_PATTERN[phase..phase + n]);
        if got != want {
            bad += got.iter().zip(want).filter(|(a, b)| a != b).count() as u64;
        }
        at += n;
        phase = 0;
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_offset_matches_the_whole_body() {
        let mut whole = [0u8; 300];
        fill(&mut whole, 0);
        let mut part = [0u8; 100];
        fill(&mut part, 77);
        assert_eq!(part[..], whole[77..177]);
        assert_eq!(mismatches(&whole[77..177], 77), 0);
        assert_eq!(mismatches(&whole[70..], 71), 230, "a shifted slice fails");
        part[5] ^= 1;
        assert_eq!(mismatches(&part, 77), 1);
    }
}
