//! The backend ring: how the toolstack tells Dom0 about the devices it
//! must serve. The ring's layout and its consumer code are
//! [`protocol::backend_ring`]'s, shared with the producer in `hypd`; this
//! module finds the ring and checks where it is.
//!
//! The producer raises [`protocol::evtchn::BACKEND_VECTOR`] after each
//! entry. The runtime does not name that vector in its events, so the
//! main loop calls [`BackendRing::next`] on every wake-up: one acquire
//! load of `producer` when nothing is new, and an interrupt that went
//! unnoticed costs nothing.

use guest_runtime::{println, BootInfo};
use protocol::backend_ring::{BackendRing as Ring, Consumer, BACKEND_RING_ENTRIES};
use protocol::device::BackendEvent;

use crate::reserved::Reserved;

/// Dom0's end of the backend ring.
#[derive(Debug)]
pub struct BackendRing {
    consumer: Consumer,
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
        // SAFETY: the core placed the ring at this address in the reserved
        // region (checked above), which Dom0's identity map covers for its
        // whole life; Dom0 is its only consumer.
        let consumer = unsafe { Consumer::new(addr as *mut Ring) };
        Some(Self {
            consumer,
            overrun_logged: false,
        })
    }

    /// True if the producer appended entries Dom0 has not read yet.
    pub fn has_events(&self) -> bool {
        self.consumer.unread() != 0
    }

    /// Takes the oldest unread entry, if any, and gives its slot back.
    pub fn next(&mut self) -> Option<BackendEvent> {
        let unread = self.consumer.unread();
        if unread as usize > BACKEND_RING_ENTRIES && !self.overrun_logged {
            // The producer promised to wait for room; entries were lost.
            println!("service-vm: backend ring overrun ({unread} entries unread)");
            self.overrun_logged = true;
        }
        self.consumer.pop()
    }
}
