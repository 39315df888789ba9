//! Destroy gives back everything a domain held, and a failed create leaves
//! nothing behind. Runs alone in its binary: it counts the process's file
//! descriptors and threads.

use hyp::elf::ElfError;
use hyp::Error;
use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn destroy_frees_memfd_threads_and_eventfds_and_bad_kernels_leave_nothing() {
    let (hv, events) = with_dom0();
    wait_console(&events, 0, "Domain-0 up", T).expect("Dom0 up");
    let fds_before = open_fds();
    let threads_before = thread_count();

    let mut config = guest("counted", "workload=pingpong count=1000000");
    config.vcpus = 2;
    let id = hv.create_domain(config).unwrap();
    wait_console(&events, id, "bound local port", T).expect("guest bound its channel");
    let fds_running = open_fds();
    assert!(
        fds_running
            .iter()
            .any(|f| f.contains("memfd:hyp-ram-counted")),
        "guest RAM is a memfd: {fds_running:?}"
    );
    assert!(
        fds_running.iter().filter(|f| f.contains("eventfd")).count()
            > fds_before.iter().filter(|f| f.contains("eventfd")).count()
    );
    // One thread per vCPU (newer kernels add a KVM worker per VM as well).
    assert!(thread_count() >= threads_before + 2, "one thread per vCPU");

    hv.destroy(id).unwrap();
    let mut after = open_fds();
    let mut before = fds_before.clone();
    after.sort();
    before.sort();
    assert_eq!(after, before, "every fd of the domain is closed");
    assert_eq!(thread_count(), threads_before, "every vCPU thread is gone");

    // Kernels that cannot load: a clear error, and no trace of a domain.
    let good = kernels::FRONTENDS;
    let mut wrong_machine = good.to_vec();
    wrong_machine[18..20].copy_from_slice(&183u16.to_le_bytes()); // aarch64
    type Check = fn(&ElfError) -> bool;
    let cases: Vec<(&str, Vec<u8>, Check)> = vec![
        ("truncated-header", good[..40].to_vec(), |e| {
            matches!(e, ElfError::TooShort(40))
        }),
        ("truncated-segment", good[..good.len() / 2].to_vec(), |e| {
            matches!(e, ElfError::SegmentTruncated { .. })
        }),
        ("wrong-machine", wrong_machine, |e| {
            matches!(e, ElfError::WrongMachine(183))
        }),
        ("not-elf", b"#!/bin/sh\necho hello\n".repeat(8), |e| {
            matches!(e, ElfError::BadMagic)
        }),
        ("outside-ram", tiny_elf(&[0xF4], 64 << 20, 0x1000), |e| {
            matches!(e, ElfError::SegmentOutsideRam { .. })
        }),
        (
            "huge-bss",
            tiny_elf(&[0xF4], protocol::memory::KERNEL_BASE, 1 << 40),
            |e| matches!(e, ElfError::SegmentOutsideRam { .. }),
        ),
        ("below-base", tiny_elf(&[0xF4], 0x1000, 0x1000), |e| {
            matches!(e, ElfError::SegmentOutsideRam { .. })
        }),
    ];
    for (name, kernel, expected) in cases {
        let mut config = guest(name, "");
        config.kernel = kernel;
        match hv.create_domain(config).unwrap_err() {
            Error::Elf(e) => assert!(expected(&e), "{name}: unexpected '{e}'"),
            other => panic!("{name}: not an ELF error: '{other}'"),
        }
        assert_eq!(hv.domains().len(), 1, "{name}: no domain left behind");
    }
    let mut after = open_fds();
    after.sort();
    assert_eq!(after, before, "failed creates leak no fd");
    assert_eq!(thread_count(), threads_before);

    // Domain ids keep counting; a new guest still works.
    let id = hv
        .create_domain(guest("after", "workload=pingpong count=10"))
        .unwrap();
    assert!(id > 1);
    reports_until_final(&events, id, T);
}
