//! A workload run by a guest through its virtio-blk driver, with its disk
//! served in one placement, and the counts of what the path did.

use hyp::{DomainConfig, Event};
use hypd::trace::TraceError;
use hypd::{DeviceConfig, GuestConfig, Machine, Placement};
use protocol::bench::Workload;
use protocol::control::{TraceDump, TraceRequest};
use protocol::domain::{DomId, DomainState, ShutdownReason, DOM0};
use protocol::report::{BackendStats, BlockBench, Report};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::sample::{Counters, Sample};

/// How long a bench guest may take, boot to power-off.
const GUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Guest RAM: room for the depth-32 and 4 x 1 MiB buffers.
const GUEST_MIB: u64 = 32;

/// What one guest run gave.
pub struct GuestRun {
    /// The benchmark report (none for a guest that only booted).
    pub bench: Option<BlockBench>,
    /// Counts over the guest's whole life.
    pub counters: Counters,
}

/// The image every guest of a benchmark uses.
#[derive(Clone, Copy, Debug)]
pub struct BenchDisk<'a> {
    /// Its path.
    pub path: &'a Path,
    /// Opened for direct I/O (`xl bench --direct`).
    pub direct: bool,
}

/// The guest configuration that runs `workload` (or, with `None`, boots,
/// sets its disk up and powers off) for `run_ms` on `disk`.
fn config(
    placement: Placement,
    disk: &BenchDisk,
    workload: Option<&Workload>,
    run_ms: u64,
) -> GuestConfig {
    let runs = workload.map_or("none", |w| w.name);
    let mut domain = DomainConfig::new("bench", kernels::FRONTENDS.to_vec(), GUEST_MIB);
    domain.cmdline = format!("workload=disk verify_mib=0 seed=1 bench={run_ms}ms runs={runs}");
    GuestConfig {
        domain,
        devices: vec![
            DeviceConfig::disk("xvda", disk.path, false).with_direct_io(disk.direct),
            DeviceConfig::console(),
        ],
        placement,
    }
}

/// Runs a guest for `workload` in `placement` and waits until it is gone.
pub fn run(
    machine: &Machine,
    events: &Receiver<Event>,
    placement: Placement,
    disk: &BenchDisk,
    workload: Option<&Workload>,
    run_ms: u64,
) -> Result<GuestRun, String> {
    run_with(machine, events, placement, disk, workload, run_ms, |_| ())
}

/// Runs a guest for `workload` in `placement` as [`run`] does, with a
/// trace session over its first [`super::traced::TRACED_REQUESTS`]
/// requests.
pub fn run_traced(
    machine: &Machine,
    events: &Receiver<Event>,
    placement: Placement,
    disk: &BenchDisk,
    workload: &Workload,
    run_ms: u64,
) -> Result<(GuestRun, Result<TraceDump, TraceError>), String> {
    let mut dump = None;
    let run = std::thread::scope(|s| {
        let mut tracer = None;
        let run = run_with(
            machine,
            events,
            placement,
            disk,
            Some(workload),
            run_ms,
            |id| {
                let request = TraceRequest {
                    domain: id.to_string(),
                    vdev: None,
                    requests: super::traced::TRACED_REQUESTS,
                    timeout_ms: GUEST_TIMEOUT.as_millis() as u32,
                };
                tracer = Some(s.spawn(move || hypd::trace::trace(machine, id, &request)));
            },
        );
        dump = tracer.map(|t| t.join().expect("the tracing thread"));
        run
    })?;
    let dump = dump.ok_or("the traced guest was not created")?;
    Ok((run, dump))
}

