//! The kernel heap: the RAM between the kernel image and the region the
//! core reserves (Dom0 only).

use linked_list_allocator::LockedHeap;
use protocol::boot::BootInfo;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

pub(crate) fn init(boot: &BootInfo) {
    let start = boot.kernel_end;
    let end = boot.reserved_start.min(boot.ram_bytes);
    let size = end.saturating_sub(start);
    // SAFETY: RAM from `kernel_end` up to the core's reserved region is
    // ours, and handed to the allocator once.
    unsafe { HEAP.lock().init(start as *mut u8, size as usize) };
}

/// Bytes of heap in use.
pub fn used() -> usize {
    HEAP.lock().used()
}
