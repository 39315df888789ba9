//! Memory a device reads and writes: page-aligned heap allocations.
//!
//! This kernel runs on the core's identity map, so the address of a heap
//! object is also its guest-physical address, which is what descriptors
//! and queue registers carry. A [`DmaBuf`] hands out raw addresses rather
//! than references while a device may touch it; the owner reads and writes
//! it through [`DmaBuf::bytes`] / [`DmaBuf::bytes_mut`] only when no
//! request on it is in flight.

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use core::ptr::NonNull;

use protocol::memory::PAGE_SIZE;

/// The heap could not provide a buffer of the size asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory(pub usize);

/// A zeroed, page-aligned buffer in guest RAM that a device may access.
pub struct DmaBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl DmaBuf {
    /// Allocates `len` zeroed bytes (at least one page), page-aligned.
    pub fn new(len: usize) -> Result<Self, OutOfMemory> {
        let size = len.max(1).next_multiple_of(PAGE_SIZE as usize);
        let layout =
            Layout::from_size_align(size, PAGE_SIZE as usize).map_err(|_| OutOfMemory(len))?;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).ok_or(OutOfMemory(len))?;
        Ok(Self { ptr, layout })
    }

    /// Bytes allocated (a whole number of pages).
    pub fn len(&self) -> usize {
        self.layout.size()
    }

    /// Guest-physical address of byte `offset` (not checked against the
    /// length: callers compute offsets inside the buffer).
    pub fn addr(&self, offset: usize) -> u64 {
        self.ptr.as_ptr() as u64 + offset as u64
    }

    /// Raw pointer to byte `offset`, for volatile and atomic accesses to
    /// fields a device writes.
    pub fn ptr(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset <= self.len());
        self.ptr.as_ptr().wrapping_add(offset)
    }

    /// The whole buffer. Only while no device request uses it.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the allocation is `len()` initialised bytes owned by
        // `self`; no device writes it while the owner borrows it (the
        // owner's contract, see the module documentation).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len()) }
    }

    /// The whole buffer, mutably. Only while no device request uses it.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `bytes`, and `&mut self` makes the borrow unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len()) }
    }

    /// Zeroes the buffer.
    pub fn zero(&mut self) {
        self.bytes_mut().fill(0);
    }
}

impl Drop for DmaBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) };
    }
}
