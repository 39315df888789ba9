//! Trace records and the ring each party writes them into (Xen's
//! `xentrace` records, but one ring per party, and one clock for all).
//!
//! **One clock.** Every record carries the host's TSC: the core makes each
//! vCPU's TSC offset zero when it creates it (`KVM_VCPU_TSC_OFFSET`), so a
//! guest's `rdtsc` in ring 3 reads the same counter as `hypd`'s threads.
//!
//! **One ring per party.** The guest's and Domain-0's rings are the top
//! pages of their RAM ([`crate::boot::BootInfo::trace_ring`]); the core's
//! and the host-model workers' rings are `hypd`'s own memory. A ring is a
//! [`RingHeader`] and then [`Record`]s; it is written by its party only,
//! read by `hypd` only, and used once per trace session:
//!
//! 1. `hypd` sets `next` and `dropped` to zero, then `session` to a new
//!    non-zero number;
//! 2. each trace point of the party loads `session` (the only cost when
//!    tracing is off: one load and a branch); while it is non-zero it
//!    claims a slot with a fetch-and-add on `next`, writes the record, and
//!    stores the session number in the record's `session` word last, with
//!    release order. A claim past the end counts in `dropped` and writes
//!    nothing: a full ring never blocks I/O;
//! 3. `hypd` sets `session` to zero and, a moment later, reads the
//!    records whose `session` word is the session's.
//!
//! A guest writes its own ring, so `hypd` trusts nothing in it: it reads
//! at most the capacity it placed, and keeps a record only if the party
//! and step make sense for that ring ([`Step::party_may_write`]).
//!
//! **Request ids.** A virtio request is named by the index of the
//! available-ring slot the driver published it in (both ends count it:
//! the driver as it publishes, the device as it takes), with the device's
//! window page as `data[0]`. Steps of a batch (a doorbell, a host
//! `io_uring_enter`) carry [`BATCH`] and are joined to the requests whose
//! journey they fall in.

use core::sync::atomic::{AtomicU32, Ordering};
use serde::{Deserialize, Serialize};

use crate::domain::DomId;

/// Bytes of a guest's trace ring at the top of its RAM.
pub const GUEST_RING_BYTES: u64 = 256 << 10;
/// Bytes of Domain-0's trace ring at the top of its RAM: it writes the
/// records of every guest it serves.
pub const DOM0_RING_BYTES: u64 = 1 << 20;
/// Bytes of the [`RingHeader`] before the first record.
pub const HEADER_BYTES: usize = 64;
/// The request id of a step that serves a batch.
pub const BATCH: u32 = u32::MAX;

/// Records a ring of `bytes` holds.
pub const fn capacity(bytes: u64) -> u32 {
    ((bytes as usize - HEADER_BYTES) / core::mem::size_of::<Record>()) as u32
}

/// Who wrote a record: one swim lane of `xl trace`'s picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Party {
    /// The guest's driver (the frontend).
    Guest = 0,
    /// Domain-0's backend.
    Dom0 = 1,
    /// The core's doorbell thread in `hypd`.
    Core = 2,
    /// A host-model worker thread in `hypd`.
    HostModel = 3,
}

impl Party {
    /// Decodes a record's party byte.
    pub fn from_raw(raw: u8) -> Option<Self> {
        Some(match raw {
            0 => Self::Guest,
            1 => Self::Dom0,
            2 => Self::Core,
            3 => Self::HostModel,
            _ => return None,
        })
    }

    /// Its name in `xl trace`'s output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Guest => "guest",
            Self::Dom0 => "Domain-0",
            Self::Core => "core",
            Self::HostModel => "host model",
        }
    }
}

