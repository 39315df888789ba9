//! The backend ring: how the toolstack tells Domain-0 which devices to
//! serve. Its layout *and* the code both ends run are here, as Xen's
//! `public/io/ring.h` ships its macros with the ring's layout.
//!
//! The ring is one page in Dom0's reserved RAM (the core reserves it and
//! names it in [`crate::boot::BootInfo::backend_ring`]). The producer is
//! the device setup in `hypd`; the consumer is Dom0's kernel. Both indices
//! run freely and wrap; entry `i` lives in slot `i % BACKEND_RING_ENTRIES`.
//!
//! * Produce: write the entry in slot `producer`, then **release**-store
//!   `producer + 1`. Never write while `producer - consumer` equals
//!   [`BACKEND_RING_ENTRIES`] (the ring is full: wait for Dom0).
//! * Consume: **acquire**-load `producer`, read the entries up to it, then
//!   **release**-store the new `consumer` so the producer may reuse the
//!   slots.
//!
//! After producing, the producer raises [`crate::evtchn::BACKEND_VECTOR`]
//! in Dom0; Dom0 checks the ring on every wake-up whatever woke it.

use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{AtomicU32, Ordering};

use crate::device::BackendEvent;

/// Entries in the backend ring: a power of two, so that the free-running
/// indices stay in step with the slots when they wrap.
pub const BACKEND_RING_ENTRIES: usize = 16;

const _: () = assert!(BACKEND_RING_ENTRIES.is_power_of_two());

/// The backend ring's layout in its page.
#[repr(C)]
pub struct BackendRing {
    /// Entries written by the producer (free-running).
    pub producer: u32,
    /// Entries consumed by Dom0 (free-running).
    pub consumer: u32,
    /// The entries.
    pub entries: [BackendEvent; BACKEND_RING_ENTRIES],
}

const _: () = assert!(core::mem::size_of::<BackendRing>() <= crate::memory::PAGE_SIZE as usize);

/// The ring is full: the consumer has not made room yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingFull;

/// One end's access to a ring in shared memory.
#[derive(Debug)]
struct Shared {
    ring: *mut BackendRing,
}

// SAFETY: the pointer names shared memory that both ends access only
// through atomics and volatile copies; moving the view between threads
// changes nothing about that.
unsafe impl Send for Shared {}

impl Shared {
    fn producer(&self) -> &AtomicU32 {
        // SAFETY: `producer` is an index of the ring `Producer::new` or
        // `Consumer::new` was given, valid and 4-aligned while the view
        // lives (their contracts); `AtomicU32` has the layout of `u32`.
        unsafe { AtomicU32::from_ptr(addr_of_mut!((*self.ring).producer)) }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { AtomicU32::from_ptr(addr_of_mut!((*self.ring).consumer)) }
    }

    fn slot(&self, index: u32) -> *mut BackendEvent {
        let slot = index as usize % BACKEND_RING_ENTRIES;
        // SAFETY: `slot` is inside the entries array of the ring (the
        // place is computed, not read).
        unsafe { addr_of_mut!((*self.ring).entries[slot]) }
    }
}

/// The producer's end: the toolstack's device setup.
#[derive(Debug)]
pub struct Producer {
    shared: Shared,
    producer: u32,
}

impl Producer {
    /// The producer's end of the ring at `ring`, starting from the
    /// producer index stored there.
    ///
    /// # Safety
    ///
    /// `ring` must point at a `BackendRing` in memory that stays mapped,
    /// readable and writable while the producer lives, that only this
    /// producer produces into, and that the other end accesses only as
    /// this module describes.
    pub unsafe fn new(ring: *mut BackendRing) -> Self {
        let shared = Shared { ring };
        let producer = shared.producer().load(Ordering::Relaxed);
        Self { shared, producer }
    }

    /// Entries written and not yet consumed.
    pub fn unread(&self) -> u32 {
        let consumer = self.shared.consumer().load(Ordering::Acquire);
        self.producer.wrapping_sub(consumer)
    }

    /// Appends `event`, or says the ring is full.
    pub fn push(&mut self, event: &BackendEvent) -> Result<(), RingFull> {
        if self.unread() as usize >= BACKEND_RING_ENTRIES {
            return Err(RingFull);
        }
        // SAFETY: the slot is in the ring (see `Shared::slot`) and free:
        // the consumer has moved past it (checked above) and does not read
        // it again until `producer` says so, below.
        unsafe { self.shared.slot(self.producer).write_volatile(*event) };
        self.producer = self.producer.wrapping_add(1);
        self.shared
            .producer()
            .store(self.producer, Ordering::Release);
        Ok(())
    }
}

/// The consumer's end: Domain-0.
#[derive(Debug)]
pub struct Consumer {
    shared: Shared,
    consumer: u32,
}

impl Consumer {
    /// The consumer's end of the ring at `ring`, starting from the
    /// consumer index stored there.
    ///
    /// # Safety
    ///
    /// As for [`Producer::new`], with "consumes" for "produces".
    pub unsafe fn new(ring: *mut BackendRing) -> Self {
        let shared = Shared { ring };
        let consumer = shared.consumer().load(Ordering::Relaxed);
        Self { shared, consumer }
    }

    /// Entries the producer wrote that this end has not read. More than
    /// [`BACKEND_RING_ENTRIES`] means the producer broke the protocol and
    /// entries were lost.
    pub fn unread(&self) -> u32 {
        let producer = self.shared.producer().load(Ordering::Acquire);
        producer.wrapping_sub(self.consumer)
    }

    /// Takes the oldest unread entry, if any, and gives its slot back.
    pub fn pop(&mut self) -> Option<BackendEvent> {
        if self.unread() == 0 {
            return None;
        }
        // SAFETY: the slot is in the ring; the acquire load of `producer`
        // in `unread` ordered the producer's write of the entry before this
        // read, and the producer does not reuse the slot until `consumer`
        // moves past it, below.
        let event = unsafe { addr_of!(*self.shared.slot(self.consumer)).read_volatile() };
        self.consumer = self.consumer.wrapping_add(1);
        self.shared
            .consumer()
            .store(self.consumer, Ordering::Release);
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(device_id: u32) -> BackendEvent {
        BackendEvent {
            device_id,
            ..Default::default()
        }
    }

    #[test]
    fn entries_arrive_in_order_and_a_full_ring_refuses_more() {
        let mut page = alloc::boxed::Box::new(BackendRing {
            producer: u32::MAX - 3, // the indices wrap on the way
            consumer: u32::MAX - 3,
            entries: [BackendEvent::default(); BACKEND_RING_ENTRIES],
        });
        let ring: *mut BackendRing = &mut *page;
        // SAFETY: the box outlives both ends and is touched only by them.
        let (mut producer, mut consumer) = unsafe { (Producer::new(ring), Consumer::new(ring)) };
        assert_eq!(consumer.pop(), None);
        for id in 0..BACKEND_RING_ENTRIES as u32 {
            producer.push(&event(id)).unwrap();
        }
        assert_eq!(producer.push(&event(99)), Err(RingFull));
        assert_eq!(consumer.unread(), BACKEND_RING_ENTRIES as u32);
        assert_eq!(consumer.pop(), Some(event(0)));
        producer.push(&event(99)).unwrap();
        for id in 1..BACKEND_RING_ENTRIES as u32 {
            assert_eq!(consumer.pop(), Some(event(id)));
        }
        assert_eq!(consumer.pop(), Some(event(99)));
        assert_eq!(consumer.pop(), None);
    }
}
