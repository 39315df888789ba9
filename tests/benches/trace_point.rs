//! What one trace point costs ([`protocol::trace::TraceRing::emit`]), with
//! no session on and with one on, on this machine's host CPU (guest ring
//! 3 runs natively here, so the guest's and Domain-0's points cost the
//! same).
//!
//! Run: `cargo bench -p tests --bench trace_point`. Medians over 9 runs
//! of 1,000,000 points each (a ring of that many records, so none drops).

use protocol::trace::{Party, Step, TraceRing, HEADER_BYTES};
use std::hint::black_box;
use std::time::Instant;

const POINTS: u32 = 1_000_000;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Nanoseconds per point of `POINTS` points into `ring`.
fn per_point(ring: &TraceRing) -> f64 {
    let start = Instant::now();
    for i in 0..POINTS {
        black_box(ring).emit(Party::Guest, Step::Built, 1, black_box(i), [7, 0]);
    }
    start.elapsed().as_nanos() as f64 / f64::from(POINTS)
}

fn main() {
    let bytes = HEADER_BYTES as u64 + u64::from(POINTS) * 32;
    let ring = TraceRing::leak(bytes);
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for session in 1..=9 {
        off.push(per_point(ring));
        ring.begin(session);
        on.push(per_point(ring));
        ring.end();
        let kept = ring.collect(session, Party::Guest);
        assert_eq!(kept.records.len(), POINTS as usize);
    }
    println!(
        "trace point: {:.2} ns with no session on, {:.1} ns with one on (median of 9 runs of {POINTS})",
        median(&mut off),
        median(&mut on)
    );
}
