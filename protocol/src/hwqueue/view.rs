//! [`QueueView`]: a hardware queue's rings seen through pointers, the
//! `no_std` logic that pushes SQEs and pops CQEs through the shared memory
//! only (Dom0's kernel runs it; so do the hardware-queue tests).

use core::sync::atomic::{AtomicU32, Ordering};

use super::abi::{Cqe, QueueLayout, Sqe, CQ_EVENTFD_DISABLED, SQ_CQ_OVERFLOW, SQ_NEED_WAKEUP};

/// The SQ was full: the kernel has not yet consumed earlier entries (ring
/// the doorbell and retry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqFull;

/// A queue's rings seen through pointers: the `no_std` logic that pushes
/// SQEs and pops CQEs through the shared memory only.
///
/// It keeps its own copy of the SQ tail and the CQ head (the fields Dom0
/// owns), so a queue must have exactly one `QueueView` at a time.
#[derive(Debug)]
pub struct QueueView {
    sq_head: *const AtomicU32,
    sq_tail: *const AtomicU32,
    sq_flags: *const AtomicU32,
    sq_array: *mut u32,
    sqes: *mut Sqe,
    cq_head: *const AtomicU32,
    cq_tail: *const AtomicU32,
    cq_flags: *const AtomicU32,
    cqes: *const Cqe,
    sq_mask: u32,
    sq_entries: u32,
    cq_mask: u32,
    local_sq_tail: u32,
    local_cq_head: u32,
}

impl QueueView {
    /// Views the queue `layout` describes, with its SQ ring area mapped at
    /// `sq_ring`, its CQ ring area at `cq_ring` and its SQE array at `sqes`
    /// (in an identity-mapped guest: the guest-physical addresses).
    ///
    /// # Safety
    ///
    /// The three pointers must map the areas `layout` describes, valid for
    /// reads and writes (4-byte aligned fields, 8-byte aligned entries) for
    /// as long as the view is used, and no other `QueueView` of the same
    /// queue may be used meanwhile.
    pub unsafe fn new(
        layout: &QueueLayout,
        sq_ring: *mut u8,
        cq_ring: *mut u8,
        sqes: *mut u8,
    ) -> Self {
        let sq = |off: u32| sq_ring.wrapping_add(off as usize);
        let cq = |off: u32| cq_ring.wrapping_add(off as usize);
        let sq_tail = sq(layout.sq_off.tail) as *const AtomicU32;
        let cq_head = cq(layout.cq_off.head) as *const AtomicU32;
        // SAFETY: the caller guarantees both fields are mapped, aligned and
        // shared only with the kernel; Dom0 is their only writer.
        let (local_sq_tail, local_cq_head) = unsafe {
            (
                (*sq_tail).load(Ordering::Relaxed),
                (*cq_head).load(Ordering::Relaxed),
            )
        };
        Self {
            sq_head: sq(layout.sq_off.head) as *const AtomicU32,
            sq_tail,
            sq_flags: sq(layout.sq_off.flags) as *const AtomicU32,
            sq_array: if layout.sq_off.array == 0 {
                core::ptr::null_mut()
            } else {
                sq(layout.sq_off.array) as *mut u32
            },
            sqes: sqes as *mut Sqe,
            cq_head,
            cq_tail: cq(layout.cq_off.tail) as *const AtomicU32,
            cq_flags: cq(layout.cq_off.flags) as *const AtomicU32,
            cqes: cq(layout.cq_off.cqes) as *const Cqe,
            sq_mask: layout.sq_entries.wrapping_sub(1),
            sq_entries: layout.sq_entries,
            cq_mask: layout.cq_entries.wrapping_sub(1),
            local_sq_tail,
            local_cq_head,
        }
    }

    fn load(field: *const AtomicU32, order: Ordering) -> u32 {
        // SAFETY: every field pointer was checked valid by `new`'s caller.
        unsafe { (*field).load(order) }
    }

    /// SQEs published but not yet consumed by the kernel.
    pub fn sq_pending(&self) -> u32 {
        self.local_sq_tail
            .wrapping_sub(Self::load(self.sq_head, Ordering::Acquire))
    }

    /// Free SQ slots.
    pub fn sq_space(&self) -> u32 {
        self.sq_entries.saturating_sub(self.sq_pending())
    }

    /// Writes `sqe` in the next free slot and publishes it (release-store
    /// of the SQ tail). The kernel sees it at the next doorbell.
    pub fn push(&mut self, sqe: &Sqe) -> Result<(), SqFull> {
        if self.sq_space() == 0 {
            return Err(SqFull);
        }
        let tail = self.local_sq_tail;
        let slot = tail & self.sq_mask;
        // SAFETY: `slot < sq_entries`, so the entry (and the array element)
        // lie inside the areas `new`'s caller vouched for; the kernel does
        // not read the slot until the tail store below publishes it.
        unsafe {
            core::ptr::write_volatile(self.sqes.add(slot as usize), *sqe);
            if !self.sq_array.is_null() {
                core::ptr::write_volatile(self.sq_array.add(slot as usize), slot);
            }
            self.local_sq_tail = tail.wrapping_add(1);
            (*self.sq_tail).store(self.local_sq_tail, Ordering::Release);
        }
        Ok(())
    }

