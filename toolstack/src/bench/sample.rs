//! What one run measured ([`Sample`]) and the counts along its path
//! ([`Counters`]).

use protocol::bench::Workload;
use protocol::report::LatencyHistogram;
use serde::Serialize;

/// Counts along the I/O path (totals for a run; per request in the
/// summary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Counters {
    /// The guest's vCPU exits to the core's user space.
    pub guest_exits: f64,
    /// Domain-0's vCPU exits to the core's user space.
    pub dom0_exits: f64,
    /// Register accesses forwarded to Domain-0 as ioreqs.
    pub ioreqs: f64,
    /// Queue notifications the guest wrote (ioeventfd: in-kernel kicks).
    pub guest_kicks: f64,
    /// Times the polling backend found requests no kick announced.
    pub backend_polls: f64,
    /// Device interrupts injected into the guest.
    pub guest_interrupts: f64,
    /// Event-channel interrupts Domain-0 took.
    pub dom0_interrupts: f64,
    /// Times the backend's CPU woke to serve: Domain-0 halts that ended,
    /// or the host model's worker waits that returned.
    pub backend_wakeups: f64,
    /// Host system calls: `io_uring_enter` (native thread, host-model
    /// worker, or the core's doorbell for Domain-0's hardware queue) plus
    /// the `KVM_RUN` that resumes a vCPU after each exit.
    pub host_syscalls: f64,
}

impl Counters {
    /// How many fields there are.
    const FIELDS: usize = 9;

    /// The fields, in declaration order.
    fn to_array(self) -> [f64; Self::FIELDS] {
        [
            self.guest_exits,
            self.dom0_exits,
            self.ioreqs,
            self.guest_kicks,
            self.backend_polls,
            self.guest_interrupts,
            self.dom0_interrupts,
            self.backend_wakeups,
            self.host_syscalls,
        ]
    }

    /// Counters from their fields in declaration order.
    fn from_array(f: [f64; Self::FIELDS]) -> Self {
        Counters {
            guest_exits: f[0],
            dom0_exits: f[1],
            ioreqs: f[2],
            guest_kicks: f[3],
            backend_polls: f[4],
            guest_interrupts: f[5],
            dom0_interrupts: f[6],
            backend_wakeups: f[7],
            host_syscalls: f[8],
        }
    }

    /// `self - other`, field by field, never below zero.
    pub(super) fn minus(&self, other: &Counters) -> Counters {
        let (a, b) = (self.to_array(), other.to_array());
        Self::from_array(std::array::from_fn(|i| (a[i] - b[i]).max(0.0)))
    }

    /// Every field divided by `n`.
    pub(super) fn per(&self, n: f64) -> Counters {
        Self::from_array(self.to_array().map(|v| v / n.max(1.0)))
    }

    /// The median of each field over `all`.
    pub(super) fn median(all: &[Counters]) -> Counters {
        let arrays: Vec<[f64; Self::FIELDS]> = all.iter().map(|c| c.to_array()).collect();
        Self::from_array(std::array::from_fn(|i| {
            median(arrays.iter().map(|a| a[i]).collect())
        }))
    }
}

/// One run of one workload in one placement.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Median request latency.
    pub median_ns: u64,
    /// 99th-percentile request latency.
    pub p99_ns: u64,
    /// Requests completed.
    pub ops: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Length of the run.
    pub elapsed_ns: u64,
    /// Latency distribution.
    pub histogram: LatencyHistogram,
    /// Counts along the path, totals for the run.
    pub counters: Counters,
}

/// Every sample, by workload then placement (in [`PLACEMENTS`] order).
pub type Samples = Vec<(Workload, [Vec<Sample>; 5])>;

/// The median of `values` (0 when empty).
pub(super) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}
