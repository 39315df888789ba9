//! A guest whose device setup fails part way is refused with the reason,
//! and leaves nothing behind: no domain, no file descriptor, no thread, no
//! Domain-0 port, no foreign window. Runs alone in its binary: it counts
//! the process's file descriptors and threads.

use hypd::files::FileError;
use hypd::{DeviceConfig, DeviceError, GuestConfig, Placement};
use protocol::device::MAX_FOREIGN_WINDOWS;
use std::path::Path;
use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(60);

/// A guest whose first disk opens and whose second does not.
fn half_good(disk: &Path, placement: Placement) -> GuestConfig {
    GuestConfig {
        domain: guest("half", "workload=idle"),
        devices: vec![
            DeviceConfig::disk("xvda", disk, false),
            DeviceConfig::disk("xvdb", "/nonexistent/xvdb.img", false),
            DeviceConfig::console(),
        ],
        placement,
    }
}

#[test]
fn a_create_that_fails_in_device_setup_leaves_nothing_behind() {
    let (machine, events) = machine_with_dom0();
    wait_console(&events, 0, "Domain-0 up", T).expect("Dom0 up");
    let disk = TempDisk::new("rollback", 8 << 20);
    let refused = |placement| match machine.create(half_good(&disk.path, placement)) {
        Err(DeviceError::Image(FileError::Io { path, .. })) => {
            assert_eq!(path, Path::new("/nonexistent/xvdb.img"))
        }
        other => panic!("{placement:?}: {other:?}"),
    };
    // Once each, before counting: whatever the first create sets up for
    // good is not a leak.
    refused(Placement::ServiceVm);
    refused(Placement::Host);
    let fds_before = sorted(open_fds());
    let threads_before = thread_count();
    let dom0_ports = machine.core().open_ports(0);

    // More failures than Domain-0 has foreign windows: a leaked window
    // would turn the error into "no free foreign window".
    for _ in 0..MAX_FOREIGN_WINDOWS + 5 {
        refused(Placement::ServiceVm);
        refused(Placement::Host);
    }
    assert_eq!(machine.core().domains().len(), 1, "only Domain-0 is left");
    assert_eq!(
        machine.core().open_ports(0),
        dom0_ports,
        "no Dom0 port left"
    );
    assert_eq!(sorted(open_fds()), fds_before, "no fd left");
    assert!(thread_count() <= threads_before, "no thread left");

    // The same disk still serves a guest.
    let good = GuestConfig {
        devices: DeviceConfig::disk_and_console(&disk.path, false),
        ..half_good(&disk.path, Placement::ServiceVm)
    };
    let good = GuestConfig {
        domain: guest("good", "workload=disk bench=none seed=5"),
        ..good
    };
    let id = machine.create(good).unwrap();
    let reports = reports_until_final(&events, id, T);
    assert!(
        reports.contains(&protocol::report::Report::DiskVerify {
            bytes: 8 << 20,
            mismatches: 0,
            ok: true
        }),
        "{reports:?}"
    );
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