    /// CQEs posted and not yet popped.
    pub fn cq_ready(&self) -> u32 {
        Self::load(self.cq_tail, Ordering::Acquire).wrapping_sub(self.local_cq_head)
    }

    /// Takes the oldest completion, if any (acquire-load of the CQ tail,
    /// then release-store of the CQ head once the entry is copied out).
    pub fn pop(&mut self) -> Option<Cqe> {
        if self.cq_ready() == 0 {
            return None;
        }
        let head = self.local_cq_head;
        // SAFETY: `head & cq_mask < cq_entries`, inside the CQE array; the
        // acquire load in `cq_ready` ordered the kernel's write of this
        // entry before this read, and the kernel does not reuse the slot
        // until the head store below.
        let cqe = unsafe {
            let cqe = core::ptr::read_volatile(self.cqes.add((head & self.cq_mask) as usize));
            self.local_cq_head = head.wrapping_add(1);
            (*self.cq_head).store(self.local_cq_head, Ordering::Release);
            cqe
        };
        Some(cqe)
    }

    /// Turns completion interrupts on or off ([`CQ_EVENTFD_DISABLED`]),
    /// e.g. off while polling. Completions are still posted either way.
    pub fn set_completion_interrupts(&mut self, enabled: bool) {
        // SAFETY: the flags word is a valid field (see `new`); the kernel
        // only reads it.
        unsafe {
            if enabled {
                (*self.cq_flags).fetch_and(!CQ_EVENTFD_DISABLED, Ordering::Release);
            } else {
                (*self.cq_flags).fetch_or(CQ_EVENTFD_DISABLED, Ordering::Release);
            }
        }
    }

    /// True if the SQ's polling thread sleeps ([`SQ_NEED_WAKEUP`]), read
    /// after a full fence so it is ordered after the SQ tail just published
    /// (as liburing does): false means the thread will see the new SQEs.
    pub fn sq_needs_wakeup(&self) -> bool {
        core::sync::atomic::fence(Ordering::SeqCst);
        Self::load(self.sq_flags, Ordering::Relaxed) & SQ_NEED_WAKEUP != 0
    }

    /// True if the kernel is holding completions back because the CQ ring
    /// was full ([`SQ_CQ_OVERFLOW`]).
    pub fn cq_overflowed(&self) -> bool {
        Self::load(self.sq_flags, Ordering::Acquire) & SQ_CQ_OVERFLOW != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hwqueue::*;

    #[test]
    fn view_pushes_and_pops_through_memory_only() {
        // A fake ring area: head/tail words, then 4 CQEs; 4 SQEs elsewhere.
        #[repr(C, align(64))]
        struct Rings([u32; 64]);
        let mut rings = Rings([0; 64]);
        let mut sqes = [Sqe::default(); 4];
        let layout = QueueLayout {
            sq_entries: 4,
            cq_entries: 4,
            sq_off: SqRingOffsets {
                head: 0,
                tail: 4,
                flags: 8,
                ..Default::default()
            },
            cq_off: CqRingOffsets {
                head: 16,
                tail: 20,
                flags: 24,
                overflow: 28,
                cqes: 64,
                ..Default::default()
            },
            ..Default::default()
        };
        let base = rings.0.as_mut_ptr() as *mut u8;
        let sqe_base = sqes.as_mut_ptr();
        let word = |index: usize| base.wrapping_add(4 * index) as *mut u32;
        let poke = |index: usize, value: u32| {
            // SAFETY: `index` < 64 stays inside `rings`, which outlives
            // every use; all accesses go through `base`.
            unsafe { core::ptr::write_volatile(word(index), value) }
        };
        let peek = |index: usize| {
            // SAFETY: as for `poke`.
            unsafe { core::ptr::read_volatile(word(index)) }
        };
        // SAFETY: both arrays outlive the view and cover every offset used.
        let mut view = unsafe { QueueView::new(&layout, base, base, sqe_base as *mut u8) };
        for i in 0..4 {
            view.push(&Sqe::nop(i)).unwrap();
        }
        assert_eq!(view.push(&Sqe::nop(9)), Err(SqFull));
        assert_eq!(view.sq_pending(), 4);
        // The "kernel" consumes two SQEs and posts one completion.
        poke(0, 2);
        poke(16, 7); // CQE 0: user_data, low word
        poke(18, (-errno::EACCES) as u32); // CQE 0: res
        poke(5, 1); // CQ tail
        assert_eq!(view.sq_space(), 2);
        let cqe = view.pop().unwrap();
        assert_eq!((cqe.user_data, cqe.res), (7, -errno::EACCES));
        assert_eq!(view.pop(), None);
        assert_eq!(peek(4), 1, "CQ head published");
        assert_eq!(peek(1), 4, "SQ tail published");
        // SAFETY: slot 3 is inside `sqes`, written by the view above.
        assert_eq!(unsafe { (*sqe_base.add(3)).user_data }, 3);
        view.set_completion_interrupts(false);
        assert_eq!(peek(6), CQ_EVENTFD_DISABLED);
        view.set_completion_interrupts(true);
        assert_eq!(peek(6), 0);
    }
}
