//! The host model's trace ring ([`protocol::trace`]), in `hypd`'s memory:
//! every device worker writes its steps there, as Domain-0's backends
//! write theirs into Domain-0's ring.

use protocol::domain::DomId;
use protocol::trace::{Party, Step, TraceRing};
use std::sync::OnceLock;

/// Bytes of the host model's ring.
pub const RING_BYTES: u64 = 1 << 20;

static RING: OnceLock<&'static TraceRing> = OnceLock::new();

/// The host model's trace ring.
pub fn ring() -> &'static TraceRing {
    RING.get_or_init(|| TraceRing::leak(RING_BYTES))
}

/// Where one device's records go: the guest and the device's window page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tracer {
    pub domid: DomId,
    pub device: u32,
}

impl Tracer {
    /// Records `step` of request `request` with `detail`, if tracing.
    #[inline(always)]
    pub fn emit(self, step: Step, request: u32, detail: u32) {
        ring().emit(
            Party::HostModel,
            step,
            self.domid,
            request,
            [self.device, detail],
        );
    }
}
