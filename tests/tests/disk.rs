//! The hybrid I/O path end to end: a guest's disk and console served by
//! backends inside Domain-0, reaching the host file through Dom0's
//! hardware queue.

use hyp::Event;
use hypd::{DoorbellMode, Machine, Placement};
use protocol::domain::{DomainState, ShutdownReason};
use protocol::report::Report;
use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(120);
const DISK: u64 = 8 << 20;

fn poweroff(machine: &Machine, id: u16) {
    let state = machine.core().domain(id).map(|d| (d.state(), d.message()));
    assert_eq!(
        state.as_ref().map(|s| s.0),
        Some(DomainState::Shutdown(ShutdownReason::Poweroff)),
        "{state:?}"
    );
}

/// Runs the integrity workload on a guest whose backends run in
/// `placement`: the guest writes a pattern, flushes, reads it back; the
/// host file must hold the pattern and the flush must have reached it.
fn integrity(placement: Placement) {
    integrity_with(placement, DoorbellMode::default(), false);
}

/// [`integrity`] on an image opened with `O_DIRECT` (`direct-io-safe`).
fn integrity_direct(placement: Placement) {
    integrity_with(placement, DoorbellMode::default(), true);
}

/// [`integrity`], with Domain-0's hardware queue rung as `doorbell` says,
/// on an image opened for direct I/O if `direct`.
fn integrity_with(placement: Placement, doorbell: DoorbellMode, direct: bool) {
    let (machine, events) = machine_with_dom0();
    machine.set_doorbell_mode(doorbell);
    let disk = TempDisk::new("integrity", DISK);
    let mut config = disk_guest(
        "writer",
        "workload=disk bench=none seed=42",
        &disk.path,
        false,
    );
    config.placement = placement;
    config.devices[0] = config.devices[0].clone().with_direct_io(direct);
    let id = machine.create(config).unwrap();
    let mut console = Vec::new();
    let mut reports = Vec::new();
    wait_for(&events, T, |e| match e {
        Event::Console { domid, line } if *domid == id => {
            console.push(line.clone());
            false
        }
        Event::Report { domid, bytes } if *domid == id => {
            reports.extend(Report::decode(bytes));
            false
        }
        Event::State { domid, state, .. } => *domid == id && state.is_final(),
        _ => false,
    })
    .expect("the guest finished");
    poweroff(&machine, id);
    assert!(
        reports.contains(&Report::DiskVerify {
            bytes: DISK,
            mismatches: 0,
            ok: true
        }),
        "{reports:?}"
    );
    let image = std::fs::read(&disk.path).unwrap();
    assert_eq!(image.len() as u64, DISK);
    assert_eq!(
        protocol::pattern::mismatches(&image, 0, 42),
        0,
        "the host file holds what the guest wrote"
    );
    // The guest's virtio console output reached its console log through
    // the console backend (Domain-0 may relay the last line after the
    // guest is gone).
    let verdict = "0 bytes mismatched -> ok";
    assert!(
        console.iter().any(|l| l.contains(verdict))
            || wait_console(&events, id, verdict, Duration::from_secs(10)).is_some(),
        "console lines from the guest: {console:?}"
    );
    let ioreqs = machine
        .core()
        .domain(id)
        .unwrap()
        .counters
        .ioreqs
        .load(std::sync::atomic::Ordering::Relaxed);
    match placement {
        Placement::ServiceVm => assert!(ioreqs > 0, "register accesses were forwarded"),
        Placement::Host => assert_eq!(ioreqs, 0, "the host model answers accesses itself"),
    }

    // The guest's flush reached the host: the backend counts the fsyncs
    // the host kernel completed on the image.
    let stats = toolstack::bench::backend_stats_at_destroy(&machine, &events, id, "xvda").unwrap();
    assert!(stats.fsyncs >= 1, "{stats:?}");
    assert!(stats.requests >= 2 * (DISK >> 20), "{stats:?}");
    assert!(stats.register_accesses > 0, "{stats:?}");
}

#[test]
fn data_written_by_the_guest_is_on_the_host_file() {
    integrity(Placement::ServiceVm);
}

#[test]
fn data_written_through_both_doorbells_is_on_the_host_file() {
    for doorbell in DoorbellMode::ALL {
        integrity_with(Placement::ServiceVm, doorbell, false);
    }
}

#[test]
fn a_direct_io_safe_disk_keeps_its_data_in_both_placements() {
    for placement in [Placement::ServiceVm, Placement::Host] {
        integrity_direct(placement);
    }
}

#[test]
fn the_host_model_keeps_the_same_data_integrity() {
    integrity(Placement::Host);
}

#[test]
fn a_read_only_disk_refuses_writes_and_stays_unchanged() {
    let (machine, events) = machine_with_dom0();
    let disk = TempDisk::new("readonly", DISK);
    let mut contents = vec![0u8; DISK as usize];
    protocol::pattern::fill(&mut contents, 0, 5);
    std::fs::write(&disk.path, &contents).unwrap();
    let id = machine
        .create(disk_guest("reader", "workload=readonly", &disk.path, true))
        .unwrap();
    let reports = reports_until_final(&events, id, T);
    poweroff(&machine, id);
    assert_eq!(
        passed_checks(&reports),
        [
            "ro-feature-offered",
            "ro-write-refused",
            "ro-read-works",
            "ro-read-last-block",
            "ro-device-live"
        ]
    );
    assert_eq!(
        std::fs::read(&disk.path).unwrap(),
        contents,
        "the read-only image is unchanged"
    );
}