/// What happened at a trace point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Step {
    /// Guest: the request's descriptors are written (it is not yet
    /// visible). The guest's latency is measured from here.
    Built = 1,
    /// Guest: the available index is about to be stored (the request is
    /// visible right after). `data[1]`: how many requests this publish
    /// makes visible.
    Published = 2,
    /// Guest: the notify decision after publishing. `data[1]`: 1 if it
    /// rang the doorbell, 0 if the device had asked for no notifications
    /// (it is polling).
    Kicked = 3,
    /// Guest: the completion is harvested. `data[1]`: 0 if the wait found
    /// it spinning, 1 if the guest slept for the device's interrupt.
    Seen = 4,
    /// Backend: the request taken from the available ring. `data[1]`: 1 if
    /// the backend was polling, 0 if a notification woke it.
    Taken = 5,
    /// Backend: the descriptors read and the request checked. `data[1]`:
    /// 0 read, 1 write, 2 flush.
    Parsed = 6,
    /// Backend: the host I/O written as a submission-queue entry.
    /// `data[1]`: its bytes.
    Queued = 7,
    /// Backend (batch): Domain-0 rang its hardware queue's doorbell, or a
    /// host-model worker entered the kernel to submit. `data[1]`: how many
    /// entries it had queued.
    Doorbell = 8,
    /// Backend: the host's completion-queue entry for the request seen.
    /// `data[1]`: the result (bytes, or a negative errno).
    Completed = 9,
    /// Backend: the status written; the used entry and index that show the
    /// completion to the driver come right after. `data[1]`: the status.
    Used = 10,
    /// Backend (batch): the interrupt decision after used entries were
    /// written. `data[1]`: 1 if it sent the guest's interrupt, 0 if the
    /// guest had asked for none.
    Interrupt = 11,
    /// Core (batch): the core took Domain-0's doorbell: the queue's
    /// doorbell thread woke (the thread doorbell), or Domain-0's vCPU
    /// thread took the exit of its write (the exit doorbell).
    DoorbellWoken = 12,
    /// Core or host model (batch): `io_uring_enter` called.
    EnterStart = 13,
    /// Core or host model (batch): `io_uring_enter` returned. `data[1]`:
    /// what it returned.
    EnterEnd = 14,
}

/// Every step, in the order of a request's journey.
pub const STEPS: [Step; 14] = [
    Step::Built,
    Step::Published,
    Step::Kicked,
    Step::Taken,
    Step::Parsed,
    Step::Queued,
    Step::Doorbell,
    Step::DoorbellWoken,
    Step::EnterStart,
    Step::EnterEnd,
    Step::Completed,
    Step::Used,
    Step::Interrupt,
    Step::Seen,
];

impl Step {
    /// Decodes a record's step byte.
    pub fn from_raw(raw: u8) -> Option<Self> {
        STEPS.iter().copied().find(|s| *s as u8 == raw)
    }

    /// What happened, as `xl trace` prints it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Built => "request built",
            Self::Published => "published (avail index)",
            Self::Kicked => "kick decision",
            Self::Seen => "completion seen",
            Self::Taken => "taken from the ring",
            Self::Parsed => "descriptors read",
            Self::Queued => "SQE written",
            Self::Doorbell => "doorbell rung",
            Self::Completed => "CQE seen",
            Self::Used => "used ring written",
            Self::Interrupt => "interrupt decision",
            Self::DoorbellWoken => "core takes the doorbell",
            Self::EnterStart => "io_uring_enter start",
            Self::EnterEnd => "io_uring_enter end",
        }
    }

    /// True if this step names a batch rather than one request.
    pub fn is_batch(self) -> bool {
        matches!(
            self,
            Self::Doorbell
                | Self::Interrupt
                | Self::DoorbellWoken
                | Self::EnterStart
                | Self::EnterEnd
        )
    }

    /// True if `party` writes this step (a record claiming another party's
    /// step is refused when a ring is read).
    pub fn party_may_write(self, party: Party) -> bool {
        match party {
            Party::Guest => matches!(
                self,
                Self::Built | Self::Published | Self::Kicked | Self::Seen
            ),
            Party::Dom0 => matches!(
                self,
                Self::Taken
                    | Self::Parsed
                    | Self::Queued
                    | Self::Doorbell
                    | Self::Completed
                    | Self::Used
                    | Self::Interrupt
            ),
            Party::Core => matches!(
                self,
                Self::DoorbellWoken | Self::EnterStart | Self::EnterEnd
            ),
            Party::HostModel => matches!(
                self,
                Self::Taken
                    | Self::Parsed
                    | Self::Queued
                    | Self::Doorbell
                    | Self::Completed
                    | Self::Used
                    | Self::Interrupt
                    | Self::EnterStart
                    | Self::EnterEnd
            ),
        }
    }
}

/// One trace record (32 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C)]
pub struct Record {
    /// The host TSC when it happened.
    pub tsc: u64,
    /// The request (an available-ring index), or [`BATCH`].
    pub request: u32,
    /// The guest whose request it is.
    pub domain: DomId,
    /// A [`Party`].
    pub party: u8,
    /// A [`Step`].
    pub step: u8,
    /// `data[0]`: the device (its window's guest page number);
    /// `data[1]`: what the step says.
    pub data: [u32; 2],
    /// The session it was written in, stored last: a slot whose word is
    /// not the session's was not (completely) written.
    pub session: u32,
    /// Padding.
    pub _pad: u32,
}

const _: () = assert!(core::mem::size_of::<Record>() == 32);

/// The start of every ring.
#[derive(Debug)]
#[repr(C)]
pub struct RingHeader {
    /// Non-zero while tracing: the session number records carry.
    pub session: AtomicU32,
    /// The next slot to claim.
    pub next: AtomicU32,
    /// Claims that found the ring full.
    pub dropped: AtomicU32,
    /// Padding to [`HEADER_BYTES`].
    pub _pad: [u32; 13],
}

