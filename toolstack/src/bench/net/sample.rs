//! What the network benchmark measures: its workloads, the paths it
//! compares, and what one run of a path gives ([`NetRun`]).

use serde::Serialize;

use super::super::sample::median;

/// One of the four measurements every network run makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetWorkload {
    /// Its name (the guest's check is named so too).
    pub name: &'static str,
    /// What it does, for the table.
    pub what: &'static str,
    /// A stream (Gbit/s) rather than round trips (µs).
    pub stream: bool,
}

/// The measurements, in the order each run makes them.
pub const NET_WORKLOADS: [NetWorkload; 4] = [
    NetWorkload {
        name: "net-ping",
        what: "ICMP echo, 56 bytes, one at a time",
        stream: false,
    },
    NetWorkload {
        name: "net-tcp-rr",
        what: "1-byte TCP round trips through the peer's echo service",
        stream: false,
    },
    NetWorkload {
        name: "net-tcp-rx",
        what: "TCP stream from the peer's HTTP /bytes/N to the client, every byte checked",
        stream: true,
    },
    NetWorkload {
        name: "net-tcp-tx",
        what: "TCP stream from the client to the peer's discard service",
        stream: true,
    },
];

/// Measurements chosen, each with its index in [`NET_WORKLOADS`].
pub type NetSelection = Vec<(usize, NetWorkload)>;

/// Where the two ends of a run are and what joins them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Two host processes' sockets in two namespaces, joined by a veth pair.
    Native,
    /// Two host-model guests, through their taps and the Linux bridge.
    Host,
    /// Two service-VM guests, through Domain-0's switch.
    ServiceVm,
    /// A host-model guest and a server on the bridge's host address.
    HostToHost,
    /// A service-VM guest and a server on the bridge's host address,
    /// through Domain-0's switch and its uplink.
    ServiceVmToHost,
}

impl Path {
    /// Every path, in the order of the first round.
    pub const ALL: [Path; 5] = [
        Path::Native,
        Path::Host,
        Path::ServiceVm,
        Path::HostToHost,
        Path::ServiceVmToHost,
    ];

    /// The name the table and the JSON use.
    pub fn name(self) -> &'static str {
        match self {
            Path::Native => "native",
            Path::Host => "host",
            Path::ServiceVm => "service-vm",
            Path::HostToHost => "host-to-host",
            Path::ServiceVmToHost => "service-vm-to-host",
        }
    }

    /// What the path is, for the table.
    pub fn what(self) -> &'static str {
        match self {
            Path::Native => "two namespaces, veth pair, Linux TCP at both ends",
            Path::Host => "host-model guest, tap, bridge, tap, guest (smoltcp)",
            Path::ServiceVm => "service-VM guest, Domain-0's switch, guest",
            Path::HostToHost => "host-model guest, tap, bridge, host",
            Path::ServiceVmToHost => "service-VM guest, Domain-0, uplink tap, bridge, host",
        }
    }
}

/// One measurement's figure in one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Figure {
    /// Round trips.
    Latency {
        /// Median, µs.
        median_us: f64,
        /// 99th percentile, µs (the guest prints it in whole µs).
        p99_us: Option<f64>,
    },
    /// A stream.
    Stream {
        /// Gbit/s (10^9 bits per second).
        gbit_s: f64,
    },
}

