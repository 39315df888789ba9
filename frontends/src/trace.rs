//! The driver's trace points ([`protocol::trace`]): the guest's lane of
//! `xl trace`. Each costs a load and a branch while no session is on.

use guest_runtime::trace;
use protocol::trace::{Party, Step};

/// Records `step` of request `request` (an available-ring index) now.
#[inline(always)]
pub fn emit(step: Step, request: u32, data: [u32; 2]) {
    trace::emit(Party::Guest, step, trace::domid(), request, data);
}

/// Records `step` at `tsc`, a time the driver already read (so the trace
/// and the driver's own latency agree to the tick).
#[inline(always)]
pub fn emit_at(tsc: u64, step: Step, request: u32, data: [u32; 2]) {
    trace::emit_at(tsc, Party::Guest, step, trace::domid(), request, data);
}
