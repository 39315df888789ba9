//! The network benchmark's result: per measurement and path, medians over
//! rounds with their spread, ratios to native and of the service VM to
//! the host model, what failed; per-frame counts along each guest path;
//! as JSON and as tables.

use serde::Serialize;
use std::collections::BTreeMap;

use super::super::sample::median;
use super::sample::{Figure, NetRun, NetWorkload, Path, PathCounters};

/// Every run, by path (in [`Path::ALL`] order), in round order.
pub type NetSamples = [Vec<NetRun>; 5];

/// Everything the network benchmark measured.
#[derive(Clone, Debug, Serialize)]
pub struct NetSummary {
    /// The paths compared, in table order.
    pub paths: Vec<&'static str>,
    /// Rounds run.
    pub rounds: usize,
    /// Pings and 1-byte round trips per run.
    pub count: u32,
    /// MiB each stream carries.
    pub stream_mib: u64,
    /// One entry per measurement selected.
    pub workloads: Vec<NetWorkloadSummary>,
    /// Counts along each guest path per frame of the client guest (median
    /// over rounds; a run's four measurements together).
    pub counters: BTreeMap<&'static str, PathCounters>,
}

/// One measurement on every path.
#[derive(Clone, Debug, Serialize)]
pub struct NetWorkloadSummary {
    /// Its name.
    pub name: &'static str,
    /// What it does.
    pub what: &'static str,
    /// `us` (round trips: median and p99) or `Gbit/s` (streams).
    pub unit: &'static str,
    /// Figures by path name.
    pub paths: BTreeMap<&'static str, NetFigures>,
    /// Service VM over host model, guest to guest (latency: above 1 is
    /// slower; Gbit/s: below 1 is slower).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_vm_over_host: Option<f64>,
    /// The same, guest to host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_vm_over_host_to_host: Option<f64>,
}

/// One path's figures for one measurement: medians over the rounds that
/// measured it (none if no round did).
#[derive(Clone, Debug, Default, Serialize)]
pub struct NetFigures {
    /// Median round trip, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_us: Option<f64>,
    /// 99th-percentile round trip, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    /// Stream throughput, Gbit/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gbit_s: Option<f64>,
    /// Smallest and largest over the rounds (of `median_us` or `gbit_s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
    /// Against native (as `service_vm_over_host`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_native: Option<f64>,
    /// Each round's `median_us` or `gbit_s` (null: the round failed).
    pub per_round: Vec<Option<f64>>,
    /// Why rounds failed, each as `round N: why`.
    pub errors: Vec<String>,
}

impl NetFigures {
    /// The figure ratios compare: median latency or Gbit/s.
    fn value(&self) -> Option<f64> {
        self.median_us.or(self.gbit_s)
    }
}

/// `of / to`, if both were measured.
fn ratio(of: &NetFigures, to: &NetFigures) -> Option<f64> {
    Some(of.value()? / to.value()?.max(1e-9))
}

/// The figures of measurement `index` over `runs`.
fn figures(runs: &[NetRun], index: usize) -> NetFigures {
    let mut out = NetFigures::default();
    let (mut values, mut p99s) = (Vec::new(), Vec::new());
    for (round, run) in runs.iter().enumerate() {
        match &run.figures[index] {
            Ok(Figure::Latency { median_us, p99_us }) => {
                values.push(*median_us);
                p99s.extend(*p99_us);
                out.per_round.push(Some(*median_us));
            }
            Ok(Figure::Stream { gbit_s }) => {
                values.push(*gbit_s);
                out.per_round.push(Some(*gbit_s));
            }
            Err(why) => {
                out.errors.push(format!("round {}: {why}", round + 1));
                out.per_round.push(None);
            }
        }
    }
    if values.is_empty() {
        return out;
    }
    let value = median(values.clone());
    match runs.iter().find_map(|r| r.figures[index].as_ref().ok()) {
        Some(Figure::Stream { .. }) => out.gbit_s = Some(value),
        _ => {
            out.median_us = Some(value);
            // Only when every measured round gave its p99.
            out.p99_us = (p99s.len() == values.len()).then(|| median(p99s));
        }
    }
    out.range = Some([
        values.iter().copied().fold(f64::INFINITY, f64::min),
        values.iter().copied().fold(0.0, f64::max),
    ]);
    out
}

/// Medians, ratios and counts of every selected measurement.
pub fn summarize(
    selected: &[(usize, NetWorkload)],
    samples: &NetSamples,
    count: u32,
    stream_mib: u64,
) -> NetSummary {
    let workloads = selected
        .iter()
        .map(|&(index, w)| {
            let mut all: Vec<NetFigures> =
                samples.iter().map(|runs| figures(runs, index)).collect();
            let native = all[0].clone();
            for f in &mut all {
                f.ratio_to_native = ratio(f, &native);
            }
            NetWorkloadSummary {
                name: w.name,
                what: w.what,
                unit: if w.stream { "Gbit/s" } else { "us" },
                service_vm_over_host: ratio(&all[2], &all[1]),
                service_vm_over_host_to_host: ratio(&all[4], &all[3]),
                paths: Path::ALL.iter().map(|p| p.name()).zip(all).collect(),
            }
        })
        .collect();
    let counters = Path::ALL
        .iter()
        .zip(samples)
        .filter_map(|(path, runs)| {
            let per_frame: Vec<PathCounters> = runs
                .iter()
                .filter_map(|r| r.counters.as_ref().map(PathCounters::per_frame))
                .collect();
            (!per_frame.is_empty()).then(|| (path.name(), PathCounters::median(&per_frame)))
        })
        .collect();
    NetSummary {
        paths: Path::ALL.iter().map(|p| p.name()).collect(),
        rounds: samples.iter().map(Vec::len).max().unwrap_or(0),
        count,
        stream_mib,
        workloads,
        counters,
    }
}

