//! The block benchmark's workloads, defined once for the guest that runs
//! them through its virtio-blk driver and for the host that runs the same
//! pattern natively with io_uring (`xl bench`).

/// One benchmark workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Its name in reports and on the guest's command line (`runs=`).
    pub name: &'static str,
    /// Writes (true) or reads (false).
    pub write: bool,
    /// Bytes per request.
    pub size: u32,
    /// Requests kept in flight.
    pub depth: usize,
    /// Random offsets (aligned to `size`) rather than sequential ones.
    pub random: bool,
    /// Each request is followed by a flush; the pair counts as one request,
    /// timed from the write's submission to the flush's completion.
    pub flush: bool,
}

impl Workload {
    /// The workload called `name`.
    pub fn named(name: &str) -> Option<&'static Workload> {
        WORKLOADS.iter().find(|w| w.name == name)
    }
}

/// Every workload, in the order they run.
pub const WORKLOADS: [Workload; 6] = [
    Workload {
        name: "randread-4k-qd1",
        write: false,
        size: 4096,
        depth: 1,
        random: true,
        flush: false,
    },
    Workload {
        name: "randread-4k-qd32",
        write: false,
        size: 4096,
        depth: 32,
        random: true,
        flush: false,
    },
    Workload {
        name: "randwrite-4k-qd1",
        write: true,
        size: 4096,
        depth: 1,
        random: true,
        flush: false,
    },
    Workload {
        name: "randwrite-4k-qd1-flush",
        write: true,
        size: 4096,
        depth: 1,
        random: true,
        flush: true,
    },
    Workload {
        name: "seqread-1m-qd4",
        write: false,
        size: 1 << 20,
        depth: 4,
        random: false,
        flush: false,
    },
    Workload {
        name: "seqwrite-1m-qd4",
        write: true,
        size: 1 << 20,
        depth: 4,
        random: false,
        flush: false,
    },
];
