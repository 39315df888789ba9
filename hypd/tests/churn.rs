//! Domains created and destroyed a hundred times, each with a disk served
//! by Domain-0, half of them in the middle of their I/O: the daemon ends
//! with the descriptors, threads and memory it had. (`cargo bench -p
//! hypd --bench churn` runs a thousand and prints the figures.)

mod common;

use common::*;

#[test]
fn a_hundred_domains_with_disks_come_and_go_without_a_trace() {
    let d = Daemon::start("churn");
    let figures = churn(&d, 100, 20);
    let (warm, end) = (figures.warm, figures.end);
    eprintln!("{figures:?}");
    assert_eq!(end.fds, warm.fds, "descriptors: {warm:?} -> {end:?}");
    assert_eq!(end.threads, warm.threads, "threads: {warm:?} -> {end:?}");
    // 80 cycles: a leak of 50 KiB a cycle shows.
    assert!(
        end.private_kib < warm.private_kib + 4096,
        "memory: {warm:?} -> {end:?}"
    );
    assert!(
        end.shmem_kib <= warm.shmem_kib + 1024,
        "no domain's RAM stays mapped: {warm:?} -> {end:?}"
    );
    assert_eq!(d.state("churn"), None);
}
