//! Domain-0 restarts under running guests, and they lose nothing: a guest
//! writes, flushes and reads back its whole 64 MiB disk, round after
//! round, while Domain-0 is crashed (an NMI it treats as fatal, as Linux
//! does with `panic_on_unrecovered_nmi`) or rebooted at random moments;
//! every round verifies, the host file holds the last round's pattern,
//! console lines keep coming, and a host-model guest beside it is not
//! disturbed. Each restart's stall is printed, split into its parts.

use hyp::Event;
use hypd::{Dom0Restart, GuestConfig, Machine, Placement};
use protocol::boot::ControlRequest;
use protocol::domain::{DomId, DomainState, DOM0};
use protocol::report::Report;
use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use tests::*;

const DISK: u64 = 64 << 20;
const T: Duration = Duration::from_secs(600);

/// How Domain-0 is stopped.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    /// `xl trigger 0 nmi`.
    Nmi,
    /// `xl reboot 0`: Domain-0 finishes its host I/O, then reboots.
    Reboot,
}

/// A small generator, seeded from the clock (the seed is printed).
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("random moments from seed {seed:#x}");
        Self(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What one guest did.
#[derive(Default, Debug)]
struct Seen {
    reports: Vec<Report>,
    console: Vec<String>,
}

/// One restart as the guest saw it: Domain-0 stopped at `stopped`, the
/// guest's next request completed `stall` later.
#[derive(Debug)]
struct Stall {
    restart: Dom0Restart,
    /// From the stop to the restart's start (the core noticing).
    noticed: Duration,
    /// From the stop to the guest's next completed request.
    stall: Duration,
    /// The guests still running when Domain-0 stopped.
    running: Vec<DomId>,
}

/// Runs `guests` until all stop, stopping Domain-0 `stops` times at random
/// moments (`how`) and restarting it each time, as hypd does. Returns what
/// each guest did and the stalls.
fn run(
    machine: &Machine,
    events: &Receiver<Event>,
    guests: &[DomId],
    stops: usize,
    how: Stop,
    watched: DomId,
) -> (HashMap<DomId, Seen>, Vec<Stall>) {
    let mut rng = Rng::new();
    let mut seen: HashMap<DomId, Seen> = guests.iter().map(|&g| (g, Seen::default())).collect();
    let mut left: Vec<DomId> = guests.to_vec();
    let mut stalls = Vec::new();
    let deadline = Instant::now() + T;
    let mut next_stop = Instant::now() + Duration::from_millis(200 + rng.below(400));
    let mut stopped: Option<Instant> = None;
    let mut pending: Option<(Dom0Restart, Instant, Duration, u64, Vec<DomId>)> = None;
    while !left.is_empty() {
        assert!(Instant::now() < deadline, "the guests did not finish");
        let progress = machine.core().domain(watched).map_or(0, |d| d.progress());
        if let Some((restart, at, noticed, before, running)) = pending.take() {
            if progress != before || !left.contains(&watched) {
                stalls.push(Stall {
                    restart,
                    noticed,
                    stall: at.elapsed(),
                    running,
                });
            } else {
                pending = Some((restart, at, noticed, before, running));
            }
        }
        let dom0_up = machine
            .core()
            .domain(DOM0)
            .is_some_and(|d| !d.state().is_final());
        if stopped.is_none()
            && pending.is_none()
            && stalls.len() < stops
            && dom0_up
            && Instant::now() >= next_stop
        {
            match how {
                Stop::Nmi => machine.core().inject_nmi(DOM0).unwrap(),
                Stop::Reboot => machine
                    .core()
                    .request_shutdown(DOM0, ControlRequest::Reboot)
                    .unwrap(),
            }
            stopped = Some(Instant::now());
        }
        let Ok(event) = events.recv_timeout(Duration::from_millis(1)) else {
            continue;
        };
        match event {
            Event::Console { domid, line } => {
                if let Some(s) = seen.get_mut(&domid) {
                    s.console.push(line);
                }
            }
            Event::Report { domid, bytes } => {
                if let Some(s) = seen.get_mut(&domid) {
                    s.reports.extend(Report::decode(&bytes));
                }
            }
            Event::State {
                domid,
                state,
                message,
            } if domid == DOM0 && state.is_final() => {
                let at = stopped.take().unwrap_or_else(Instant::now);
                let noticed = at.elapsed();
                let before = machine.core().domain(watched).map_or(0, |d| d.progress());
                let why = message.unwrap_or_else(|| format!("{state:?}"));
                let restart = machine.restart_dom0(&why).expect("Domain-0 restarts");
                pending = Some((restart, at, noticed, before, left.clone()));
                next_stop = Instant::now() + Duration::from_millis(20 + rng.below(300));
            }
            Event::State { domid, state, .. } if state.is_final() => left.retain(|&g| g != domid),
            _ => {}
        }
    }
    // The last console lines may come after their guest stopped.
    while let Ok(event) = events.recv_timeout(Duration::from_millis(500)) {
        if let Event::Console { domid, line } = event {
            if let Some(s) = seen.get_mut(&domid) {
                s.console.push(line);
            }
        }
    }
    (seen, stalls)
}

/// A guest running `rounds` integrity rounds over its own 64 MiB disk.
fn writer(
    name: &str,
    seed: u64,
    rounds: u32,
    disk: &TempDisk,
    placement: Placement,
) -> GuestConfig {
    let cmdline = format!("workload=disk count={rounds} bench=none seed={seed}");
    let mut config = disk_guest(name, &cmdline, &disk.path, false);
    config.domain.memory_mib = 80;
    config.placement = placement;
    config
}

/// Every round of `seen` verified, its console said so, and its disk holds
/// the last round's pattern (flushed before it was read back).
fn check_writer(
    machine: &Machine,
    id: DomId,
    seen: &Seen,
    rounds: u32,
    seed: u64,
    disk: &TempDisk,
) {
    let state = machine.core().domain(id).map(|d| (d.state(), d.message()));
    assert!(
        matches!(
            state,
            Some((
                DomainState::Shutdown(protocol::domain::ShutdownReason::Poweroff),
                _
            ))
        ),
        "domain {id}: {state:?}\n{:#?}",
        seen.console
    );
    let verified: Vec<_> = seen
        .reports
        .iter()
        .filter(|r| matches!(r, Report::DiskVerify { .. }))
        .collect();
    assert_eq!(
        verified.len(),
        rounds as usize,
        "domain {id}: {:?}",
        seen.reports
    );
    for r in &verified {
        assert_eq!(
            **r,
            Report::DiskVerify {
                bytes: DISK,
                mismatches: 0,
                ok: true
            },
            "domain {id}"
        );
    }
    let ok_lines = seen
        .console
        .iter()
        .filter(|l| l.contains("0 bytes mismatched -> ok"))
        .count();
    assert_eq!(
        ok_lines, rounds as usize,
        "console lines of domain {id}: {:#?}",
        seen.console
    );
    let image = std::fs::read(&disk.path).unwrap();
    assert_eq!(
        protocol::pattern::mismatches(&image, 0, seed + u64::from(rounds) - 1),
        0,
        "domain {id}'s host file holds its last round"
    );
}

/// Prints the stalls: median and max, and their parts.
fn report(what: &str, stalls: &[Stall]) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut total: Vec<f64> = stalls.iter().map(|s| ms(s.stall)).collect();
    total.sort_by(f64::total_cmp);
    let median = |f: &dyn Fn(&Stall) -> Duration| {
        let mut v: Vec<f64> = stalls.iter().map(|s| ms(f(s))).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    eprintln!(
        "{what}: {} restarts; guest stall median {:.1} ms, max {:.1} ms; median parts: noticed {:.1}, drain {:.1}, rebuild {:.1}, re-attach {:.1}, resume {:.1} ms",
        stalls.len(),
        total[total.len() / 2],
        total[total.len() - 1],
        median(&|s| s.noticed),
        median(&|s| s.restart.drain),
        median(&|s| s.restart.rebuild),
        median(&|s| s.restart.reattach),
        median(&|s| s.stall.saturating_sub(s.noticed + s.restart.total())),
    );
}

/// The test: twenty stops at random moments under a service-VM
/// writer, a host-model writer beside it, and a hostile guest attacking
/// its own Domain-0-served disk meanwhile (its attacks' verdicts may
/// change when a restart lands in one: only its ending is checked).
fn twenty_stops(how: Stop) {
    let (machine, events) = machine_with_dom0();
    let (hybrid_disk, host_disk) = (
        TempDisk::new("restart-vm", DISK),
        TempDisk::new("restart-host", DISK),
    );
    let rounds = 40;
    let hybrid = machine
        .create(writer(
            "hybrid",
            100,
            rounds,
            &hybrid_disk,
            Placement::ServiceVm,
        ))
        .unwrap();
    let host = machine
        .create(writer("host", 200, rounds, &host_disk, Placement::Host))
        .unwrap();
    let hostile_disk = TempDisk::new("restart-hostile", DISK);
    let hostile = machine
        .create(disk_guest(
            "hostile",
            "workload=hostile count=12",
            &hostile_disk.path,
            false,
        ))
        .unwrap();
    let guests = [hybrid, host, hostile];
    let (seen, stalls) = run(&machine, &events, &guests, 20, how, hybrid);
    report(&format!("{how:?}"), &stalls);
    assert_eq!(
        stalls.len(),
        20,
        "Domain-0 stopped 20 times while the guest ran"
    );
    assert_eq!(machine.dom0_restarts().count, 20);
    check_writer(&machine, hybrid, &seen[&hybrid], rounds, 100, &hybrid_disk);
    check_writer(&machine, host, &seen[&host], rounds, 200, &host_disk);
    let beside = stalls
        .iter()
        .filter(|s| s.running.contains(&hostile))
        .count();
    eprintln!("{how:?}: {beside} restarts while the hostile guest ran");
    assert!(beside > 0, "Domain-0 restarted while the hostile guest ran");
    let hostile_end = machine.core().domain(hostile).map(|d| d.state());
    assert!(
        hostile_end.is_some_and(|s| s.is_final()),
        "the hostile guest ended: {hostile_end:?}\n{:#?}",
        seen[&hostile].console
    );
}

#[test]
fn twenty_crashes_at_random_moments_lose_no_byte() {
    twenty_stops(Stop::Nmi);
}

#[test]
fn twenty_reboots_at_random_moments_lose_no_byte() {
    twenty_stops(Stop::Reboot);
}

#[test]
fn a_crash_while_the_guest_sets_its_devices_up_is_taken_over() {
    let (machine, events) = machine_with_dom0();
    let disk = TempDisk::new("restart-setup", DISK);
    let id = machine
        .create(writer("early", 300, 2, &disk, Placement::ServiceVm))
        .unwrap();
    // At once: the guest is between its register accesses, some waiting
    // in their ioreq slots for the Domain-0 that is about to die.
    machine.core().inject_nmi(DOM0).unwrap();
    let (seen, stalls) = run(&machine, &events, &[id], 0, Stop::Nmi, id);
    assert_eq!(stalls.len(), 1, "{:#?}", seen[&id].console);
    check_writer(&machine, id, &seen[&id], 2, 300, &disk);
}

#[test]
fn a_crash_while_a_disk_is_hot_plugged_is_taken_over() {
    let (machine, events) = machine_with_dom0();
    let disk = TempDisk::new("restart-hotplug", DISK);
    let mut config = tests::disk_guest("host", "workload=idle seed=400", &disk.path, false);
    config.devices.remove(0);
    config.domain.memory_mib = 80;
    let id = machine.create(config).unwrap();
    wait_console(&events, id, "workload idle", Duration::from_secs(60)).expect("the guest idles");
    machine
        .attach_device(id, hypd::DeviceConfig::disk("xvdb", &disk.path, false))
        .unwrap();
    machine.core().inject_nmi(DOM0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut console = Vec::new();
    let mut restarted = 0;
    while !console.iter().any(|l: &String| l.contains("xvdb: pattern")) {
        assert!(Instant::now() < deadline, "{console:#?}");
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok(Event::Console { domid, line }) if domid == id => console.push(line),
            Ok(Event::State {
                domid,
                state,
                message,
            }) if domid == DOM0 && state.is_final() => {
                machine.restart_dom0(&message.unwrap_or_default()).unwrap();
                restarted += 1;
            }
            _ => {}
        }
    }
    assert_eq!(restarted, 1);
    assert!(
        console
            .iter()
            .any(|l| l.contains("xvdb: pattern") && l.contains("0 bytes mismatched -> ok")),
        "{console:#?}"
    );
    machine.destroy(id).unwrap();
}