/// Counts along a guest path over one run, totals (per frame in the
/// summary). `None` where this placement cannot count it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct PathCounters {
    /// Frames the client guest sent and received (its own count): the
    /// frames of the run, the unit the others are divided by.
    pub frames: f64,
    /// The guests' vCPU exits to the core's user space.
    pub guest_exits: f64,
    /// Domain-0's vCPU exits to the core's user space.
    pub dom0_exits: f64,
    /// Queue notifications of the guests that reached a backend (kicks).
    pub kicks: f64,
    /// Times a polling backend found work no kick announced.
    pub polled: f64,
    /// Interrupts the backends raised in the guests.
    pub guest_interrupts: f64,
    /// Event-channel interrupts Domain-0 took (service VM only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dom0_interrupts: Option<f64>,
    /// Times the backend's CPU woke to serve.
    pub backend_wakeups: f64,
    /// `io_uring_enter` calls of the host model's device threads (the
    /// service VM's doorbells are not reported per device).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doorbells: Option<f64>,
    /// Frames through a tap into or out of the host kernel (its own
    /// counters, `/proc/net/dev`): each one a copy by the kernel.
    pub host_frames: f64,
    /// Frame copies by the backend: into a guest's buffers or out of them
    /// into a tap's (host model: its taps' frames; Domain-0: frames it
    /// delivered into guests, from its log, plus frames it wrote to its
    /// uplink).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copies: Option<f64>,
}

impl PathCounters {
    /// Every count but `frames` divided by the run's frames.
    pub fn per_frame(&self) -> Self {
        let n = self.frames.max(1.0);
        let per = |v: f64| v / n;
        PathCounters {
            frames: self.frames,
            guest_exits: per(self.guest_exits),
            dom0_exits: per(self.dom0_exits),
            kicks: per(self.kicks),
            polled: per(self.polled),
            guest_interrupts: per(self.guest_interrupts),
            dom0_interrupts: self.dom0_interrupts.map(per),
            backend_wakeups: per(self.backend_wakeups),
            doorbells: self.doorbells.map(per),
            host_frames: per(self.host_frames),
            copies: self.copies.map(per),
        }
    }

    /// The median of each count over `all` (an optional count: over the
    /// runs that have it, if every run has it).
    pub fn median(all: &[PathCounters]) -> Self {
        let of = |f: fn(&PathCounters) -> f64| median(all.iter().map(f).collect());
        let some = |f: fn(&PathCounters) -> Option<f64>| {
            let values: Option<Vec<f64>> = all.iter().map(f).collect();
            values.filter(|v| !v.is_empty()).map(median)
        };
        PathCounters {
            frames: of(|c| c.frames),
            guest_exits: of(|c| c.guest_exits),
            dom0_exits: of(|c| c.dom0_exits),
            kicks: of(|c| c.kicks),
            polled: of(|c| c.polled),
            guest_interrupts: of(|c| c.guest_interrupts),
            dom0_interrupts: some(|c| c.dom0_interrupts),
            backend_wakeups: of(|c| c.backend_wakeups),
            doorbells: some(|c| c.doorbells),
            host_frames: of(|c| c.host_frames),
            copies: some(|c| c.copies),
        }
    }
}

/// One run of one path: each measurement's figure or why it has none,
/// in [`NET_WORKLOADS`] order, and the counts along the path (guest
/// paths).
#[derive(Clone, Debug)]
pub struct NetRun {
    /// The figures.
    pub figures: [Result<Figure, String>; 4],
    /// The counts, totals for the run.
    pub counters: Option<PathCounters>,
}

impl NetRun {
    /// A run that gave nothing, for `why`.
    pub fn failed(why: &str) -> Self {
        NetRun {
            figures: std::array::from_fn(|_| Err(why.to_string())),
            counters: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_per_frame_and_their_medians_keep_what_was_not_counted_out() {
        let run = |kicks: f64, doorbells: Option<f64>| PathCounters {
            frames: 100.0,
            kicks,
            doorbells,
            ..PathCounters::default()
        };
        let per = run(50.0, Some(10.0)).per_frame();
        assert_eq!(
            (per.frames, per.kicks, per.doorbells),
            (100.0, 0.5, Some(0.1))
        );
        let all = [
            run(1.0, Some(1.0)),
            run(3.0, Some(3.0)),
            run(2.0, Some(2.0)),
        ];
        let m = PathCounters::median(&all);
        assert_eq!((m.kicks, m.doorbells, m.copies), (2.0, Some(2.0), None));
        let partial = [run(1.0, Some(1.0)), run(1.0, None)];
        assert_eq!(
            PathCounters::median(&partial).doorbells,
            None,
            "not every run counted it"
        );
    }
}
