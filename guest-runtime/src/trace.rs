//! This domain's trace ring ([`protocol::trace`]): the top of its RAM,
//! where the core put it. Trace points write from ring 3, with no exit;
//! while no trace session is on, each costs a load and a branch.

use core::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use protocol::boot::BootInfo;
use protocol::domain::DomId;
use protocol::trace::{Party, Step, TraceRing, HEADER_BYTES};

static BASE: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static DOMID: AtomicU16 = AtomicU16::new(0);

pub(crate) fn init(boot: &BootInfo) {
    DOMID.store(boot.domid, Ordering::Relaxed);
    let fits = boot.trace_ring_bytes >= HEADER_BYTES as u64
        && boot.trace_ring.is_multiple_of(8)
        && boot
            .trace_ring
            .checked_add(boot.trace_ring_bytes)
            .is_some_and(|end| end <= boot.ram_bytes);
    if fits {
        BYTES.store(boot.trace_ring_bytes, Ordering::Relaxed);
        BASE.store(boot.trace_ring, Ordering::Release);
    }
}

/// The ring, if the core gave this domain one.
#[inline(always)]
pub fn ring() -> Option<TraceRing> {
    let base = BASE.load(Ordering::Acquire);
    if base == 0 {
        return None;
    }
    // SAFETY: `init` checked the ring lies in RAM (identity-mapped, so the
    // address is the pointer) and is 8-byte aligned; the heap ends below
    // it (`reserved_start`), so nothing else uses it.
    Some(unsafe { TraceRing::new(base as *mut u8, BYTES.load(Ordering::Relaxed)) })
}

/// This domain's id (the `domain` of a guest's own records).
pub fn domid() -> DomId {
    DOMID.load(Ordering::Relaxed)
}

/// Writes a record stamped now, if a trace session is on.
#[inline(always)]
pub fn emit(party: Party, step: Step, domain: DomId, request: u32, data: [u32; 2]) {
    if let Some(ring) = ring() {
        ring.emit(party, step, domain, request, data);
    }
}

/// Writes a record stamped `tsc` (a time the caller already read), if a
/// trace session is on.
#[inline(always)]
pub fn emit_at(tsc: u64, party: Party, step: Step, domain: DomId, request: u32, data: [u32; 2]) {
    if let Some(ring) = ring() {
        ring.emit_at(tsc, party, step, domain, request, data);
    }
}
