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
//!   model), its disk's hardware queue submitted by Domain-0's own vCPU
//!   thread on the exit of its doorbell (hypd's default);
//! * `service-vm-thread` and `service-vm-sqpoll`: the same with
//!   Domain-0's other doorbells ([`hypd::DoorbellMode`]): the queue
//!   submitted by a doorbell thread in `hypd`, or taken by a kernel thread
//!   polling the SQ.
//!
//! Placements interleave (native, host, service-vm, native, ...) over
//! several rounds, so drift on this machine hits all three alike; each
//! figure is the median over rounds, with the spread. Each guest runs one
//! workload and powers off, so the core's counts over its life belong to
//! that workload; a guest that only boots and powers off, in the same
//! placement and round, is subtracted from them ([`guest`]).
//!
//! The network workloads ([`net`]) run after the block rounds, in rounds
//! of their own, on the same machine: guest to guest through Domain-0's
//! switch and through the host bridge, guest to host, and native, all in
//! network namespaces of the benchmark's own. `--workloads` selects from
//! both (`block` and `net` name each group); by default both run.

mod guest;
mod native;
mod net;
mod options;
mod plot;
mod sample;
mod summary;
mod traced;

use hyp::{DomainConfig, Event};
use hypd::Machine;
use protocol::bench::{Workload, WORKLOADS};
use protocol::domain::DOM0;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use guest::backend_stats_at_destroy;
pub use options::{BenchOptions, GUEST_PLACEMENTS, PLACEMENTS};
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

/// The block and network workloads `names` select (each network one
/// with its index in [`net::NET_WORKLOADS`]): every one when `names` is
/// empty; `block` and `net` name each group.
fn select(names: &[String]) -> Result<(Vec<Workload>, net::NetSelection), String> {
    let all_net = || net::NET_WORKLOADS.into_iter().enumerate();
    if names.is_empty() {
        return Ok((WORKLOADS.to_vec(), all_net().collect()));
    }
    let (mut block, mut network) = (Vec::new(), Vec::new());
    for name in names {
        let mut found = false;
        for w in WORKLOADS
            .iter()
            .filter(|w| name == "block" || w.name == name)
        {
            found = true;
            if !block.contains(w) {
                block.push(*w);
            }
        }
        for (i, w) in all_net().filter(|(_, w)| name == "net" || w.name == name) {
            found = true;
            if !network.iter().any(|&(j, _)| j == i) {
                network.push((i, w));
            }
        }
        if !found {
            let known: Vec<&str> = WORKLOADS
                .iter()
                .map(|w| w.name)
                .chain(net::NET_WORKLOADS.iter().map(|w| w.name))
                .collect();
            return Err(format!(
                "unknown workload '{name}' (known: block, net, {})",
                known.join(", ")
            ));
        }
    }
    network.sort_by_key(|&(i, _)| i);
    Ok((block, network))
}