/// [`run`], calling `created` with the guest's id as soon as it exists.
fn run_with(
    machine: &Machine,
    events: &Receiver<Event>,
    placement: Placement,
    disk: &BenchDisk,
    workload: Option<&Workload>,
    run_ms: u64,
    created: impl FnOnce(DomId),
) -> Result<GuestRun, String> {
    let hv = machine.core();
    let dom0_exits = || {
        hv.domain(DOM0)
            .map_or(0, |d| d.counters.user_exits.load(Ordering::Relaxed))
    };
    let dom0_before = dom0_exits();
    let id = machine
        .create(config(placement, disk, workload, run_ms))
        .map_err(|e| format!("creating the bench guest: {e}"))?;
    created(id);
    let mut bench = None;
    let deadline = Instant::now() + GUEST_TIMEOUT;
    let final_state = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Report { domid, bytes }) if domid == id => {
                if let Some(Report::BlockBench(b)) = Report::decode(&bytes) {
                    bench = Some(b);
                }
            }
            Ok(Event::State { domid, state, .. }) if domid == id && state.is_final() => {
                break state
            }
            Ok(_) => {}
            Err(_) => {
                let _ = machine.destroy(id);
                return Err("the bench guest did not finish in time".into());
            }
        }
    };
    let domain = hv.domain(id).ok_or("the bench guest vanished")?;
    let message = domain.message();
    let guest_exits = domain.counters.user_exits.load(Ordering::Relaxed) as f64;
    let ioreqs = domain.counters.ioreqs.load(Ordering::Relaxed) as f64;
    drop(domain);
    let stats = backend_stats_at_destroy(machine, events, id, "xvda")?;
    if final_state != DomainState::Shutdown(ShutdownReason::Poweroff) {
        return Err(format!(
            "the bench guest ended {final_state:?}: {}",
            message.unwrap_or_default()
        ));
    }
    let dom0_exits = dom0_exits().saturating_sub(dom0_before) as f64;
    let counters = Counters {
        guest_exits,
        dom0_exits,
        ioreqs,
        guest_kicks: bench.map_or(0.0, |b| b.notifies as f64),
        backend_polls: stats.polled as f64,
        guest_interrupts: bench.map_or(0.0, |b| b.interrupts as f64),
        dom0_interrupts: stats.backend_interrupts as f64,
        backend_wakeups: stats.wakeups as f64,
        host_syscalls: (stats.submits as f64) + guest_exits + dom0_exits,
    };
    Ok(GuestRun { bench, counters })
}

/// Destroys guest `domid` and returns what the backend of its device
/// `vdev` did: the host model's counts are read just before, Domain-0's
/// arrive as a [`Report::BackendStats`] when the device goes.
pub fn backend_stats_at_destroy(
    machine: &Machine,
    events: &Receiver<Event>,
    domid: DomId,
    vdev: &str,
) -> Result<BackendStats, String> {
    let local = machine
        .host_model_stats(domid)
        .into_iter()
        .find(|s| s.vdev.as_str() == vdev);
    machine.destroy(domid).map_err(|e| e.to_string())?;
    if let Some(stats) = local {
        return Ok(stats);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Report { domid: DOM0, bytes }) => match Report::decode(&bytes) {
                Some(Report::BackendStats(s)) if s.domid == domid && s.vdev.as_str() == vdev => {
                    return Ok(s)
                }
                _ => {}
            },
            Ok(_) => {}
            Err(_) => return Err("Domain-0 did not report its backend's counts".into()),
        }
    }
}

/// A guest run as a [`Sample`], its life counts net of `baseline` (a
/// guest that only booted and powered off in the same placement).
pub fn sample(run: GuestRun, baseline: &Counters) -> Option<Sample> {
    let b = run.bench?;
    let mut counters = run.counters.minus(baseline);
    // The guest counted these over the run alone.
    counters.guest_kicks = b.notifies as f64;
    counters.guest_interrupts = b.interrupts as f64;
    Some(Sample {
        median_ns: b.latency.median_ns,
        p99_ns: b.latency.p99_ns,
        ops: b.ops,
        bytes: b.bytes,
        elapsed_ns: b.elapsed_ns,
        histogram: b.histogram,
        counters,
    })
}