/// `value` with `decimals`, or `-` when not measured.
fn or_dash(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// Prints the tables.
pub fn print(summary: &NetSummary) {
    println!();
    println!(
        "network: {} rounds, paths interleaved; medians over rounds ({} pings and 1-byte round trips, {} MiB streams per run)",
        summary.rounds, summary.count, summary.stream_mib
    );
    for path in Path::ALL {
        println!("  {:<19} {}", path.name(), path.what());
    }
    println!(
        "  x native: latency over native's (ping, round trips), Gbit/s over native's (streams)"
    );
    for w in &summary.workloads {
        println!();
        println!("{} ({})", w.name, w.what);
        if w.unit == "us" {
            println!(
                "  {:<19} {:>10} {:>10} {:>9} {:>20}",
                "path", "median µs", "p99 µs", "x native", "median over rounds"
            );
        } else {
            println!(
                "  {:<19} {:>10} {:>9} {:>20}",
                "path", "Gbit/s", "x native", "Gbit/s over rounds"
            );
        }
        for name in &summary.paths {
            let f = &w.paths[name];
            let range = f.range.map_or("-".into(), |[lo, hi]| match w.unit {
                "us" => format!("{lo:.1}..{hi:.1}"),
                _ => format!("{lo:.3}..{hi:.3}"),
            });
            let ratio = or_dash(f.ratio_to_native, 2);
            if w.unit == "us" {
                println!(
                    "  {:<19} {:>10} {:>10} {:>9} {:>20}",
                    name,
                    or_dash(f.median_us, 1),
                    or_dash(f.p99_us, 1),
                    ratio,
                    range
                );
            } else {
                println!(
                    "  {:<19} {:>10} {:>9} {:>20}",
                    name,
                    or_dash(f.gbit_s, 3),
                    ratio,
                    range
                );
            }
        }
        println!(
            "  service-vm / host, {}: x{} guest to guest, x{} guest to host",
            if w.unit == "us" {
                "latency"
            } else {
                "throughput"
            },
            or_dash(w.service_vm_over_host, 2),
            or_dash(w.service_vm_over_host_to_host, 2)
        );
        for name in &summary.paths {
            for error in &w.paths[name].errors {
                println!("  {name} failed, {error}");
            }
        }
    }
    print_counters(summary);
}

/// Prints the per-frame counts.
fn print_counters(summary: &NetSummary) {
    if summary.counters.is_empty() {
        return;
    }
    println!();
    println!("per frame of the client guest (sent or received; medians over rounds of whole runs, guests' lives)");
    println!(
        "  {:<19} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>6}",
        "path",
        "frames",
        "exits",
        "Dom0 ex",
        "kicks",
        "polled",
        "g irq",
        "D0 irq",
        "wakeups",
        "doorbel",
        "host fr",
        "copies"
    );
    for name in &summary.paths {
        let Some(c) = summary.counters.get(name) else {
            continue;
        };
        println!(
            "  {:<19} {:>7.0} {:>7.3} {:>7.3} {:>6.3} {:>6.3} {:>6.3} {:>6} {:>7.3} {:>7} {:>7.3} {:>6}",
            name,
            c.frames,
            c.guest_exits,
            c.dom0_exits,
            c.kicks,
            c.polled,
            c.guest_interrupts,
            or_dash(c.dom0_interrupts, 3),
            c.backend_wakeups,
            or_dash(c.doorbells, 3),
            c.host_frames,
            or_dash(c.copies, 3)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample::NET_WORKLOADS;
    use super::*;

    fn latency(median_us: f64) -> Result<Figure, String> {
        Ok(Figure::Latency {
            median_us,
            p99_us: Some(median_us * 2.0),
        })
    }

    #[test]
    fn medians_ratios_and_failures_per_path() {
        let run = |us: f64| NetRun {
            figures: [
                latency(us),
                latency(us),
                Ok(Figure::Stream { gbit_s: 10.0 / us }),
                Err("no".into()),
            ],
            counters: None,
        };
        let mut samples: NetSamples = Default::default();
        samples[0] = vec![run(10.0), run(30.0), run(20.0)];
        samples[1] = vec![run(100.0), run(100.0), run(100.0)];
        samples[2] = vec![run(50.0), NetRun::failed("peer does not answer"), run(50.0)];
        let selected: Vec<(usize, NetWorkload)> = NET_WORKLOADS.into_iter().enumerate().collect();
        let s = summarize(&selected, &samples, 10, 1);
        let ping = &s.workloads[0];
        assert_eq!(ping.paths["native"].median_us, Some(20.0));
        assert_eq!(ping.paths["native"].p99_us, Some(40.0));
        assert_eq!(ping.paths["native"].range, Some([10.0, 30.0]));
        assert_eq!(ping.paths["host"].ratio_to_native, Some(5.0));
        assert_eq!(ping.service_vm_over_host, Some(0.5));
        let svm = &ping.paths["service-vm"];
        assert_eq!(svm.per_round, vec![Some(50.0), None, Some(50.0)]);
        assert_eq!(
            svm.errors,
            vec!["round 2: peer does not answer".to_string()]
        );
        let rx = &s.workloads[2];
        assert_eq!(rx.unit, "Gbit/s");
        assert_eq!(rx.paths["host"].gbit_s, Some(0.1));
        assert_eq!(rx.paths["host"].median_us, None);
        let tx = &s.workloads[3];
        assert_eq!(tx.paths["host"].gbit_s, None, "never measured: no figure");
        assert_eq!(tx.service_vm_over_host, None);
        assert_eq!(ping.paths["host-to-host"].median_us, None, "no runs");
        assert!(s.counters.is_empty());
    }
}
