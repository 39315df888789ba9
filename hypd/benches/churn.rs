//! Domain churn: `CHURN_CYCLES` (default 1000) creates and destroys of a
//! guest with a disk served by Domain-0, through `xl` against a `hypd` of
//! its own, half of them destroyed in the middle of their I/O. Prints the
//! time of a cycle and the daemon's descriptors, threads and memory after
//! the warm-up and at the end.
//!
//! Run: `cargo bench -p hypd --bench churn` (builds `xl` first:
//! `cargo build --release -p toolstack`).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;

fn main() {
    let cycles = std::env::var("CHURN_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let d = Daemon::start("churn-bench");
    let figures = churn(&d, cycles, cycles / 10);
    let ms = &figures.cycle_ms;
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q) as usize];
    println!("churn: {cycles} cycles of create + (power off | destroy) with a disk");
    println!(
        "cycle ms: median {:.1}, p10 {:.1}, p90 {:.1}, max {:.1}",
        at(0.5),
        at(0.1),
        at(0.9),
        at(1.0)
    );
    for (when, f) in [("after warm-up", figures.warm), ("at the end", figures.end)] {
        println!(
            "hypd {when}: {} fds, {} threads, {} KiB private RSS, {} KiB shared RSS",
            f.fds, f.threads, f.private_kib, f.shmem_kib
        );
    }
}
