//! `xl bench`: what sending I/O through the service VM costs, against the
//! host model and against the same I/O done natively.
//!
//! Each workload of [`protocol::bench::WORKLOADS`] runs in three
//! placements on the same disk image (filled, so reads hit real pages in
//! the page cache):
//!
//! * `native`: a host thread, io_uring, no VM ([`native`]);
//! * `host`: a guest whose backends run in this process (the host model);
//! * `service-vm`: a guest whose backends run in Domain-0 (the hybrid
//!   model).
//!
//! Placements interleave (native, host, service-vm, native, ...) over
//! several rounds, so drift on this machine hits all three alike; each
//! figure is the median over rounds, with the spread. Each guest runs one
//! workload and powers off, so the core's counts over its life belong to
//! that workload; a guest that only boots and powers off, in the same
//! placement and round, is subtracted from them ([`guest`]).

mod guest;
mod native;
mod plot;
mod summary;

use hyp::{DomainConfig, Event};
use hypd::{Machine, Placement};
use protocol::bench::{Workload, WORKLOADS};
use protocol::domain::DOM0;
use protocol::report::LatencyHistogram;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use guest::backend_stats_at_destroy;
pub use summary::{print, BenchSummary};

/// The placements, in the order each round runs them.
pub const PLACEMENTS: [&str; 3] = ["native", "host", "service-vm"];

/// What `xl bench` was asked to do.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Rounds of every workload in every placement.
    pub rounds: usize,
    /// Length of one run, in milliseconds.
    pub run_ms: u64,
    /// Size of the disk image, in MiB.
    pub disk_mib: u64,
    /// Where the disk image lives (its filesystem decides what a flush
    /// costs).
    pub dir: PathBuf,
    /// The workloads to run (all when empty).
    pub workloads: Vec<String>,
    /// Progress goes to stderr instead of stdout (stdout has the JSON).
    pub quiet: bool,
}

impl BenchOptions {
    /// The `--quick` settings: done in well under a minute.
    pub fn quick() -> Self {
        Self {
            rounds: 3,
            run_ms: 100,
            disk_mib: 32,
            dir: std::env::temp_dir(),
            workloads: Vec::new(),
            quiet: false,
        }
    }

    /// The default settings.
    pub fn full() -> Self {
        Self {
            rounds: 5,
            run_ms: 1000,
            disk_mib: 64,
            ..Self::quick()
        }
    }
}

/// Counts along the I/O path (totals for a run; per request in the
/// summary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Counters {
    /// The guest's vCPU exits to the core's user space.
    pub guest_exits: f64,
    /// Domain-0's vCPU exits to the core's user space.
    pub dom0_exits: f64,
    /// Register accesses forwarded to Domain-0 as ioreqs.
    pub ioreqs: f64,
    /// Queue notifications the guest wrote (ioeventfd: in-kernel kicks).
    pub guest_kicks: f64,
    /// Times the polling backend found requests no kick announced.
    pub backend_polls: f64,
    /// Device interrupts injected into the guest.
    pub guest_interrupts: f64,
    /// Event-channel interrupts Domain-0 took.
    pub dom0_interrupts: f64,
    /// Times the backend's CPU woke to serve: Domain-0 halts that ended,
    /// or the host model's worker waits that returned.
    pub backend_wakeups: f64,
    /// Host system calls: `io_uring_enter` (native thread, host-model
    /// worker, or the core's doorbell for Domain-0's hardware queue) plus
    /// the `KVM_RUN` that resumes a vCPU after each exit.
    pub host_syscalls: f64,
}

impl Counters {
    /// How many fields there are.
    const FIELDS: usize = 9;

    /// The fields, in declaration order.
    fn to_array(self) -> [f64; Self::FIELDS] {
        [
            self.guest_exits,
            self.dom0_exits,
            self.ioreqs,
            self.guest_kicks,
            self.backend_polls,
            self.guest_interrupts,
            self.dom0_interrupts,
            self.backend_wakeups,
            self.host_syscalls,
        ]
    }

    /// Counters from their fields in declaration order.
    fn from_array(f: [f64; Self::FIELDS]) -> Self {
        Counters {
            guest_exits: f[0],
            dom0_exits: f[1],
            ioreqs: f[2],
            guest_kicks: f[3],
            backend_polls: f[4],
            guest_interrupts: f[5],
            dom0_interrupts: f[6],
            backend_wakeups: f[7],
            host_syscalls: f[8],
        }
    }

    /// `self - other`, field by field, never below zero.
    fn minus(&self, other: &Counters) -> Counters {
        let (a, b) = (self.to_array(), other.to_array());
        Self::from_array(std::array::from_fn(|i| (a[i] - b[i]).max(0.0)))
    }

