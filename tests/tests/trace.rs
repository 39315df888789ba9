//! Tracing end to end: a guest's requests traced through every party's
//! ring in both placements, their records joined into journeys
//! (`toolstack::trace`, what `xl trace` prints), and guests that garble
//! their ring or stop while they are traced.

use hypd::{DoorbellMode, GuestConfig, Machine, Placement};
use protocol::control::{TraceDump, TraceRequest};
use protocol::domain::{DomId, DOM0};
use protocol::report::{BlockBench, Report};
use protocol::trace::{Party, Step};
use std::time::Duration;
use tests::*;
use toolstack::trace::{analyse, journeys, Journey};

const T: Duration = Duration::from_secs(120);
const DISK: u64 = 16 << 20;
/// Requests of the benchmark run each traced guest makes.
const REQUESTS: u32 = 400;

/// One trace session at a time in a process (`hypd` has one machine; the
/// tests here each make their own, in one process).
static ONE_SESSION: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_session() -> std::sync::MutexGuard<'static, ()> {
    ONE_SESSION.lock().unwrap_or_else(|e| e.into_inner())
}

/// Traces guest `config` from its first instruction until it stops (the
/// session ends with it), destroys it, and returns the dump and the
/// reports it made.
fn trace_whole_life(machine: &Machine, config: GuestConfig) -> (DomId, TraceDump, Vec<Report>) {
    let events = machine.core().subscribe();
    let mut config = config;
    config.domain.start_paused = true;
    let id = machine.create(config).expect("create the traced guest");
    let request = TraceRequest {
        domain: id.to_string(),
        vdev: None,
        requests: protocol::control::TRACE_MAX_REQUESTS,
        timeout_ms: 60_000,
    };
    let (dump, reports) = std::thread::scope(|s| {
        let tracer = s.spawn(|| hypd::trace::trace(machine, id, &request));
        // The session is on well before the guest's first request.
        std::thread::sleep(Duration::from_millis(100));
        machine.core().unpause(id).expect("unpause");
        let reports = reports_until_final(&events, id, T);
        (tracer.join().expect("tracer thread"), reports)
    });
    let dump = dump.expect("trace session");
    // One clock: the guest's TSC is the host's, and Domain-0's.
    for domid in [id, DOM0] {
        let offset = machine.core().domain(domid).map(|d| d.tsc_offset());
        assert_eq!(offset, Some(0), "domain {domid}'s TSC offset");
    }
    machine.destroy(id).expect("destroy the traced guest");
    (id, dump, reports)
}

fn bench_guest(name: &str, disk: &TempDisk, placement: Placement) -> GuestConfig {
    let cmdline = format!(
        "workload=disk verify_mib=0 seed=1 bench=10000ms runs=randread-4k-qd1 count={REQUESTS}"
    );
    let mut config = disk_guest(name, &cmdline, &disk.path, false);
    config.placement = placement;
    config
}

