//! The part of Domain-0's RAM the core keeps for itself.
//!
//! From [`protocol::boot::BootInfo::reserved_start`] up to the end of RAM
//! lie the core's structures: the backend ring, the guests' ioreq pages,
//! the hardware-queue rings and the foreign windows' page tables. Dom0
//! touches only what the core points it at, and checks every such pointer
//! against this region before using it.

use protocol::boot::BootInfo;

/// The reserved region `[start, end)` of Dom0-physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserved {
    start: u64,
    end: u64,
}

impl Reserved {
    /// The region the boot info describes (empty if it makes no sense).
    pub fn from_boot(boot: &BootInfo) -> Self {
        let end = boot.ram_bytes.min(protocol::memory::MMIO_BASE);
        Self {
            start: boot.reserved_start.min(end),
            end,
        }
    }

    /// True if `len` bytes at `addr` lie inside the region and `addr` is a
    /// multiple of `align` (a power of two).
    pub fn holds(&self, addr: u64, len: u64, align: u64) -> bool {
        addr & (align - 1) == 0
            && addr >= self.start
            && addr.checked_add(len).is_some_and(|end| end <= self.end)
    }
}
