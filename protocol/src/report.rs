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
    fn reports_round_trip_through_postcard() {
        let reports = [
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
            let mut buf = [0u8; 128];
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