fn bench_of(reports: &[Report]) -> BlockBench {
    reports
        .iter()
        .find_map(|r| match r {
            Report::BlockBench(b) => Some(*b),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no benchmark report in {reports:?}"))
}

/// The steps that cause one another, in the order they must happen: the
/// request is built and published before its backend takes it, checked,
/// queued; Domain-0 rings before the core's doorbell thread wakes and
/// enters the kernel, which posts the CQE the backend sees; the used entry
/// is written after that and seen by the guest last. (The guest's kick
/// decision may come after the backend already took the request, when it
/// polls; `io_uring_enter` may return after the CQE was seen.)
fn causal_chain(host: bool) -> Vec<Step> {
    let mut chain = vec![
        Step::Built,
        Step::Published,
        Step::Taken,
        Step::Parsed,
        Step::Queued,
    ];
    if host {
        chain.push(Step::EnterStart);
    } else {
        chain.extend([Step::Doorbell, Step::DoorbellWoken, Step::EnterStart]);
    }
    chain.extend([Step::Completed, Step::Used, Step::Seen]);
    chain
}

/// Checks every journey that went to the host (a read: the benchmark's
/// requests; the driver's get-id at start-up is answered by the backend
/// itself) has every step of the causal chain in its order, each from the
/// party that does it; returns how many there were.
fn check_causal_order(all: &[Journey], host: bool) -> usize {
    let chain = causal_chain(host);
    let backend = if host { Party::HostModel } else { Party::Dom0 };
    let reads: Vec<&Journey> = all
        .iter()
        .filter(|j| j.get(Step::Queued).is_some())
        .collect();
    for journey in &reads {
        let mut last = 0;
        for step in &chain {
            let point = journey.get(*step).unwrap_or_else(|| {
                panic!("request {}: no {step:?} in {journey:?}", journey.request)
            });
            assert!(
                point.tsc >= last,
                "request {}: {step:?} before the step it follows: {journey:?}",
                journey.request
            );
            let party = match step {
                Step::Built | Step::Published | Step::Seen => Party::Guest,
                Step::DoorbellWoken => Party::Core,
                Step::EnterStart if !host => Party::Core,
                _ => backend,
            };
            assert_eq!(point.party, party, "request {}: {step:?}", journey.request);
            last = point.tsc;
        }
    }
    reads.len()
}

fn traced_path(placement: Placement, doorbell: DoorbellMode) {
    let (machine, _events) = machine_with_dom0();
    machine.set_doorbell_mode(doorbell);
    let disk = TempDisk::new("trace", DISK);
    let _one = one_session();
    let (_, dump, reports) = trace_whole_life(&machine, bench_guest("traced", &disk, placement));
    let bench = bench_of(&reports);
    assert_eq!(bench.ops, u64::from(REQUESTS), "{bench:?}");
    assert!(dump.stopped, "the guest's power-off ended the session");
    for ring in &dump.rings {
        assert_eq!(
            (ring.dropped, ring.invalid),
            (0, 0),
            "{:?} lost records",
            ring.party
        );
    }
    let found = journeys(&dump);
    let reads = check_causal_order(&found.complete, placement == Placement::Host);
    // The benchmark's reads, and the one the driver makes before it.
    assert!(
        reads > REQUESTS as usize,
        "a journey for every read: {reads}"
    );
    // The trace's latency is the guest's own: the benchmark's requests
    // (the last reads: one read and a get-id come before the run), timed
    // from their first record to their last, with the median taken as the
    // guest takes it.
    let mut bench_reads: Vec<f64> = found
        .complete
        .iter()
        .filter(|j| j.get(Step::Queued).is_some())
        .map(|j| j.latency_ticks() as f64 * 1000.0 / dump.tsc_khz as f64)
        .collect();
    bench_reads.drain(..bench_reads.len() - REQUESTS as usize);
    bench_reads.sort_by(f64::total_cmp);
    let traced = bench_reads[(bench_reads.len() - 1) / 2];
    let measured = bench.latency.median_ns as f64 / 1000.0;
    assert!(
        (traced - measured).abs() <= measured * 0.05,
        "traced median {traced:.1} µs, the guest measured {measured:.1} µs"
    );
    let analysis = analyse(&dump).expect("analysis");
    let steps: f64 = analysis
        .median_journey
        .iter()
        .map(|s| s.us_since_prev)
        .sum();
    assert!(
        (steps
            - analysis
                .median_journey
                .last()
                .map_or(0.0, |s| s.us_since_submit))
        .abs()
            < 0.01,
        "the median journey's steps add up to its latency"
    );
}

#[test]
fn a_service_vm_read_crosses_every_party_in_causal_order() {
    traced_path(Placement::ServiceVm, DoorbellMode::Thread);
}

#[test]
fn a_read_rung_on_domain_0s_exit_crosses_every_party_in_causal_order() {
    traced_path(Placement::ServiceVm, DoorbellMode::Exit);
}

#[test]
fn a_host_model_read_crosses_every_party_in_causal_order() {
    traced_path(Placement::Host, DoorbellMode::Thread);
}

/// A guest that writes nonsense into its own ring while it reads: its
/// reads all complete, its garbage is counted and refused, and Domain-0
/// and the core trace the next guest as well as before.
#[test]
fn a_guest_garbling_its_trace_ring_harms_no_one() {
    let (machine, _events) = machine_with_dom0();
    let _one = one_session();
    let disk = TempDisk::new("trace-hostile", DISK);
    let hostile = disk_guest(
        "garbler",
        "workload=tracehostile count=1000",
        &disk.path,
        false,
    );
    let (_, dump, reports) = trace_whole_life(&machine, hostile);
    let checks: Vec<_> = reports
        .iter()
        .filter_map(|r| match r {
            Report::Check { name, passed, .. } => Some((name.as_str().to_string(), *passed)),
            _ => None,
        })
        .collect();
    assert_eq!(
        checks,
        [("trace-hostile-reads".to_string(), true)],
        "{reports:?}"
    );
    let guest_ring = &dump.rings[0];
    assert_eq!(guest_ring.party, Party::Guest);
    assert!(
        guest_ring.invalid > 0 || guest_ring.dropped > 0,
        "the garbage was counted: {} invalid, {} dropped",
        guest_ring.invalid,
        guest_ring.dropped
    );
    for record in dump.rings.iter().flat_map(|r| &r.records) {
        let party = Party::from_raw(record.party).expect("a known party");
        assert!(Step::from_raw(record.step).is_some_and(|s| s.party_may_write(party)));
    }
    // Whatever the analysis makes of it, it answers.
    let _ = analyse(&dump);
    let (_, dump, reports) =
        trace_whole_life(&machine, bench_guest("after", &disk, Placement::ServiceVm));
    assert_eq!(bench_of(&reports).ops, u64::from(REQUESTS));
    assert!(check_causal_order(&journeys(&dump).complete, false) > REQUESTS as usize);
}

/// A guest destroyed while it is traced ends the session with what was
/// recorded; the core and Domain-0 go on serving.
#[test]
fn a_guest_destroyed_while_traced_ends_the_session() {
    let (machine, _events) = machine_with_dom0();
    let _one = one_session();
    let disk = TempDisk::new("trace-destroy", DISK);
    let mut config = bench_guest("doomed", &disk, Placement::ServiceVm);
    config.domain.cmdline =
        "workload=disk verify_mib=0 seed=1 bench=30000ms runs=randread-4k-qd1".into();
    let id = machine.create(config).expect("create");
    // Booted and reading.
    std::thread::sleep(Duration::from_millis(1500));
    let request = TraceRequest {
        domain: id.to_string(),
        vdev: None,
        requests: protocol::control::TRACE_MAX_REQUESTS,
        timeout_ms: 60_000,
    };
    let dump = std::thread::scope(|s| {
        let tracer = s.spawn(|| hypd::trace::trace(&machine, id, &request));
        std::thread::sleep(Duration::from_millis(20));
        machine.destroy(id).expect("destroy");
        tracer.join().expect("tracer thread")
    })
    .expect("the session ends with what it has");
    assert!(dump.stopped || !dump.timed_out, "{dump:?}");
    assert!(matches!(
        hypd::trace::trace(&machine, id, &request),
        Err(hypd::trace::TraceError::Gone(_))
    ));
    let (_, dump, reports) =
        trace_whole_life(&machine, bench_guest("next", &disk, Placement::ServiceVm));
    assert_eq!(bench_of(&reports).ops, u64::from(REQUESTS));
    assert!(check_causal_order(&journeys(&dump).complete, false) > REQUESTS as usize);
}
