//! `xl bench --trace`: after the measured rounds, one more run of each
//! workload in each guest placement with a trace session on
//! ([`crate::trace`]), so the table shows where the microseconds of the
//! path go, step by step, beside the counts. The measured rounds run with
//! tracing off; the traced run's own latency, beside the untraced median,
//! is what tracing costs.

use protocol::control::TraceDump;
use serde::Serialize;

use crate::trace::{analyse, StepStats};

/// Requests each traced run records (the first ones of its run).
pub const TRACED_REQUESTS: u32 = 1000;

/// One placement's traced run of one workload.
#[derive(Clone, Debug, Serialize)]
pub struct TracedPath {
    /// Requests traced.
    pub requests: usize,
    /// Median latency of the traced requests (the run's first ones,
    /// tracing on), µs.
    pub traced_median_us: f64,
    /// Each step: median µs since submit and since the step before.
    pub steps: Vec<StepStats>,
}

/// The traced path of `dump`, or why there is none.
pub fn path(dump: &TraceDump) -> Result<TracedPath, String> {
    let analysis = analyse(dump).map_err(|e| e.to_string())?;
    Ok(TracedPath {
        requests: analysis.requests,
        traced_median_us: analysis.latency.median_us,
        steps: analysis.steps,
    })
}

/// Prints the traced paths of one workload: a row per step, a column per
/// placement, then what tracing cost.
pub fn print(paths: &[(&str, &TracedPath, f64)]) {
    if paths.is_empty() {
        return;
    }
    println!("  traced path, median µs since submit (+ since the step before):");
    print!("  {:<24}", "step");
    for (name, _, _) in paths {
        print!(" {:>22}", name);
    }
    println!();
    for step in protocol::trace::STEPS {
        let cells: Vec<Option<&StepStats>> = paths
            .iter()
            .map(|(_, p, _)| p.steps.iter().find(|s| s.step == step))
            .collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        print!("  {:<24}", step.describe());
        for cell in cells {
            match cell {
                Some(s) => print!(" {:>12.1} (+{:>7.1})", s.median_us, s.median_gap_us),
                None => print!(" {:>22}", "-"),
            }
        }
        println!();
    }
    for (name, path, untraced) in paths {
        println!(
            "  {name}: the run's first {} requests traced, median {:.1} µs (the rounds' median, untraced: {:.1} µs)",
            path.requests, path.traced_median_us, untraced
        );
    }
}
