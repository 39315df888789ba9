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
mod options;
mod plot;
mod sample;
mod summary;

use hyp::{DomainConfig, Event};
use hypd::{Machine, Placement};
use protocol::bench::{Workload, WORKLOADS};
use protocol::domain::DOM0;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use guest::backend_stats_at_destroy;
pub use options::{BenchOptions, PLACEMENTS};
pub use sample::{Counters, Sample};
pub use summary::{print, BenchSummary};

use sample::Samples;

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