const _: () = assert!(core::mem::size_of::<RingHeader>() == HEADER_BYTES);

/// A trace ring in memory another party reads: its writer's and its
/// reader's handle alike.
#[derive(Clone, Copy, Debug)]
pub struct TraceRing {
    base: *mut u8,
    capacity: u32,
}

// SAFETY: every access to the ring's memory is atomic or volatile, and
// concurrent writers only touch the slots they claimed.
unsafe impl Send for TraceRing {}
// SAFETY: as for Send.
unsafe impl Sync for TraceRing {}

/// What [`TraceRing::collect`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// The session's records, in the order they were claimed.
    pub records: alloc::vec::Vec<Record>,
    /// Records the full ring dropped.
    pub dropped: u32,
    /// Slots claimed but not (validly) written.
    pub invalid: u32,
}

impl TraceRing {
    /// A ring over `bytes` bytes at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be 8-byte aligned and `bytes` (at least
    /// [`HEADER_BYTES`]) of memory there must stay mapped and writable
    /// while the ring is used, by nothing but trace rings.
    pub unsafe fn new(base: *mut u8, bytes: u64) -> Self {
        Self {
            base,
            capacity: capacity(bytes),
        }
    }

    /// A ring of `bytes` in memory allocated for it and never freed: a
    /// process's own ring, which threads write through `&'static` handles.
    pub fn leak(bytes: u64) -> &'static TraceRing {
        let memory: &'static mut [u64] =
            alloc::boxed::Box::leak(alloc::vec![0u64; bytes as usize / 8].into_boxed_slice());
        // SAFETY: the leaked slice is 8-byte aligned, `bytes` long (rounded
        // down to 8), never freed, and used by nothing but this ring.
        let ring = unsafe { Self::new(memory.as_mut_ptr().cast(), bytes & !7) };
        alloc::boxed::Box::leak(alloc::boxed::Box::new(ring))
    }

    /// Where the ring starts (its header).
    pub fn base(&self) -> *mut u8 {
        self.base
    }

    /// Records the ring holds.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    fn header(&self) -> &RingHeader {
        // SAFETY: `new`'s contract: the header's bytes are mapped, aligned
        // and only ever accessed atomically.
        unsafe { &*self.base.cast::<RingHeader>() }
    }

    fn slot(&self, index: u32) -> *mut Record {
        // SAFETY: `index < capacity`, checked by every caller, so the slot
        // lies inside the ring `new` was given.
        unsafe {
            self.base
                .add(HEADER_BYTES + index as usize * core::mem::size_of::<Record>())
                .cast::<Record>()
        }
    }

    fn session_word(&self, index: u32) -> &AtomicU32 {
        // SAFETY: the slot lies in the ring (`index < capacity`); its
        // session word is 4-byte aligned and read and written atomically.
        unsafe { AtomicU32::from_ptr(core::ptr::addr_of_mut!((*self.slot(index)).session)) }
    }

    /// The current session (0: tracing is off). A trace point loads this
    /// first, and does nothing else when it is 0.
    #[inline(always)]
    pub fn session(&self) -> u32 {
        self.header().session.load(Ordering::Relaxed)
    }

    /// Writes a record for `session` (as [`TraceRing::session`] returned),
    /// or counts it dropped if the ring is full.
    pub fn write(&self, session: u32, mut record: Record) {
        let header = self.header();
        let index = header.next.fetch_add(1, Ordering::Relaxed);
        if index >= self.capacity {
            header.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        record.session = 0;
        // SAFETY: the slot is in the ring and this writer claimed it; the
        // reader ignores it until its session word is stored below.
        unsafe { self.slot(index).write_volatile(record) };
        self.session_word(index).store(session, Ordering::Release);
    }

    /// Writes a record stamped now if tracing is on (the writer's common
    /// case).
    #[inline]
    pub fn emit(&self, party: Party, step: Step, domain: DomId, request: u32, data: [u32; 2]) {
        // The TSC is read only while tracing: off, this is one load.
        if self.session() != 0 {
            self.emit_at(rdtsc(), party, step, domain, request, data);
        }
    }

    /// Writes a record stamped `tsc` (a time the writer already read) if
    /// tracing is on.
    #[inline]
    pub fn emit_at(
        &self,
        tsc: u64,
        party: Party,
        step: Step,
        domain: DomId,
        request: u32,
        data: [u32; 2],
    ) {
        let session = self.session();
        if session != 0 {
            self.write(session, stamp(tsc, party, step, domain, request, data));
        }
    }

    /// Starts session `session` (non-zero): the ring is emptied and its
    /// writers start writing.
    pub fn begin(&self, session: u32) {
        let header = self.header();
        header.session.store(0, Ordering::SeqCst);
        header.next.store(0, Ordering::SeqCst);
        header.dropped.store(0, Ordering::SeqCst);
        header.session.store(session, Ordering::SeqCst);
    }

    /// Stops the session; its writers stop at their next trace point.
    pub fn end(&self) {
        self.header().session.store(0, Ordering::SeqCst);
    }

    /// The records of `session` written before it ended, each checked
    /// against `party` (the party that writes this ring).
    pub fn collect(&self, session: u32, party: Party) -> Collected {
        let header = self.header();
        let claimed = header.next.load(Ordering::Acquire);
        let used = claimed.min(self.capacity);
        let mut out = Collected {
            dropped: header
                .dropped
                .load(Ordering::Relaxed)
                .max(claimed.saturating_sub(self.capacity)),
            ..Collected::default()
        };
        for index in 0..used {
            if self.session_word(index).load(Ordering::Acquire) != session {
                out.invalid += 1;
                continue;
            }
            // SAFETY: in the ring; a volatile copy of bytes its writer
            // may still change (then it is refused below or on sight).
            let record = unsafe { self.slot(index).read_volatile() };
            let valid = Party::from_raw(record.party) == Some(party)
                && Step::from_raw(record.step).is_some_and(|s| s.party_may_write(party));
            if valid {
                out.records.push(record);
            } else {
                out.invalid += 1;
            }
        }
        out
    }
}

