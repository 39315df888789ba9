//! Results a guest workload hands to the toolstack.
//!
//! A guest encodes a [`Report`] with postcard and passes it with the
//! [`crate::hypercall::Op::Report`] hypercall. The core does not decode it:
//! it forwards the bytes to whoever watches the domain (`xl demo`, tests).

use serde::{Deserialize, Serialize};

/// A latency summary, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub samples: u32,
    /// Smallest sample.
    pub min_ns: u64,
    /// Median.
    pub median_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
}

/// One block benchmark run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockBench {
    /// What ran, e.g. `randread-4k-qd1`, `seqread-1m-qd4`, `seqwrite-1m-qd4`.
    pub workload: heapless_name::Name,
    /// Requests completed.
    pub ops: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Wall time of the run, by the guest's TSC.
    pub elapsed_ns: u64,
    /// Per-request latency, submit to completion seen by the guest.
    pub latency: LatencySummary,
    /// Interrupts the guest took for this device during the run.
    pub interrupts: u64,
    /// Queue notifications (doorbell writes) the guest made.
    pub notifies: u64,
    /// The latency distribution, for plots.
    pub histogram: LatencyHistogram,
}

/// Number of buckets in a [`LatencyHistogram`].
pub const HISTOGRAM_BUCKETS: usize = 32;

/// A latency distribution with two buckets per octave: bucket 0 counts
/// samples under 1 µs, bucket `i` (1 ≤ i < 31) those from
/// [`LatencyHistogram::lower_bound_ns`]`(i)` up to the next bound, and the
/// last bucket everything from about 32.8 ms up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// Samples per bucket.
    pub counts: [u32; HISTOGRAM_BUCKETS],
}

impl LatencyHistogram {
    /// The smallest latency bucket `i` holds, in nanoseconds:
    /// 0, 1000, 1414, 2000, 2828, ... (each √2 above the last).
    pub const fn lower_bound_ns(i: usize) -> u64 {
        if i == 0 {
            return 0;
        }
        let k = i - 1;
        let base: u64 = if k.is_multiple_of(2) { 1000 } else { 1414 };
        base << (k / 2)
    }

    /// The bucket a sample of `ns` falls in.
    pub fn bucket(ns: u64) -> usize {
        (1..HISTOGRAM_BUCKETS)
            .rev()
            .find(|&i| ns >= Self::lower_bound_ns(i))
            .unwrap_or(0)
    }

    /// Counts one sample.
    pub fn add(&mut self, ns: u64) {
        let count = &mut self.counts[Self::bucket(ns)];
        *count = count.saturating_add(1);
    }

    /// Samples counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }
}

/// What a backend did for one device, from the device's arrival to its
/// removal. Domain-0 reports it when a device goes away; the host model
/// keeps the same counts, so the two placements can be compared field by
/// field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendStats {
    /// The guest the device belonged to.
    pub domid: u16,
    /// The device's name (`xvda`).
    pub vdev: heapless_name::Name,
    /// Requests completed by host I/O.
    pub requests: u64,
    /// Queue notifications the backend took (guest kicks that reached it).
    pub notifies: u64,
    /// Times the backend, polling, found requests no notification
    /// announced (see the backends' polled mode).
    pub polled: u64,
    /// Interrupts the backend raised in the guest.
    pub interrupts: u64,
    /// Register accesses the backend answered.
    pub register_accesses: u64,
    /// Times the backend's CPU woke from sleep to serve (Domain-0: halts
    /// that ended; host model: the device thread's waits that returned).
    pub wakeups: u64,
    /// Event-channel interrupts the backend's domain took (0 in the host
    /// model, which waits on eventfds instead).
    pub backend_interrupts: u64,
    /// Submission-queue entries handed to the host's io_uring.
    pub sqes: u64,
    /// Submissions rung: io_uring doorbells (Domain-0) or `io_uring_enter`
    /// calls (host model).
    pub submits: u64,
    /// Flushes that reached the host file (`fdatasync`).
    pub fsyncs: u64,
}

/// One workload result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Report {
    /// Event-channel ping-pong with Dom0: each sample is one round trip
    /// DomU -> Dom0 -> DomU, timed by the DomU's TSC.
    EvtchnPingPong(LatencySummary),
    /// Pattern written across the disk, flushed, read back and compared.
    DiskVerify {
        /// Bytes written and read back.
        bytes: u64,
        /// Bytes that did not match (0 for a pass).
        mismatches: u64,
        /// True if every request completed with status OK and every byte matched.
        ok: bool,
    },
    /// A block benchmark run.
    BlockBench(BlockBench),
    /// What a backend did for one device (Domain-0 sends it when the
    /// device is removed).
    BackendStats(BackendStats),
    /// A self-test result: the name of the check and whether it passed.
    Check {
        /// What was checked.
        name: heapless_name::Name,
        /// Whether it passed.
        passed: bool,
        /// The hypercall result observed, for the log.
        value: i64,
    },
}

