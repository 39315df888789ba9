//! Devices that come and go while the guest runs (`xl block-attach`,
//! `xl block-detach`). The toolstack keeps the current device table in
//! the shared page, bumps a generation and raises the control vector; the
//! guest takes the table in, and acknowledges the generation once it no
//! longer uses any device that left.

use alloc::vec::Vec;
use guest_runtime::hypercall::shared_info;
use protocol::device::{kind, GuestDevice};

use crate::cmdline::Args;
use crate::out::Out;
use crate::outln;
use crate::virtio::blk::Blk;
use crate::virtio::{devices, generation};

/// The devices this guest knows, and the table generation they match.
pub struct Hotplug {
    seen: u32,
    known: Vec<GuestDevice>,
}

impl Hotplug {
    /// Starts from the devices the guest booted with.
    pub fn new() -> Self {
        let seen = generation();
        Self {
            seen,
            known: devices(),
        }
    }

    /// Takes in a changed device table: a new disk is brought up and its
    /// data verified (the result goes to the console and as a report); a
    /// device that left is forgotten. Then acknowledges the generation.
    pub fn check(&mut self, args: &Args) {
        let now = generation();
        if now == self.seen {
            return;
        }
        let current = devices();
        let mut out = Out::open();
        for gone in self
            .known
            .iter()
            .filter(|d| !current.iter().any(|c| c.mmio_base == d.mmio_base))
        {
            outln!(out, "{} detached", gone.vdev());
        }
        for new in current
            .iter()
            .filter(|c| !self.known.iter().any(|d| d.mmio_base == c.mmio_base))
        {
            if new.kind != kind::BLOCK {
                outln!(out, "{} attached (kind {})", new.vdev(), new.kind);
                continue;
            }
            match Blk::open(new, args.poll_ns()) {
                Ok(mut blk) => {
                    outln!(out, "{} attached", new.vdev());
                    crate::disk::describe(&mut out, &mut blk);
                    if blk.info().read_only {
                        outln!(out, "{}: read-only, no pattern written", new.vdev());
                    } else if let Err(e) = crate::disk::verify(&mut out, &mut blk, args) {
                        outln!(out, "{}: pattern check stopped: {e}", new.vdev());
                    }
                }
                Err(e) => outln!(out, "{} attached but unusable: {e}", new.vdev()),
            }
        }
        self.known = current;
        self.seen = now;
        // SAFETY: the guest's own field of the shared page.
        unsafe { (&shared_info().devices_ack as *const u32 as *mut u32).write_volatile(now) };
    }
}
