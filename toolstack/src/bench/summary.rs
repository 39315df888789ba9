//! The benchmark's result: medians over rounds with their spread, ratios,
//! per-request counts and latency histograms; as JSON and as tables.

use protocol::report::{LatencyHistogram, HISTOGRAM_BUCKETS};
use serde::Serialize;
use std::collections::BTreeMap;

use super::options::{BenchOptions, PLACEMENTS};
use super::sample::{median, Counters, Sample, Samples};

/// Everything `xl bench` measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchSummary {
    /// The placements compared.
    pub placements: Vec<&'static str>,
    /// Rounds run.
    pub rounds: usize,
    /// Length of each run, in milliseconds.
    pub run_ms: u64,
    /// Size of the disk image, in MiB.
    pub disk_mib: u64,
    /// True if the image was opened with `O_DIRECT` (`--direct`).
    pub direct: bool,
    /// Lower bounds of the latency histogram buckets, in µs.
    pub histogram_bounds_us: Vec<f64>,
    /// One entry per block workload.
    pub workloads: Vec<WorkloadSummary>,
    /// The network benchmark, if it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net: Option<super::net::NetSummary>,
}

/// One workload in every placement.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadSummary {
    /// The workload's name.
    pub name: &'static str,
    /// Bytes per request.
    pub size: u32,
    /// Requests in flight.
    pub depth: usize,
    /// Writes (true) or reads.
    pub write: bool,
    /// Each write followed by a flush.
    pub flush: bool,
    /// Figures by placement name.
    pub placements: BTreeMap<&'static str, Figures>,
    /// Service VM against host model.
    pub service_vm_over_host: Ratios,
    /// The service VM with each other doorbell against host model, by
    /// placement name (`service-vm-thread`, `service-vm-sqpoll`).
    pub doorbells_over_host: BTreeMap<&'static str, Ratios>,
    /// With `--trace`: the traced run of each guest placement.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub traced: BTreeMap<&'static str, super::traced::TracedPath>,
}

/// Latency and throughput of one placement relative to another.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Ratios {
    /// Median latency ratio (above 1: slower).
    pub latency: f64,
    /// Throughput ratio (below 1: less).
    pub throughput: f64,
}

/// One placement's figures for one workload: medians over rounds.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    /// Median request latency, µs.
    pub median_us: f64,
    /// 99th-percentile latency, µs.
    pub p99_us: f64,
    /// Requests per second.
    pub iops: f64,
    /// Megabytes (10^6 bytes) per second.
    pub mb_s: f64,
    /// Against native.
    pub ratio_to_native: Ratios,
    /// Smallest and largest IOPS over the rounds.
    pub iops_range: [f64; 2],
    /// Each round's figures.
    pub per_round: Vec<Round>,
    /// Counts along the path per request (median over rounds).
    pub counters: Counters,
    /// Latency histogram summed over rounds (see `histogram_bounds_us`).
    pub histogram: Vec<u64>,
}

/// One round's figures.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Round {
    /// Median latency, µs.
    pub median_us: f64,
    /// 99th-percentile latency, µs.
    pub p99_us: f64,
    /// Requests per second.
    pub iops: f64,
    /// Megabytes per second.
    pub mb_s: f64,
}

fn round(s: &Sample) -> Round {
    let seconds = (s.elapsed_ns as f64 / 1e9).max(1e-9);
    Round {
        median_us: s.median_ns as f64 / 1e3,
        p99_us: s.p99_ns as f64 / 1e3,
        iops: s.ops as f64 / seconds,
        mb_s: s.bytes as f64 / seconds / 1e6,
    }
}

fn figures(samples: &[Sample]) -> Figures {
    let rounds: Vec<Round> = samples.iter().map(round).collect();
    let of = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    let per_request: Vec<Counters> = samples
        .iter()
        .map(|s| s.counters.per(s.ops as f64))
        .collect();
    let mut histogram = vec![0u64; HISTOGRAM_BUCKETS];
    for s in samples {
        for (sum, &count) in histogram.iter_mut().zip(&s.histogram.counts) {
            *sum += u64::from(count);
        }
    }
    let iops: Vec<f64> = rounds.iter().map(|r| r.iops).collect();
    Figures {
        median_us: of(|r| r.median_us),
        p99_us: of(|r| r.p99_us),
        iops: of(|r| r.iops),
        mb_s: of(|r| r.mb_s),
        ratio_to_native: Ratios::default(),
        iops_range: [
            iops.iter().copied().fold(f64::INFINITY, f64::min),
            iops.iter().copied().fold(0.0, f64::max),
        ],
        per_round: rounds,
        counters: Counters::median(&per_request),
        histogram,
    }
}