/// Short fixed-capacity names for reports (no allocator needed).
pub mod heapless_name {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Capacity of a [`Name`] in bytes.
    pub const CAPACITY: usize = 48;

    /// An ASCII name of at most [`CAPACITY`] bytes.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub struct Name {
        len: u8,
        bytes: [u8; CAPACITY],
    }

    impl Name {
        /// Builds a name, truncating at [`CAPACITY`] bytes (on a character
        /// boundary).
        pub fn new(text: &str) -> Self {
            let mut len = text.len().min(CAPACITY);
            while !text.is_char_boundary(len) {
                len -= 1;
            }
            let mut bytes = [0; CAPACITY];
            bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
            Self {
                len: len as u8,
                bytes,
            }
        }

        /// The name as text.
        pub fn as_str(&self) -> &str {
            core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
        }
    }

    impl Default for Name {
        fn default() -> Self {
            Self::new("")
        }
    }

    impl core::fmt::Debug for Name {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            core::fmt::Debug::fmt(self.as_str(), f)
        }
    }

    impl Serialize for Name {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(self.as_str())
        }
    }

    impl<'de> Deserialize<'de> for Name {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let text = <&str>::deserialize(d)?;
            if text.len() > CAPACITY {
                return Err(serde::de::Error::custom("name too long"));
            }
            Ok(Self::new(text))
        }
    }
}

impl Report {
    /// Encodes the report into `buf`, returning the bytes used.
    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Option<&'a mut [u8]> {
        postcard::to_slice(self, buf).ok()
    }

    /// Decodes a report the guest handed over.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_half_octaves() {
        assert_eq!(LatencyHistogram::bucket(0), 0);
        assert_eq!(LatencyHistogram::bucket(999), 0);
        assert_eq!(LatencyHistogram::bucket(1000), 1);
        assert_eq!(LatencyHistogram::bucket(1413), 1);
        assert_eq!(LatencyHistogram::bucket(1414), 2);
        assert_eq!(LatencyHistogram::bucket(2000), 3);
        assert_eq!(LatencyHistogram::lower_bound_ns(31), 1000 << 15);
        assert_eq!(LatencyHistogram::bucket(u64::MAX), HISTOGRAM_BUCKETS - 1);
        let mut h = LatencyHistogram::default();
        for ns in [10, 1500, 1600, 40_000_000] {
            h.add(ns);
        }
        assert_eq!(
            (h.counts[0], h.counts[2], h.counts[31], h.total()),
            (1, 2, 1, 4)
        );
    }

    #[test]
    fn reports_round_trip_through_postcard() {
        let histogram = LatencyHistogram {
            counts: [u32::MAX; HISTOGRAM_BUCKETS],
        };
        let reports = [
            Report::BlockBench(BlockBench {
                workload: heapless_name::Name::new("randread-4k-qd1"),
                ops: u64::MAX,
                bytes: u64::MAX,
                elapsed_ns: u64::MAX,
                latency: LatencySummary::default(),
                interrupts: u64::MAX,
                notifies: u64::MAX,
                histogram,
            }),
            Report::BackendStats(BackendStats {
                domid: 7,
                vdev: heapless_name::Name::new("xvda"),
                requests: u64::MAX,
                ..Default::default()
            }),
            Report::EvtchnPingPong(LatencySummary {
                samples: 3,
                min_ns: 1,
                median_ns: 2,
                p99_ns: 3,
                max_ns: 4,
            }),
            Report::Check {
                name: heapless_name::Name::new("privileged-hypercall"),
                passed: true,
                value: -1,
            },
        ];
        for report in reports {
            // The guest runtime encodes reports into 512 bytes.
            let mut buf = [0u8; 512];
            let bytes = report.encode(&mut buf).unwrap();
            assert_eq!(Report::decode(bytes), Some(report));
        }
        assert_eq!(
            Report::decode(&[0xFF, 0xFF]),
            None,
            "garbage from a guest decodes to nothing"
        );
        assert_eq!(
            heapless_name::Name::new(&"x".repeat(100)).as_str().len(),
            heapless_name::CAPACITY
        );
    }
}
