//! The backend ring: how the core tells Dom0 about the devices it must
//! serve (see [`protocol::device::BackendRing`]).
//!
//! The core writes an entry, release-stores `producer + 1` and raises
//! [`protocol::evtchn::BACKEND_VECTOR`]. The runtime does not name that
//! vector in its events, so the main loop calls [`BackendRing::next`] on
//! every wake-up: one acquire load of `producer` when nothing is new, and
//! an interrupt that went unnoticed costs nothing.

use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{AtomicU32, Ordering};

use guest_runtime::{println, BootInfo};
use protocol::device::{BackendEvent, BackendRing as Ring, BACKEND_RING_ENTRIES};

use crate::reserved::Reserved;

/// Dom0's end of the backend ring.
#[derive(Debug)]
pub struct BackendRing {
    ring: *mut Ring,
    consumer: u32,
    overrun_logged: bool,
}

impl BackendRing {
    /// The ring the boot info points at, or `None` (logged) if there is
    /// none or it lies outside the reserved region.
    pub fn from_boot(boot: &BootInfo, reserved: Reserved) -> Option<Self> {
        let addr = boot.backend_ring;
        if addr == 0 {
            println!("service-vm: no backend ring: serving no devices");
            return None;
        }
        let size = core::mem::size_of::<Ring>() as u64;
        if !reserved.holds(addr, size, 8) {
            println!("service-vm: backend ring at {addr:#x} is outside the reserved RAM: ignored");
            return None;
        }
        let ring = addr as *mut Ring;
        // SAFETY: the core placed a `BackendRing` at this address in the
        // reserved region (checked above), mapped in Dom0's identity map;
        // Dom0 is the only writer of `consumer`.
        let consumer =
            unsafe { Self::word(addr_of_mut!((*ring).consumer)) }.load(Ordering::Relaxed);
        Some(Self {
            ring,
            consumer,
            overrun_logged: false,
        })
    }

    /// Views a `u32` field of the ring as an atomic.
    ///
    /// # Safety
    ///
    /// `field` must point at a field of the ring (valid and 4-aligned for
    /// the life of Dom0).
    unsafe fn word<'a>(field: *mut u32) -> &'a AtomicU32 {
        // SAFETY: per the contract; `AtomicU32` has the layout of `u32`.
        unsafe { AtomicU32::from_ptr(field) }
    }

    /// True if the core appended entries Dom0 has not read yet.
    pub fn has_events(&self) -> bool {
        self.producer() != self.consumer
    }

    fn producer(&self) -> u32 {
        // SAFETY: `producer` is a field of the ring `from_boot` checked.
        unsafe { Self::word(addr_of_mut!((*self.ring).producer)) }.load(Ordering::Acquire)
    }

    /// Takes the oldest unread entry, if any, and gives its slot back to
    /// the core (release store of `consumer`).
    pub fn next(&mut self) -> Option<BackendEvent> {
        let producer = self.producer();
        let unread = producer.wrapping_sub(self.consumer);
        if unread == 0 {
            return None;
        }
        if unread as usize > BACKEND_RING_ENTRIES && !self.overrun_logged {
            // The core promised to wait for room; entries were lost.
            println!("service-vm: backend ring overrun ({unread} entries unread)");
            self.overrun_logged = true;
        }
        let slot = self.consumer as usize % BACKEND_RING_ENTRIES;
        // SAFETY: `slot` is inside the entries array of the checked ring;
        // the acquire load of `producer` ordered the core's write of the
        // entry before this read, and the core does not reuse the slot
        // until `consumer` moves past it below.
        let event = unsafe { addr_of!((*self.ring).entries[slot]).read_volatile() };
        self.consumer = self.consumer.wrapping_add(1);
        // SAFETY: `consumer` is a field of the checked ring.
        unsafe { Self::word(addr_of_mut!((*self.ring).consumer)) }
            .store(self.consumer, Ordering::Release);
        Some(event)
    }
}
