//! Host I/O requests in flight, for a placement whose host I/O is an
//! io_uring: one [`crate::HostIo`] becomes several parts (one SQE per
//! guest buffer, or one fsync), all carrying the request's slot, and the
//! request's result is known when its last part completes.
//!
//! Both placements use it: Domain-0's hardware queue and the host model's
//! io_uring.

use alloc::vec::Vec;

use crate::platform::{HostIo, IoKind, IoResult, Submission};
use protocol::hwqueue::errno::EFAULT;

/// One request in flight.
#[derive(Clone, Copy, Debug)]
struct Record {
    tag: u64,
    flush: bool,
    parts: u32,
    bytes: u64,
    error: Option<i32>,
}

/// A request whose last part completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The tag the device gave with the request.
    pub tag: u64,
    /// `Ok(bytes moved)` or the first part's error.
    pub result: IoResult,
    /// The request was a flush.
    pub flush: bool,
}

/// What a part's completion meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartDone {
    /// The slot holds no request: a completion left over from an earlier
    /// user of the queue, or garbage. Drop it.
    Stray,
    /// Other parts of the request are still out.
    Pending,
    /// That was the request's last part.
    Finished(Finished),
}

/// The table of requests in flight, indexed by slot.
#[derive(Debug, Default)]
pub struct Inflight {
    records: Vec<Option<Record>>,
    free: Vec<u32>,
}

impl Inflight {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves a slot for a request being built: its parts carry the slot,
    /// and [`Inflight::settle`] says what became of it.
    pub fn reserve(&mut self) -> u32 {
        match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.records.push(None);
                (self.records.len() - 1) as u32
            }
        }
    }

    /// The request `io` in `slot` was built into `parts` parts (`None`: a
    /// buffer was outside what the host may touch). With parts to send it
    /// is in flight ([`Submission::Pending`]); otherwise the slot is free
    /// again and the request is done: `EFAULT`, or nothing to move.
    pub fn settle(&mut self, slot: u32, io: &HostIo<'_>, parts: Option<u32>) -> Submission {
        let record = match parts {
            Some(parts) if parts > 0 => Record {
                tag: io.tag,
                flush: io.kind == IoKind::Flush,
                parts,
                bytes: 0,
                error: None,
            },
            _ => {
                self.free.push(slot);
                return Submission::Done(parts.map_or(Err(EFAULT), |_| Ok(0)));
            }
        };
        if let Some(entry) = self.records.get_mut(slot as usize) {
            *entry = Some(record);
        }
        Submission::Pending
    }

    /// A part of the request in `slot` completed with `res` (bytes, or a
    /// negated errno, as io_uring reports).
    pub fn part_done(&mut self, slot: u32, res: i32) -> PartDone {
        let Some(Some(record)) = self.records.get_mut(slot as usize) else {
            return PartDone::Stray;
        };
        if res < 0 {
            record.error.get_or_insert(res.saturating_neg());
        } else {
            record.bytes += res as u64;
        }
        record.parts -= 1;
        if record.parts > 0 {
            return PartDone::Pending;
        }
        let finished = Finished {
            tag: record.tag,
            result: record.error.map_or(Ok(record.bytes), Err),
            flush: record.flush,
        };
        self.records[slot as usize] = None;
        self.free.push(slot);
        PartDone::Finished(finished)
    }

    /// Requests submitted and not yet finished (reserved slots included).
    pub fn len(&self) -> usize {
        self.records.len() - self.free.len()
    }

    /// True if nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: IoKind, tag: u64) -> HostIo<'static> {
        HostIo {
            kind,
            offset: 0,
            buffers: &[],
            tag,
        }
    }

    #[test]
    fn a_request_finishes_with_its_last_part_and_its_first_error() {
        let mut table = Inflight::new();
        let a = table.reserve();
        let pending = table.settle(a, &io(IoKind::Read, 7), Some(2));
        assert_eq!(pending, Submission::Pending);
        let b = table.reserve();
        table.settle(b, &io(IoKind::Flush, 8), Some(2));
        assert_eq!(table.part_done(a, 4096), PartDone::Pending);
        assert_eq!(
            table.part_done(a, 512),
            PartDone::Finished(Finished {
                tag: 7,
                result: Ok(4608),
                flush: false
            })
        );
        assert_eq!(table.part_done(a, 1), PartDone::Stray, "slot is free again");
        assert_eq!(table.part_done(b, -5), PartDone::Pending);
        let done = table.part_done(b, -28);
        assert!(matches!(done, PartDone::Finished(f) if f.result == Err(5) && f.flush));
        assert_eq!(table.part_done(99, 0), PartDone::Stray);
        assert!(table.is_empty());
    }

    #[test]
    fn a_request_with_no_parts_is_done_at_once_and_frees_its_slot() {
        let mut table = Inflight::new();
        let refused = table.reserve();
        let done = table.settle(refused, &io(IoKind::Read, 1), None);
        assert_eq!(done, Submission::Done(Err(EFAULT)));
        let empty = table.reserve();
        assert_eq!(empty, refused, "the refused request's slot is reused");
        let done = table.settle(empty, &io(IoKind::Write, 2), Some(0));
        assert_eq!(done, Submission::Done(Ok(0)));
        assert!(table.is_empty());
        assert_eq!(table.part_done(empty, 0), PartDone::Stray);
    }
}
