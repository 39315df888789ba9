//! Host I/O requests in flight, for a placement whose host I/O is an
//! io_uring: one [`crate::HostIo`] becomes several parts (one SQE per
//! guest buffer, or one fsync), all carrying the request's slot, and the
//! request's result is known when its last part completes.
//!
//! Both placements use it: Domain-0's hardware queue and the host model's
//! io_uring.

use alloc::vec::Vec;

use crate::platform::IoResult;

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

    /// Reserves a slot for a request being built; give it back with
    /// [`Inflight::release`] or fill it with [`Inflight::arm`].
    pub fn reserve(&mut self) -> u32 {
        match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.records.push(None);
                (self.records.len() - 1) as u32
            }
        }
    }

    /// Gives back a reserved slot whose request was not submitted.
    pub fn release(&mut self, slot: u32) {
        self.free.push(slot);
    }

    /// The request with `tag` in `slot` went out as `parts` parts.
    pub fn arm(&mut self, slot: u32, tag: u64, flush: bool, parts: u32) {
        if let Some(record) = self.records.get_mut(slot as usize) {
            *record = Some(Record {
                tag,
                flush,
                parts,
                bytes: 0,
                error: None,
            });
        }
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

    #[test]
    fn a_request_finishes_with_its_last_part_and_its_first_error() {
        let mut table = Inflight::new();
        let a = table.reserve();
        table.arm(a, 7, false, 2);
        let b = table.reserve();
        table.arm(b, 8, false, 2);
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
        assert!(matches!(done, PartDone::Finished(f) if f.result == Err(5)));
        assert_eq!(table.part_done(99, 0), PartDone::Stray);
        assert!(table.is_empty());
        let c = table.reserve();
        table.release(c);
        assert!(table.is_empty());
    }
}