/// Runs the benchmark with an embedded core and returns its summary.
pub fn run(options: &BenchOptions) -> Result<BenchSummary, String> {
    let (workloads, net_selected) = select(&options.workloads)?;
    let say = |text: String| match options.quiet {
        true => eprintln!("{text}"),
        false => println!("{text}"),
    };
    // Before the machine and its threads exist: they inherit the namespace.
    let net_env = match net_selected.is_empty() {
        true => None,
        false => match net::NetEnv::new() {
            Ok(env) => Some(env),
            Err(e) if options.workloads.is_empty() => {
                eprintln!("xl bench: no network workloads: {e}");
                None
            }
            Err(e) => return Err(format!("network workloads: {e}")),
        },
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
    let mut summary = match workloads.is_empty() {
        true => summary::summarize(options, &Vec::new()),
        false => run_block(options, &machine, &events, &workloads, &say)?,
    };
    if let Some(env) = &net_env {
        let plan = (options.rounds, options.net_count, options.net_mib);
        summary.net = Some(env.run(&machine, &events, plan, &net_selected, &say));
    }
    Ok(summary)
}

/// The block rounds: every workload natively, in the host model and
/// through the service VM, interleaved.
fn run_block(
    options: &BenchOptions,
    machine: &Machine,
    events: &std::sync::mpsc::Receiver<Event>,
    workloads: &[Workload],
    say: &dyn Fn(String),
) -> Result<BenchSummary, String> {
    let disk = make_disk(&options.dir, options.disk_mib)?;
    let removal = RemoveOnDrop(disk.clone());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(if options.direct { libc::O_DIRECT } else { 0 })
        .open(&disk)
        .map_err(|e| format!("{}: {e}", disk.display()))?;
    let bench_disk = guest::BenchDisk {
        path: &disk,
        direct: options.direct,
    };
    let run = Duration::from_millis(options.run_ms);
    let mut samples: Samples = workloads.iter().map(|w| (*w, Default::default())).collect();
    for round in 1..=options.rounds {
        say(format!("xl bench: round {round} of {}", options.rounds));
        let mut baselines = Vec::new();
        for (_, placement, doorbell) in GUEST_PLACEMENTS {
            machine.set_doorbell_mode(doorbell);
            let run = guest::run(
                machine,
                events,
                placement,
                &bench_disk,
                None,
                options.run_ms,
            )?;
            baselines.push(run.counters);
        }
        for (w, by_placement) in samples.iter_mut() {
            by_placement[0].push(native::run(w, &file, options.disk_mib << 20, run)?);
            for (slot, (name, placement, doorbell)) in GUEST_PLACEMENTS.into_iter().enumerate() {
                machine.set_doorbell_mode(doorbell);
                let result = guest::run(
                    machine,
                    events,
                    placement,
                    &bench_disk,
                    Some(w),
                    options.run_ms,
                )?;
                let sample = guest::sample(result, &baselines[slot])
                    .ok_or_else(|| format!("the {name} guest did not report {}", w.name))?;
                by_placement[slot + 1].push(sample);
            }
        }
    }
    let mut summary = summary::summarize(options, &samples);
    if options.trace {
        say("xl bench: one traced run of each workload".into());
        for (w, summary) in workloads.iter().zip(summary.workloads.iter_mut()) {
            for (name, placement, doorbell) in GUEST_PLACEMENTS {
                machine.set_doorbell_mode(doorbell);
                let run =
                    guest::run_traced(machine, events, placement, &bench_disk, w, options.run_ms)?;
                let dump = run.1.map_err(|e| format!("tracing {}: {e}", w.name))?;
                let path = traced::path(&dump).map_err(|e| format!("tracing {}: {e}", w.name))?;
                summary.traced.insert(name, path);
            }
        }
    }
    drop(removal);
    Ok(summary)
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

#[cfg(test)]
mod tests {
    use super::select;

    fn names(list: &[&str]) -> (Vec<&'static str>, Vec<&'static str>) {
        let given: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        let (block, net) = select(&given).unwrap();
        (
            block.iter().map(|w| w.name).collect(),
            net.iter().map(|(_, w)| w.name).collect(),
        )
    }

    #[test]
    fn workloads_are_selected_by_name_or_group() {
        let (block, net) = names(&[]);
        assert_eq!((block.len(), net.len()), (6, 4), "everything by default");
        assert_eq!(
            names(&["net"]),
            (
                vec![],
                vec!["net-ping", "net-tcp-rr", "net-tcp-rx", "net-tcp-tx"]
            )
        );
        assert_eq!(names(&["block"]).1, Vec::<&str>::new());
        assert_eq!(names(&["block"]).0.len(), 6);
        assert_eq!(
            names(&["net-tcp-tx", "randread-4k-qd1", "net-ping", "net-ping"]),
            (vec!["randread-4k-qd1"], vec!["net-ping", "net-tcp-tx"]),
            "in run order, once each"
        );
        let unknown = select(&["net-udp".to_string()]).unwrap_err();
        assert!(
            unknown.contains("'net-udp'") && unknown.contains("net-tcp-rr"),
            "{unknown}"
        );
    }
}
