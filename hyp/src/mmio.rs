//! The MMIO seam: ranges of a domain's MMIO hole whose trapped accesses the
//! core hands to a handler, without knowing what is behind them.
//!
//! An access to such a range exits from `KVM_RUN` to the vCPU's thread,
//! which finds the range's [`MmioHandler`] and calls it there and then (the
//! vCPU waits for the answer, as on real hardware). Who handles a range is
//! up to whoever set it up (`hypd`'s device setup): the core's own
//! [`crate::IoreqServer`] forwards the access to Domain-0, a host-model
//! backend answers it in this process. Writes the core should never see
//! at all (a queue's notify register) are better made ioeventfds
//! ([`crate::Hypervisor::add_mmio_eventfd`]).

use protocol::memory::{HYPERCALL_ADDR, MMIO_BASE};
use std::sync::{Arc, RwLock};

/// One trapped access, as a handler sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// The index of the vCPU that made the access.
    pub vcpu: u8,
    /// The guest-physical address accessed.
    pub addr: u64,
    /// `addr`'s offset in the handler's range.
    pub offset: u64,
    /// Bytes accessed: 1 to 8.
    pub size: u8,
}

/// What answers the accesses to a range.
pub trait MmioHandler: Send + Sync {
    /// A read of `access.size` bytes; returns them little-endian in the
    /// low bytes.
    fn read(&self, access: &MmioAccess) -> u64;
    /// A write of the low `access.size` bytes of `value`.
    fn write(&self, access: &MmioAccess, value: u64);
}

/// One range and its handler.
struct MmioRange {
    base: u64,
    len: u64,
    handler: Arc<dyn MmioHandler>,
}

/// A domain's handled MMIO ranges.
#[derive(Default)]
pub(crate) struct MmioMap {
    ranges: RwLock<Vec<MmioRange>>,
}

/// Why a range cannot be added.
pub(crate) type RangeRefusal = &'static str;

impl MmioMap {
    /// Adds `[base, base + len)`, which must lie in the MMIO hole below the
    /// hypercall page and overlap no other range.
    pub fn insert(
        &self,
        base: u64,
        len: u64,
        handler: Arc<dyn MmioHandler>,
    ) -> Result<(), RangeRefusal> {
        let end = base.checked_add(len).ok_or("wraps around")?;
        if len == 0 || base < MMIO_BASE || end > HYPERCALL_ADDR {
            return Err("outside the device part of the MMIO hole");
        }
        let mut ranges = self.ranges.write().expect("mmio lock");
        if ranges.iter().any(|r| base < r.base + r.len && r.base < end) {
            return Err("overlaps a range already handled");
        }
        ranges.push(MmioRange { base, len, handler });
        Ok(())
    }

    /// Removes the range starting at `base`; returns its handler.
    pub fn remove(&self, base: u64) -> Option<Arc<dyn MmioHandler>> {
        let mut ranges = self.ranges.write().expect("mmio lock");
        let at = ranges.iter().position(|r| r.base == base)?;
        Some(ranges.remove(at).handler)
    }

    /// Takes every range out of `other` (a domain being replaced by a
    /// restarted one, whose ranges stay as they were).
    pub fn take_from(other: &Self) -> Self {
        let ranges = std::mem::take(&mut *other.ranges.write().expect("mmio lock"));
        Self {
            ranges: RwLock::new(ranges),
        }
    }

    /// Drops every range (the domain is gone).
    pub fn clear(&self) {
        self.ranges.write().expect("mmio lock").clear();
    }

    /// The handler of the range holding `addr`, and the range's base.
    pub fn find(&self, addr: u64) -> Option<(Arc<dyn MmioHandler>, u64)> {
        let ranges = self.ranges.read().expect("mmio lock");
        ranges
            .iter()
            .find(|r| addr.wrapping_sub(r.base) < r.len)
            .map(|r| (Arc::clone(&r.handler), r.base))
    }
}