    /// Every field divided by `n`.
    fn per(&self, n: f64) -> Counters {
        Self::from_array(self.to_array().map(|v| v / n.max(1.0)))
    }

    /// The median of each field over `all`.
    fn median(all: &[Counters]) -> Counters {
        let arrays: Vec<[f64; Self::FIELDS]> = all.iter().map(|c| c.to_array()).collect();
        Self::from_array(std::array::from_fn(|i| {
            summary::median(arrays.iter().map(|a| a[i]).collect())
        }))
    }
}

/// One run of one workload in one placement.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Median request latency.
    pub median_ns: u64,
    /// 99th-percentile request latency.
    pub p99_ns: u64,
    /// Requests completed.
    pub ops: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Length of the run.
    pub elapsed_ns: u64,
    /// Latency distribution.
    pub histogram: LatencyHistogram,
    /// Counts along the path, totals for the run.
    pub counters: Counters,
}

/// Every sample, by workload then placement (in [`PLACEMENTS`] order).
pub type Samples = Vec<(Workload, [Vec<Sample>; 3])>;

/// Writes a pattern over a new image of `mib` MiB in `dir` and returns
/// its path; the bytes stay in the page cache.
fn make_disk(dir: &Path, mib: u64) -> Result<PathBuf, String> {
    let path = dir.join(format!("xl-bench-{}.img", std::process::id()));
    let mut contents = vec![0u8; (mib << 20) as usize];
    protocol::pattern::fill(&mut contents, 0, 1);
    std::fs::write(&path, &contents).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Runs the benchmark with an embedded core and returns its summary.
pub fn run(options: &BenchOptions) -> Result<BenchSummary, String> {
    let workloads: Vec<Workload> = if options.workloads.is_empty() {
        WORKLOADS.to_vec()
    } else {
        options
            .workloads
            .iter()
            .map(|name| {
                Workload::named(name).copied().ok_or_else(|| {
                    let known: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
                    format!("unknown workload '{name}' (known: {})", known.join(", "))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let say = |text: String| match options.quiet {
        true => eprintln!("{text}"),
        false => println!("{text}"),
    };
    let machine = Machine::new().map_err(|e| e.to_string())?;
    let events = machine.core().subscribe();
    machine
        .boot_dom0(DomainConfig::new(
            "Domain-0",
            kernels::SERVICE_VM.to_vec(),
            64,
        ))
        .map_err(|e| format!("booting Domain-0: {e}"))?;
    wait_for_console(&events)?;
    let disk = make_disk(&options.dir, options.disk_mib)?;
    let removal = RemoveOnDrop(disk.clone());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&disk)
        .map_err(|e| format!("{}: {e}", disk.display()))?;
    let run = Duration::from_millis(options.run_ms);
    let mut samples: Samples = workloads
        .iter()
        .map(|w| (*w, [Vec::new(), Vec::new(), Vec::new()]))
        .collect();
    for round in 1..=options.rounds {
        say(format!("xl bench: round {round} of {}", options.rounds));
        let baselines = [Placement::Host, Placement::ServiceVm].map(|placement| {
            guest::run(&machine, &events, placement, &disk, None, options.run_ms)
                .map(|r| r.counters)
        });
        let [host_base, svm_base] = baselines;
        let (host_base, svm_base) = (host_base?, svm_base?);
        for (w, by_placement) in samples.iter_mut() {
            by_placement[0].push(native::run(w, &file, options.disk_mib << 20, run)?);
            for (slot, placement, base) in [
                (1, Placement::Host, &host_base),
                (2, Placement::ServiceVm, &svm_base),
            ] {
                let result =
                    guest::run(&machine, &events, placement, &disk, Some(w), options.run_ms)?;
                let sample = guest::sample(result, base).ok_or_else(|| {
                    format!("the {} guest did not report {}", placement.name(), w.name)
                })?;
                by_placement[slot].push(sample);
            }
        }
    }
    drop(removal);
    Ok(summary::summarize(options, &samples))
}

/// Waits for Domain-0's first console line.
fn wait_for_console(events: &std::sync::mpsc::Receiver<Event>) -> Result<(), String> {
    loop {
        match events.recv_timeout(Duration::from_secs(30)) {
            Ok(Event::Console { domid: DOM0, .. }) => return Ok(()),
            Ok(_) => {}
            Err(_) => return Err("Domain-0 did not boot".into()),
        }
    }
}

/// Removes the bench image when the run ends, however it ends.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes the plot of `summary` to `path` (SVG).
pub fn write_plot(summary: &BenchSummary, path: &Path) -> Result<(), String> {
    plot::write(summary, path)
}
