//! Time from the TSC, whose frequency the core puts in the boot info.

use core::sync::atomic::{AtomicU64, Ordering};
use protocol::boot::BootInfo;

static TSC_KHZ: AtomicU64 = AtomicU64::new(1_000_000);

pub(crate) fn init(boot: &BootInfo) {
    if boot.tsc_khz != 0 {
        TSC_KHZ.store(boot.tsc_khz, Ordering::Relaxed);
    }
}

/// Reads the time-stamp counter (allowed in ring 3), the clock trace
/// records carry too.
#[inline(always)]
pub fn rdtsc() -> u64 {
    protocol::trace::rdtsc()
}

/// TSC frequency in kHz.
pub fn tsc_khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed)
}

/// Converts TSC ticks to nanoseconds.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    (ticks as u128 * 1_000_000 / tsc_khz() as u128) as u64
}

/// Converts nanoseconds to TSC ticks.
pub fn ns_to_ticks(ns: u64) -> u64 {
    (ns as u128 * tsc_khz() as u128 / 1_000_000) as u64
}
