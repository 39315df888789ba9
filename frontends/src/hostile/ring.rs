//! What the ring attacks on every device share: the context an attack
//! writes a queue's rings with, the launch, and the watch for the
//! device's reaction.

use alloc::format;
use alloc::string::String;

use guest_runtime::{control, event, time};
use protocol::virtio::mmio::STATUS_DEVICE_NEEDS_RESET;
use protocol::virtio::queue::{Descriptor, DESC_F_NEXT};

use crate::dma::DmaBuf;
use crate::virtio::queue::RawQueue;

/// An address far outside any guest's RAM.
pub const FAR: u64 = 0x7FFF_0000_0000;
/// How long to wait for the device's reaction to an attack.
pub const REACTION_NS: u64 = 1_000_000_000;

/// What the device must do with an attack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A ring rule is broken: DEVICE_NEEDS_RESET.
    RingRule,
    /// A malformed request on a sound ring: DEVICE_NEEDS_RESET, or the
    /// request returned with an error (what counts as one is the
    /// device's).
    Refusal,
}

/// What an attack writes with.
pub struct Ctx<'a> {
    /// The attacked queue, raw.
    pub raw: RawQueue<'a>,
    /// Driver memory the requests point into (at offsets each device's
    /// attacks define).
    pub scratch: &'a mut DmaBuf,
    /// The queue size.
    pub size: u16,
    /// The guest's RAM size.
    pub ram_bytes: u64,
}

impl Ctx<'_> {
    /// The guest-physical address of scratch byte `offset`.
    pub fn addr(&self, offset: usize) -> u64 {
        self.scratch.addr(offset)
    }

    /// Writes descriptor `idx` of the ring's table.
    pub fn d(&mut self, idx: u16, addr: u64, len: u32, flags: u16, next: u16) {
        self.raw.desc(
            idx,
            Descriptor {
                addr,
                len,
                flags,
                next,
            },
        );
    }

    /// Writes entry `i` of the indirect table at scratch offset `table`.
    pub fn t(&mut self, table: usize, i: usize, addr: u64, len: u32, flags: u16, next: u16) {
        let d = Descriptor {
            addr,
            len,
            flags,
            next,
        };
        let at = table + 16 * i;
        self.scratch.bytes_mut()[at..at + 16].copy_from_slice(&d.to_bytes());
    }

    /// Makes `head` available and publishes the index.
    pub fn publish(&mut self, head: u16) {
        self.raw.push(head);
        let idx = self.raw.avail_shadow();
        self.raw.publish(idx);
    }

    /// Chains every descriptor of the table, the last one leading back to
    /// the first: `size + 1` buffers, `first` (address, length) then
    /// `rest`, all device-readable; made available.
    pub fn chain_all(&mut self, first: (u64, u32), rest: (u64, u32)) {
        for i in 0..self.size {
            let (addr, len) = if i == 0 { first } else { rest };
            self.d(i, addr, len, DESC_F_NEXT, (i + 1) % self.size);
        }
        self.publish(0);
    }

    /// Makes `head` available with an available index that runs past
    /// the queue size.
    pub fn jump_avail_idx(&mut self, head: u16) {
        self.raw.push(head);
        let idx = self.size.wrapping_add(1);
        self.raw.publish(idx);
    }

    /// Asks for an interrupt at the next used entry and rings the
    /// doorbell: the attack is on.
    pub fn launch(&mut self) {
        self.raw.arm();
        self.raw.notify();
    }
}

/// What the device did with an attack, seen from the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reaction {
    /// The status register read after the attack.
    pub status: u32,
    /// It showed DEVICE_NEEDS_RESET.
    pub needs_reset: bool,
    /// The device returned a chain in the used ring.
    pub used: bool,
    /// The used length of the first element.
    pub used_len: u32,
    /// The device's interrupt came.
    pub interrupted: bool,
}

impl Reaction {
    /// The reaction given the status read after the attack, the attacked
    /// queue and whether the interrupt came.
    pub fn observe(status: u32, raw: &RawQueue, interrupted: bool) -> Self {
        Self {
            status,
            needs_reset: status & STATUS_DEVICE_NEEDS_RESET != 0,
            used: raw.used_idx() != 0,
            used_len: raw.used_elem(0).len,
            interrupted,
        }
    }

    /// What the console line says: `device status 0x..: needs reset`,
    /// `completed` (what the device returned, described by the caller),
    /// or `no reaction (...)`.
    pub fn describe(&self, completed: impl FnOnce() -> String) -> String {
        let status = self.status;
        if self.needs_reset {
            format!("device status {status:#x}: needs reset")
        } else if self.used {
            completed()
        } else {
            format!(
                "no reaction (status {status:#x}, {})",
                if self.interrupted {
                    "interrupted"
                } else {
                    "no interrupt"
                }
            )
        }
    }
}

/// Forgets interrupts left over from earlier requests (obeying a control
/// request among them).
pub fn forget_interrupts() {
    if event::poll().control() {
        control::obey("frontends");
    }
}

/// Waits for the interrupt on `port` or until `used()` says the device
/// returned a chain, at most [`REACTION_NS`]; true if the interrupt
/// came.
pub fn wait_reaction(port: u32, mut used: impl FnMut() -> bool) -> bool {
    let deadline = time::rdtsc() + time::ns_to_ticks(REACTION_NS);
    loop {
        if used() {
            return false;
        }
        let events = event::wait_until(deadline);
        if events.control() {
            control::obey("frontends");
        }
        if events.has_port(port) {
            return true;
        }
        if time::rdtsc() >= deadline {
            return false;
        }
    }
}

/// The end of a check's detail: whether the device came back.
pub fn recovery(recovered: bool) -> &'static str {
    if recovered {
        "recovered after reset"
    } else {
        "did NOT recover"
    }
}