/// A record of `step` stamped `tsc`.
#[inline]
fn stamp(
    tsc: u64,
    party: Party,
    step: Step,
    domain: DomId,
    request: u32,
    data: [u32; 2],
) -> Record {
    Record {
        tsc,
        request,
        domain,
        party: party as u8,
        step: step as u8,
        data,
        session: 0,
        _pad: 0,
    }
}

/// The TSC (allowed in ring 3: the core leaves CR4.TSD clear).
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC reads a counter and has no other effect.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    fn ring(bytes: u64) -> (std::vec::Vec<u64>, TraceRing) {
        let mut memory = vec![0u64; bytes as usize / 8];
        // SAFETY: the vector is 8-byte aligned, `bytes` long and outlives
        // the ring in each test (it is returned with it).
        let ring = unsafe { TraceRing::new(memory.as_mut_ptr().cast(), bytes) };
        (memory, ring)
    }

    #[test]
    fn records_are_written_only_during_a_session() {
        let (_memory, ring) = ring(4096);
        ring.emit(Party::Guest, Step::Built, 1, 0, [0, 0]);
        ring.begin(7);
        ring.emit(Party::Guest, Step::Built, 1, 5, [9, 0]);
        ring.emit(Party::Guest, Step::Seen, 1, 5, [9, 1]);
        ring.end();
        ring.emit(Party::Guest, Step::Seen, 1, 6, [9, 1]);
        let got = ring.collect(7, Party::Guest);
        assert_eq!(got.records.len(), 2);
        assert_eq!(got.records[0].request, 5);
        assert_eq!(got.records[1].step, Step::Seen as u8);
        assert!(got.records[0].tsc <= got.records[1].tsc);
        assert_eq!((got.dropped, got.invalid), (0, 0));
    }

    #[test]
    fn a_full_ring_drops_and_counts() {
        let bytes = (HEADER_BYTES + 4 * 32) as u64;
        let (_memory, ring) = ring(bytes);
        assert_eq!(ring.capacity(), 4);
        ring.begin(1);
        for i in 0..10 {
            ring.emit(Party::Dom0, Step::Taken, 2, i, [0, 1]);
        }
        let got = ring.collect(1, Party::Dom0);
        assert_eq!(got.records.len(), 4);
        assert_eq!(got.dropped, 6);
    }

    #[test]
    fn another_partys_steps_and_old_sessions_are_refused() {
        let (_memory, ring) = ring(4096);
        ring.begin(1);
        ring.emit(Party::Guest, Step::Built, 1, 0, [0, 0]);
        ring.begin(2);
        // A guest claiming the core's step, and one claiming to be Dom0.
        ring.emit(Party::Guest, Step::EnterStart, 1, 0, [0, 0]);
        ring.emit(Party::Dom0, Step::Taken, 1, 0, [0, 0]);
        ring.emit(Party::Guest, Step::Seen, 1, 0, [0, 0]);
        let got = ring.collect(2, Party::Guest);
        assert_eq!(got.records.len(), 1);
        assert_eq!(got.invalid, 2);
        assert!(ring.collect(1, Party::Guest).records.is_empty());
    }
}
