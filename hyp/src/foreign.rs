//! Foreign windows: a range of a guest's RAM mapped into Domain-0's
//! guest-physical space, so Dom0's backends can read and write it.
//!
//! Dom0 has [`protocol::device::MAX_FOREIGN_WINDOWS`] window slots, each
//! [`FOREIGN_STRIDE`] apart from [`FOREIGN_BASE`]; their page tables were
//! written when Dom0 was made (`reserved.rs`). A window over guest range
//! `[start, start + len)` is one KVM memory slot of Dom0's VM over the
//! guest's own memfd mapping, at Dom0-physical `slot base + start`, so
//! guest-physical `g` is Dom0-physical `dom0_base() + g` whichever part of
//! the guest is mapped. Any page-aligned range fits, down to one page:
//! the shape grant mappings will need.

use crate::error::{Error, Result};
use crate::memory::GuestRam;
use crate::reserved::ReservedRam;
use kvm_bindings::kvm_userspace_memory_region;
use protocol::device::{FOREIGN_BASE, FOREIGN_STRIDE, MAX_WINDOW_BYTES};
use protocol::domain::DomId;
use protocol::memory::PAGE_SIZE;
use std::sync::Arc;

/// First KVM memory slot of Dom0's VM used for foreign windows (slot 0 is
/// Dom0's own RAM).
const WINDOW_MEMSLOT: u32 = 1;

/// A range of a guest's RAM, mapped into Domain-0 until dropped.
///
/// It holds a handle on the guest's RAM, so the memory stays mapped for as
/// long as Dom0 can reach it, even if the guest is destroyed first. Once
/// the window is dropped, Dom0's accesses there find no memory (reads give
/// all-ones).
pub struct ForeignWindow {
    reserved: Arc<ReservedRam>,
    slot: usize,
    start: u64,
    len: u64,
    guest: GuestRam,
}

impl std::fmt::Debug for ForeignWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForeignWindow")
            .field("slot", &self.slot)
            .field("start", &self.start)
            .field("len", &self.len)
            .finish()
    }
}

fn slot_base(slot: usize) -> u64 {
    FOREIGN_BASE + slot as u64 * FOREIGN_STRIDE
}

impl ForeignWindow {
    /// Maps `[start, start + len)` of `guest`'s RAM (guest `domid`) into
    /// Dom0's next free window slot.
    pub(crate) fn map(
        reserved: &Arc<ReservedRam>,
        domid: DomId,
        guest: &GuestRam,
        start: u64,
        len: u64,
    ) -> Result<Self> {
        let bad = |why| Error::BadWindow {
            domid,
            start,
            len,
            why,
        };
        if len == 0 || !start.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
            return Err(bad("not whole pages"));
        }
        if !guest.contains(start, len) {
            return Err(bad("outside the guest's RAM"));
        }
        if start + len > MAX_WINDOW_BYTES {
            return Err(bad("ends beyond the 1 GiB a window covers"));
        }
        let slot = reserved.alloc_window().ok_or(Error::NoFreeWindow)?;
        let host_addr = guest.host_address() + start;
        let region = memory_region(slot, start, len, host_addr);
        // SAFETY: the region maps guest RAM that the window's handle on it
        // (`guest`, cloned below) keeps mapped until `Drop` has deleted
        // this slot again.
        if let Err(source) = unsafe { reserved.set_window(slot, region) } {
            reserved.free_window(slot);
            return Err(Error::Kvm {
                what: "KVM_SET_USER_MEMORY_REGION (foreign window)",
                source,
            });
        }
        Ok(Self {
            reserved: Arc::clone(reserved),
            slot,
            start,
            len,
            guest: guest.clone(),
        })
    }

    /// Dom0-physical address of guest-physical 0: guest address `g` (inside
    /// the mapped range) is Dom0 address `dom0_base() + g`.
    pub fn dom0_base(&self) -> u64 {
        slot_base(self.slot)
    }

    /// First guest-physical address mapped.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Bytes mapped.
    pub fn bytes(&self) -> u64 {
        self.len
    }

    /// Address in this process of the first byte mapped.
    pub fn host_addr(&self) -> u64 {
        self.guest.host_address() + self.start
    }
}

/// The memory slot of window `slot` over guest range `start..start + len`
/// at `host_addr` (a zero `len` describes its deletion).
fn memory_region(slot: usize, start: u64, len: u64, host_addr: u64) -> kvm_userspace_memory_region {
    kvm_userspace_memory_region {
        slot: WINDOW_MEMSLOT + slot as u32,
        flags: 0,
        guest_phys_addr: slot_base(slot) + start,
        memory_size: len,
        userspace_addr: if len == 0 { 0 } else { host_addr },
    }
}

impl Drop for ForeignWindow {
    fn drop(&mut self) {
        let region = memory_region(self.slot, self.start, 0, 0);
        // SAFETY: a zero-sized region deletes the slot; nothing is mapped.
        if let Err(e) = unsafe { self.reserved.set_window(self.slot, region) } {
            // Dom0 may still reach the guest's memory through the slot:
            // keep that memory mapped for good, and the slot out of use,
            // rather than let a later mapping appear there.
            tracing::error!(
                "removing foreign window {}: {e}; its memory stays mapped",
                self.slot
            );
            std::mem::forget(self.guest.clone());
            return;
        }
        self.reserved.free_window(self.slot);
    }
}
