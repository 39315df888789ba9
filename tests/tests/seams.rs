//! The seams the core offers device setup, tried on their own with a real
//! Domain-0: pages of its reserved RAM, foreign windows onto a guest, MMIO
//! ranges with a handler.

use hyp::{Error, MmioAccess, MmioHandler};
use protocol::device::{DEVICE_MMIO_BASE, MAX_FOREIGN_WINDOWS};
use protocol::memory::{HYPERCALL_ADDR, PAGE_SIZE};
use std::sync::Arc;
use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn reserved_pages_are_zeroed_runs_that_run_out_and_come_back() {
    let (hv, _events) = with_dom0();
    let start = hv.dom0_reserved_start().unwrap();
    let dom0 = hv.domain(0).unwrap();
    let first = hv.dom0_pages(4).unwrap();
    assert_eq!(first.bytes(), 4 * PAGE_SIZE);
    assert!(first.gpa() >= start && first.gpa() + first.bytes() <= dom0.ram().size());
    assert_eq!(first.host_addr(), dom0.ram().host_address() + first.gpa());
    let other = hv.dom0_pages(1).unwrap();
    assert!(
        other.gpa() + PAGE_SIZE <= first.gpa() || other.gpa() >= first.gpa() + first.bytes(),
        "runs lent out do not overlap"
    );
    // Pages come back zeroed.
    assert!(other.write_struct(
        0,
        &protocol::hypercall::DomainInfo {
            domid: 7,
            ..Default::default()
        }
    ));
    assert!(!other.write_struct(PAGE_SIZE - 8, &protocol::hypercall::DomainInfo::default()));
    let at = other.gpa();
    drop(other);
    let again = hv.dom0_pages(1).unwrap();
    assert_eq!(again.gpa(), at, "a dropped page is given back at once");
    assert_eq!(
        dom0.ram().read(at, PAGE_SIZE).unwrap(),
        vec![0; PAGE_SIZE as usize]
    );

    // Take every run of 16 pages there is, then one more.
    let mut held = Vec::new();
    loop {
        match hv.dom0_pages(16) {
            Ok(pages) => held.push(pages),
            Err(Error::ReservedFull(16)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(held.len() > 8, "{} runs", held.len());
    let mut last = held.pop().unwrap();
    let freed = last.gpa();
    last.quarantine_when_dropped();
    drop(last);
    assert!(
        matches!(hv.dom0_pages(16), Err(Error::ReservedFull(16))),
        "quarantined pages are not lent again at once"
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        hv.dom0_pages(16).unwrap().gpa(),
        freed,
        "they come back after the quarantine"
    );
}

#[test]
fn foreign_windows_check_their_range_and_give_their_slot_back() {
    let (hv, events) = with_dom0();
    let id = hv
        .create_domain(guest("windowed", "workload=idle"))
        .unwrap();
    wait_console(&events, id, "workload idle", T).expect("guest up");
    let ram = hv.domain(id).unwrap().ram().size();
    let bad = |start, len| matches!(hv.map_foreign(id, start, len), Err(Error::BadWindow { .. }));
    assert!(bad(0, 0), "empty");
    assert!(bad(100, PAGE_SIZE), "not whole pages");
    assert!(bad(0, ram + PAGE_SIZE), "past the guest's RAM");
    assert!(matches!(
        hv.map_foreign(999, 0, PAGE_SIZE),
        Err(Error::NoSuchDomain(999))
    ));
    // One page, the size of a grant.
    let page = hv.map_foreign(id, 8 << 20, PAGE_SIZE).unwrap();
    assert_eq!((page.start(), page.bytes()), (8 << 20, PAGE_SIZE));
    assert_eq!(
        page.host_addr(),
        hv.domain(id).unwrap().ram().host_address() + (8 << 20)
    );
    let whole = hv.map_foreign(id, 0, ram).unwrap();
    assert_ne!(whole.dom0_base(), page.dom0_base(), "a slot each");
    let mut windows = vec![page, whole];
    loop {
        match hv.map_foreign(id, 0, PAGE_SIZE) {
            Ok(window) => windows.push(window),
            Err(Error::NoFreeWindow) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(windows.len(), MAX_FOREIGN_WINDOWS);
    let base = windows.pop().unwrap().dom0_base();
    let reused = hv.map_foreign(id, 0, PAGE_SIZE).unwrap();
    assert_eq!(
        reused.dom0_base(),
        base,
        "a dropped window's slot is free again"
    );
}

/// A handler that answers every read with its offset.
struct Offsets;

impl MmioHandler for Offsets {
    fn read(&self, access: &MmioAccess) -> u64 {
        access.offset
    }

    fn write(&self, _: &MmioAccess, _: u64) {}
}

#[test]
fn mmio_ranges_lie_in_the_device_hole_and_do_not_overlap() {
    let (hv, events) = with_dom0();
    let id = hv.create_domain(guest("ranged", "workload=idle")).unwrap();
    wait_console(&events, id, "workload idle", T).expect("guest up");
    let handler: Arc<dyn MmioHandler> = Arc::new(Offsets);
    let refused = |base, len| {
        matches!(
            hv.add_mmio_handler(id, base, len, Arc::clone(&handler)),
            Err(Error::MmioRange { .. })
        )
    };
    assert!(refused(0x10_0000, 0x1000), "RAM is no MMIO range");
    assert!(
        refused(HYPERCALL_ADDR, 0x1000),
        "the hypercall page is the core's"
    );
    assert!(refused(DEVICE_MMIO_BASE, 0), "empty");
    assert!(refused(u64::MAX - 0xFFF, 0x2000), "wraps");
    hv.add_mmio_handler(id, DEVICE_MMIO_BASE, 0x1000, Arc::clone(&handler))
        .unwrap();
    assert!(refused(DEVICE_MMIO_BASE + 0x800, 0x1000), "overlaps");
    assert!(hv
        .add_mmio_handler(id, DEVICE_MMIO_BASE + 0x1000, 0x1000, Arc::clone(&handler))
        .is_ok());
    assert!(hv.remove_mmio_handler(id, DEVICE_MMIO_BASE).is_some());
    assert!(hv.remove_mmio_handler(id, DEVICE_MMIO_BASE).is_none());
    assert!(matches!(
        hv.add_mmio_handler(999, DEVICE_MMIO_BASE, 0x1000, handler),
        Err(Error::NoSuchDomain(999))
    ));
}

#[test]
fn running_out_of_ports_says_which_limit() {
    let (hv, events) = with_dom0();
    wait_console(&events, 0, "Domain-0 up", T).expect("Dom0 up");
    let mut taken = 0;
    loop {
        match hv.bind_eventfd_port(0, None, None) {
            Ok(_) => taken += 1,
            Err(Error::PortsExhausted { domid: 0 }) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(taken > 100, "{taken}");
    // A guest's control channel needs one of Domain-0's ports.
    let err = hv
        .create_domain(guest("one-too-many", "workload=idle"))
        .unwrap_err();
    assert!(matches!(err, Error::PortsExhausted { domid: 0 }), "{err}");
    assert!(err.to_string().contains("127 event-channel ports"), "{err}");
    assert_eq!(hv.domains().len(), 1, "nothing left behind");
}