fn ratios(of: &Figures, to: &Figures) -> Ratios {
    Ratios {
        latency: of.median_us / to.median_us.max(1e-9),
        throughput: of.iops / to.iops.max(1e-9),
    }
}

/// Medians, ratios and counts of every workload.
pub fn summarize(options: &BenchOptions, samples: &Samples) -> BenchSummary {
    let workloads = samples
        .iter()
        .map(|(w, by_placement)| {
            let mut all: Vec<Figures> = by_placement.iter().map(|s| figures(s)).collect();
            for i in 0..all.len() {
                all[i].ratio_to_native = ratios(&all[i], &all[0]);
            }
            let service_vm_over_host = ratios(&all[2], &all[1]);
            let doorbells_over_host = (3..all.len())
                .map(|i| (PLACEMENTS[i], ratios(&all[i], &all[1])))
                .collect();
            WorkloadSummary {
                name: w.name,
                size: w.size,
                depth: w.depth,
                write: w.write,
                flush: w.flush,
                placements: PLACEMENTS.iter().copied().zip(all).collect(),
                service_vm_over_host,
                doorbells_over_host,
                traced: BTreeMap::new(),
            }
        })
        .collect();
    BenchSummary {
        placements: PLACEMENTS.to_vec(),
        rounds: options.rounds,
        run_ms: options.run_ms,
        disk_mib: options.disk_mib,
        direct: options.direct,
        histogram_bounds_us: (0..HISTOGRAM_BUCKETS)
            .map(|i| LatencyHistogram::lower_bound_ns(i) as f64 / 1e3)
            .collect(),
        workloads,
        net: None,
    }
}

/// Prints the tables: the block workloads', then the network's.
pub fn print(summary: &BenchSummary) {
    if !summary.workloads.is_empty() {
        print_block(summary);
    }
    if let Some(net) = &summary.net {
        super::net::print(net);
    }
}

/// Prints the block workloads' tables.
fn print_block(summary: &BenchSummary) {
    println!(
        "xl bench: {} rounds of {} ms per run, placements interleaved; medians over rounds ({} MiB image {})",
        summary.rounds,
        summary.run_ms,
        summary.disk_mib,
        if summary.direct {
            "opened with O_DIRECT: the disk sets the time"
        } else {
            "in the page cache"
        }
    );
    for w in &summary.workloads {
        println!();
        println!(
            "{} ({} KiB {}{}, depth {})",
            w.name,
            w.size / 1024,
            if w.write { "writes" } else { "reads" },
            if w.flush { ", each flushed" } else { "" },
            w.depth
        );
        println!(
            "  {:<17} {:>10} {:>10} {:>10} {:>9} {:>10} {:>16}",
            "placement", "median µs", "p99 µs", "IOPS", "MB/s", "vs native", "IOPS over rounds"
        );
        for name in &summary.placements {
            let f = &w.placements[name];
            println!(
                "  {:<17} {:>10.1} {:>10.1} {:>10.0} {:>9.1} {:>9.3}x {:>7.0}..{:<8.0}",
                name,
                f.median_us,
                f.p99_us,
                f.iops,
                f.mb_s,
                f.ratio_to_native.throughput,
                f.iops_range[0],
                f.iops_range[1]
            );
        }
        print!(
            "  service-vm / host: latency x{:.2}, throughput x{:.2}",
            w.service_vm_over_host.latency, w.service_vm_over_host.throughput
        );
        for (name, r) in &w.doorbells_over_host {
            print!("; {name}: x{:.2}, x{:.2}", r.latency, r.throughput);
        }
        println!();
        println!(
            "  {:<17}  {:>11} {:>9} {:>7} {:>7} {:>7} {:>9} {:>9} {:>8} {:>9}",
            "per request",
            "guest exits",
            "Dom0 exits",
            "ioreqs",
            "kicks",
            "polled",
            "guest irq",
            "Dom0 irq",
            "wakeups",
            "syscalls"
        );
        for name in &summary.placements {
            let c = &w.placements[name].counters;
            println!(
                "  {:<17}  {:>11.3} {:>9.3} {:>7.3} {:>7.3} {:>7.3} {:>9.3} {:>9.3} {:>8.3} {:>9.3}",
                name,
                c.guest_exits,
                c.dom0_exits,
                c.ioreqs,
                c.guest_kicks,
                c.backend_polls,
                c.guest_interrupts,
                c.dom0_interrupts,
                c.backend_wakeups,
                c.host_syscalls
            );
        }
        let traced: Vec<_> = w
            .traced
            .iter()
            .map(|(name, path)| (*name, path, w.placements[name].median_us))
            .collect();
        super::traced::print(&traced);
    }
}