#[test]
fn requests_outside_the_disk_fail_with_an_error_status() {
    let (machine, events) = machine_with_dom0();
    let disk = TempDisk::new("range", DISK);
    let id = machine
        .create(disk_guest(
            "ranger",
            "workload=outofrange",
            &disk.path,
            false,
        ))
        .unwrap();
    let reports = reports_until_final(&events, id, T);
    poweroff(&machine, id);
    assert_eq!(
        passed_checks(&reports),
        [
            "oor-read-past-end",
            "oor-write-past-end",
            "oor-read-far-past-end",
            "oor-read-straddling-end",
            "oor-write-straddling-end",
            "oor-offset-overflow",
            "oor-read-last-block-works",
            "oor-device-live"
        ]
    );
}

#[test]
fn a_hostile_guest_breaks_only_its_own_device() {
    hostile_beside_healthy(Placement::ServiceVm);
}

#[test]
fn a_hostile_guest_cannot_break_the_host_model() {
    hostile_beside_healthy(Placement::Host);
}

/// A hostile guest whose backends run in `placement` beside a healthy
/// guest served by Domain-0: every attack is refused, the healthy guest's
/// data is intact, Domain-0 and the core live on.
fn hostile_beside_healthy(placement: Placement) {
    let (machine, events) = machine_with_dom0();
    let bad_disk = TempDisk::new("hostile", DISK);
    let good_disk = TempDisk::new("healthy", DISK);
    let mut config = disk_guest("hostile", "workload=hostile", &bad_disk.path, false);
    config.placement = placement;
    let hostile = machine.create(config).unwrap();
    let healthy = machine
        .create(disk_guest(
            "healthy",
            "workload=disk bench=none seed=9",
            &good_disk.path,
            false,
        ))
        .unwrap();
    let mut hostile_reports = Vec::new();
    let mut healthy_reports = Vec::new();
    let mut finished = 0;
    wait_for(&events, T, |e| {
        match e {
            Event::Report { domid, bytes } if *domid == hostile => {
                hostile_reports.extend(Report::decode(bytes))
            }
            Event::Report { domid, bytes } if *domid == healthy => {
                healthy_reports.extend(Report::decode(bytes))
            }
            Event::State { domid, state, .. }
                if (*domid == hostile || *domid == healthy) && state.is_final() =>
            {
                finished += 1
            }
            _ => {}
        }
        finished == 2
    })
    .expect("both guests finished");
    poweroff(&machine, hostile);
    poweroff(&machine, healthy);
    // Every attack was refused and the device recovered after each.
    assert_eq!(
        passed_checks(&hostile_reports),
        [
            "hostile-baseline-read",
            "desc-addr-outside-ram",
            "desc-len-past-ram",
            "desc-chain-loop",
            "chain-longer-than-queue",
            "indirect-table-outside-ram",
            "indirect-table-past-ram",
            "indirect-len-not-multiple-of-16",
            "indirect-nested",
            "avail-idx-jump",
            "avail-head-out-of-range",
            "header-too-short",
            "status-not-writable",
            "no-writable-status"
        ]
    );
    assert!(
        healthy_reports.contains(&Report::DiskVerify {
            bytes: DISK,
            mismatches: 0,
            ok: true
        }),
        "{healthy_reports:?}"
    );
    assert_eq!(
        protocol::pattern::mismatches(&std::fs::read(&good_disk.path).unwrap(), 0, 9),
        0
    );
    assert!(
        !machine.core().domain(0).unwrap().state().is_final(),
        "Domain-0 is alive"
    );
}

#[test]
fn dom0_keeps_serving_after_a_guest_is_destroyed_mid_io() {
    let (machine, events) = machine_with_dom0();
    let first = TempDisk::new("midio", DISK);
    let id = machine
        .create(disk_guest("doomed", "workload=disk", &first.path, false))
        .unwrap();
    // Destroy it while its benchmark is running.
    wait_for(&events, T, |e| matches!(e, Event::Report { domid, bytes } if *domid == id && matches!(Report::decode(bytes), Some(Report::BlockBench(_)))))
        .expect("the benchmark started");
    machine.destroy(id).unwrap();
    assert!(
        !machine.core().domain(0).unwrap().state().is_final(),
        "Domain-0 is alive"
    );

    let second = TempDisk::new("after", DISK);
    let id = machine
        .create(disk_guest(
            "next",
            "workload=disk bench=none seed=3",
            &second.path,
            false,
        ))
        .unwrap();
    let reports = reports_until_final(&events, id, T);
    poweroff(&machine, id);
    assert!(
        reports.contains(&Report::DiskVerify {
            bytes: DISK,
            mismatches: 0,
            ok: true
        }),
        "{reports:?}"
    );
    // And the guests' event channels to Dom0 still work.
    let pinger = machine
        .create(hypd::GuestConfig::new(guest(
            "pinger",
            "workload=pingpong count=20",
        )))
        .unwrap();
    assert_eq!(reports_until_final(&events, pinger, T).len(), 1);
}
