//! The kernel heap: every byte of RAM after the kernel image.

use linked_list_allocator::LockedHeap;
use protocol::boot::BootInfo;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

pub(crate) fn init(boot: &BootInfo) {
    let start = boot.kernel_end;
    let size = boot.ram_bytes.saturating_sub(start);
    // SAFETY: the core reserved nothing above `kernel_end`; this RAM is
    // ours and handed to the allocator once.
    unsafe { HEAP.lock().init(start as *mut u8, size as usize) };
}

/// Bytes of heap in use.
pub fn used() -> usize {
    HEAP.lock().used()
}
