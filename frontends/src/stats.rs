//! Latency summaries from TSC samples.

use protocol::report::LatencySummary;

/// Sorts `samples` (nanoseconds) and summarises them.
pub fn summarize(samples: &mut [u64]) -> LatencySummary {
    samples.sort_unstable();
    let at = |q: usize| {
        samples
            .get((samples.len().saturating_sub(1)) * q / 100)
            .copied()
            .unwrap_or(0)
    };
    LatencySummary {
        samples: samples.len().min(u32::MAX as usize) as u32,
        min_ns: at(0),
        median_ns: at(50),
        p99_ns: at(99),
        max_ns: at(100),
    }
}

/// A small fast pseudo-random generator (xorshift64*), for benchmark
/// offsets.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}
