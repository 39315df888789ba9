//! What `xl bench` is asked to do, and the placements it compares.

use hypd::{DoorbellMode, Placement};
use std::path::PathBuf;

/// The placements, in the order each round runs them: natively, in the
/// host model, and through the service VM with each of Domain-0's
/// doorbells ([`GUEST_PLACEMENTS`]).
pub const PLACEMENTS: [&str; 5] = [
    "native",
    "host",
    "service-vm",
    "service-vm-thread",
    "service-vm-sqpoll",
];

/// The placements with a guest, with the doorbell Domain-0's hardware
/// queues get in each (the host model has none): `service-vm` has hypd's
/// default doorbell (the exit), `service-vm-thread` and
/// `service-vm-sqpoll` the others, measured beside it.
pub const GUEST_PLACEMENTS: [(&str, Placement, DoorbellMode); 4] = [
    ("host", Placement::Host, DoorbellMode::Exit),
    ("service-vm", Placement::ServiceVm, DoorbellMode::Exit),
    (
        "service-vm-thread",
        Placement::ServiceVm,
        DoorbellMode::Thread,
    ),
    (
        "service-vm-sqpoll",
        Placement::ServiceVm,
        DoorbellMode::SqPoll,
    ),
];

/// What `xl bench` was asked to do.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Rounds of every workload in every placement.
    pub rounds: usize,
    /// Length of one run, in milliseconds.
    pub run_ms: u64,
    /// Size of the disk image, in MiB.
    pub disk_mib: u64,
    /// Where the disk image lives (its filesystem decides what a flush
    /// costs).
    pub dir: PathBuf,
    /// The workloads to run (all when empty; `block` and `net` name each
    /// group).
    pub workloads: Vec<String>,
    /// Pings and 1-byte TCP round trips per network run.
    pub net_count: u32,
    /// MiB each network stream carries.
    pub net_mib: u64,
    /// Progress goes to stderr instead of stdout (stdout has the JSON).
    pub quiet: bool,
    /// After the rounds, trace one more run of each block workload in
    /// each guest placement (`--trace`).
    pub trace: bool,
    /// The image opened with `O_DIRECT` in every placement (`--direct`:
    /// Xen's `direct-io-safe`), so the disk, not the page cache, sets the
    /// time.
    pub direct: bool,
}

impl BenchOptions {
    /// The `--quick` settings: done in well under a minute.
    pub fn quick() -> Self {
        Self {
            rounds: 3,
            run_ms: 100,
            disk_mib: 32,
            dir: std::env::temp_dir(),
            workloads: Vec::new(),
            net_count: 200,
            net_mib: 4,
            quiet: false,
            trace: false,
            direct: false,
        }
    }

    /// The default settings.
    pub fn full() -> Self {
        Self {
            rounds: 5,
            run_ms: 1000,
            disk_mib: 64,
            net_count: 1000,
            net_mib: 32,
            ..Self::quick()
        }
    }
}
