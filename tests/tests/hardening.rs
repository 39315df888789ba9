//! What a careless user or a hostile client could do to the daemon's
//! machinery, refused with the reason: one image written by two guests,
//! concurrent creates of one name, more RAM than the host has, bad device
//! names and disk targets.

use hyp::{Error, MemoryReport};
use hypd::files::FileError;
use hypd::{DeviceConfig, DeviceError, GuestConfig, Placement};
use nix::fcntl::{Flock, FlockArg};
use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(30);

/// An idle guest with `disk` as `xvda`, `readonly` or not.
fn idle_with(name: &str, disk: &std::path::Path, readonly: bool) -> GuestConfig {
    GuestConfig {
        domain: guest(name, "workload=idle"),
        devices: vec![DeviceConfig::disk("xvda", disk, readonly)],
        placement: Placement::ServiceVm,
    }
}

#[test]
fn an_image_has_one_writer_or_many_readers() {
    let (machine, events) = machine_with_dom0();
    wait_console(&events, 0, "Domain-0 up", T).expect("Dom0 up");
    let disk = TempDisk::new("shared", 1 << 20);
    let writer = machine
        .create(idle_with("writer", &disk.path, false))
        .unwrap();
    // A second writer, by create or by attach, and even a reader, are
    // refused, naming the writer.
    for readonly in [false, true] {
        match machine.create(idle_with("second", &disk.path, readonly)) {
            Err(DeviceError::ImageInUse {
                domid,
                name,
                writable: true,
                ..
            }) => assert_eq!((domid, name.as_str()), (writer, "writer")),
            other => panic!("{other:?}"),
        }
    }
    let idle = machine
        .create(hypd::GuestConfig::new(guest("idle", "workload=idle")))
        .unwrap();
    assert!(matches!(
        machine.attach_device(idle, DeviceConfig::disk("xvdb", &disk.path, false)),
        Err(DeviceError::ImageInUse { .. })
    ));
    // Through another path to the same file (a symbolic link): the same.
    let link = disk.path.with_file_name("link.img");
    std::os::unix::fs::symlink(&disk.path, &link).unwrap();
    assert!(matches!(
        machine.create(idle_with("linked", &link, false)),
        Err(DeviceError::ImageInUse { .. })
    ));
    machine.destroy(writer).unwrap();
    // Readers share.
    let a = machine
        .create(idle_with("reader-a", &disk.path, true))
        .unwrap();
    let b = machine.create(idle_with("reader-b", &link, true)).unwrap();
    assert!(matches!(
        machine.create(idle_with("writer-2", &disk.path, false)),
        Err(DeviceError::ImageInUse {
            writable: false,
            ..
        })
    ));
    machine.destroy(a).unwrap();
    machine.destroy(b).unwrap();
    // Another process's lock (another hypd) is honoured too.
    let held = Flock::lock(
        std::fs::File::open(&disk.path).unwrap(),
        FlockArg::LockExclusiveNonblock,
    )
    .unwrap();
    assert!(matches!(
        machine.create(idle_with("late", &disk.path, true)),
        Err(DeviceError::ImageLocked(_))
    ));
    drop(held);
    let last = machine
        .create(idle_with("last", &disk.path, false))
        .unwrap();
    machine.destroy(last).unwrap();
}

#[test]
fn an_image_whose_domain_is_being_torn_down_is_waited_for() {
    let (machine, events) = machine_with_dom0();
    wait_console(&events, 0, "Domain-0 up", T).expect("Dom0 up");
    let disk = TempDisk::new("teardown", 1 << 20);
    let first = machine
        .create(idle_with("first", &disk.path, false))
        .unwrap();
    // The core lets the domain go first (it leaves `xl list`, its name is
    // free); its devices, and its claim on the image, go a moment later.
    machine.core().destroy(first).unwrap();
    let machine = std::sync::Arc::new(machine);
    let next = {
        let machine = std::sync::Arc::clone(&machine);
        let path = disk.path.clone();
        std::thread::spawn(move || machine.create(idle_with("first", &path, false)))
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(!next.is_finished(), "the create waits for the teardown");
    machine.destroy(first).unwrap();
    let second = next.join().unwrap().expect("the image, once let go");
    machine.destroy(second).unwrap();
}

#[test]
fn concurrent_creates_of_one_name_make_one_domain() {
    let (hv, events) = with_dom0();
    wait_console(&events, 0, "Domain-0 up", T).expect("Dom0 up");
    let hv = std::sync::Arc::new(hv);
    let outcomes: Vec<_> = (0..20)
        .map(|_| {
            let hv = std::sync::Arc::clone(&hv);
            std::thread::spawn(move || hv.create_domain(guest("idle", "workload=idle")))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let made = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(made, 1, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .all(|e| matches!(e, Error::NameTaken(n) if n == "idle")));
    let named = hv.domains().iter().filter(|d| d.name() == "idle").count();
    assert_eq!(named, 1);
}

#[test]
fn creates_that_the_hosts_ram_cannot_hold_are_refused() {
    let (hv, events) = with_dom0();
    wait_console(&events, 0, "Domain-0 up", T).expect("Dom0 up");
    let before = hv.memory();
    assert_eq!(before.domains_mib, 64, "Domain-0's 64 MiB");
    // Leave room for one 32 MiB guest and a little.
    hv.set_host_reserve_mib(before.total_mib - 64 - 40);
    assert_eq!(hv.memory().free_mib, 40);
    let first = hv.create_domain(guest("fits", "workload=idle")).unwrap();
    match hv.create_domain(guest("too-many", "workload=idle")) {
        Err(Error::OutOfMemory {
            asked_mib: 32,
            report: MemoryReport { free_mib: 8, .. },
        }) => {}
        other => panic!("{other:?}"),
    }
    hv.destroy(first).unwrap();
    assert_eq!(hv.memory().free_mib, 40, "destroy gives the RAM back");
    hv.create_domain(guest("fits-again", "workload=idle"))
        .unwrap();
}

#[test]
fn device_names_and_disk_targets_are_checked_by_the_daemon_itself() {
    let (machine, events) = machine_with_dom0();
    wait_console(&events, 0, "Domain-0 up", T).expect("Dom0 up");
    let disk = TempDisk::new("names", 1 << 20);
    for bad in ["../../etc", "xvda\nforged", "", "console", "vda"] {
        let config = GuestConfig {
            devices: vec![DeviceConfig::disk(bad, &disk.path, false)],
            ..GuestConfig::new(guest("named", "workload=idle"))
        };
        assert!(
            matches!(machine.create(config), Err(DeviceError::BadVdev(ref v)) if v == bad),
            "{bad:?}"
        );
    }
    let zero = machine.create(idle_with(
        "target",
        std::path::Path::new("/dev/zero"),
        false,
    ));
    assert!(
        matches!(
            zero,
            Err(DeviceError::Image(FileError::WrongKind {
                found: "a character device",
                ..
            }))
        ),
        "{zero:?}"
    );
    let short = disk.path.with_file_name("short.img");
    std::fs::write(&short, [0u8; 1000]).unwrap();
    let short = machine.create(idle_with("target", &short, false));
    assert!(
        matches!(
            short,
            Err(DeviceError::Image(FileError::NotSectors {
                bytes: 1000,
                ..
            }))
        ),
        "{short:?}"
    );
    assert_eq!(machine.core().domains().len(), 1);
}
