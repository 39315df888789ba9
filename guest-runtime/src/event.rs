//! Waiting for and collecting interrupts, from ring 3.
//!
//! The interrupt stubs only set bits in this vCPU's pending bitmap. Ring 3
//! drains the bitmap with atomic swaps ([`poll`]) and, when nothing is
//! there, enters the wait gate ([`wait_until`]), which re-checks the bitmap
//! with interrupts off and then does `sti; hlt`, so an interrupt that lands
//! between the check and the halt still wakes it.

use crate::arch::percpu::cpu_index;
use core::sync::atomic::{AtomicU64, Ordering};
use protocol::domain::MAX_VCPUS;
use protocol::evtchn::{vector_port, CONTROL_VECTOR, TIMER_VECTOR};

/// Bits of interrupt vectors seen but not yet collected, for one vCPU.
#[repr(C, align(64))]
pub struct Pending(pub [AtomicU64; 4]);

/// One pending bitmap per vCPU, written by the stubs, drained here in ring 3.
pub static PENDING: [Pending; MAX_VCPUS] =
    [const { Pending([const { AtomicU64::new(0) }; 4]) }; MAX_VCPUS];

/// Interrupt vectors collected in one [`poll`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events([u64; 4]);

impl Events {
    /// True if nothing arrived.
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    fn has_vector(&self, vector: u8) -> bool {
        self.0[vector as usize / 64] & 1 << (vector % 64) != 0
    }

    /// True if the timer fired.
    pub fn timer(&self) -> bool {
        self.has_vector(TIMER_VECTOR)
    }

    /// True if the core left a control request (see
    /// [`protocol::boot::ControlRequest`]).
    pub fn control(&self) -> bool {
        self.has_vector(CONTROL_VECTOR)
    }

    /// True if `port` was notified.
    pub fn has_port(&self, port: u32) -> bool {
        port < protocol::evtchn::NR_PORTS && self.has_vector(protocol::evtchn::port_vector(port))
    }

    /// The event-channel ports that were notified.
    pub fn ports(&self) -> impl Iterator<Item = u32> + '_ {
        (0..=255u8)
            .filter(|&v| self.has_vector(v))
            .filter_map(vector_port)
    }
}

/// Takes whatever interrupts arrived since the last call, without waiting.
pub fn poll() -> Events {
    let pending = &PENDING[cpu_index()].0;
    let mut words = [0; 4];
    for (word, bits) in words.iter_mut().zip(pending) {
        if bits.load(Ordering::Relaxed) != 0 {
            *word = bits.swap(0, Ordering::Acquire);
        }
    }
    Events(words)
}

extern "C" {
    /// The `ud2` the #UD handler treats as "wait" (see [`crate::arch::idt`]).
    fn guest_wait(deadline_tsc: u64);
}

/// Waits until an interrupt arrives or the TSC reaches `deadline_tsc`
/// (0: no deadline), and returns what arrived (empty on a timeout).
pub fn wait_until(deadline_tsc: u64) -> Events {
    loop {
        let events = poll();
        if !events.is_empty() || (deadline_tsc != 0 && crate::time::rdtsc() >= deadline_tsc) {
            return events;
        }
        // SAFETY: `guest_wait` is the wait gate (see `arch::idt`); it
        // preserves every register and returns with interrupts enabled.
        unsafe { guest_wait(deadline_tsc) };
    }
}

/// Marks `vector` pending on this vCPU, as its interrupt stub would.
pub fn raise(vector: u8) {
    PENDING[cpu_index()].0[vector as usize / 64].fetch_or(1 << (vector % 64), Ordering::Release);
}
