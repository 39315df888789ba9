//! Devices that come and go while the guest runs (`xl block-attach`,
//! `block-detach`, `network-attach`, `network-detach`). The toolstack
//! keeps the current device table in the shared page, bumps a generation
//! and raises the control vector; the guest takes the table in, and
//! acknowledges the generation once it no longer uses any device that
//! left.
//!
//! * A new disk is brought up, described and its data verified, then let
//!   go (nothing keeps using it).
//! * A new network device becomes an interface of its own, with its own
//!   address and services, beside any already up ([`crate::net::attach`]).
//! * A network device that left is reset and its interface dropped
//!   before the generation is acknowledged ([`crate::net::detach`]), so
//!   the host may take the device away once it sees the acknowledgement.
//!
//! The console shows `xvdb attached`, `eth1 attached: mac ..., ipv4
//! ..., mtu 1500, link up`, `eth1 detached` and so on.

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
    /// The generation last taken in (and acknowledged).
    seen: u32,
    /// The devices of that generation.
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

    /// Takes in a changed device table (see the module documentation),
    /// then acknowledges the generation. If the network stacks are in use
    /// further up the call chain, does nothing (the next call retries).
    pub fn check(&mut self, args: &Args) {
        let now = generation();
        if now == self.seen {
            return;
        }
        let current = devices();
        let mut out = Out::open();
        // A device replaced by another in the same window is both gone
        // and new.
        let in_table = |list: &[GuestDevice], d: &GuestDevice| list.contains(d);
        let gone: Vec<GuestDevice> = (self.known.iter())
            .filter(|d| !in_table(&current, d))
            .copied()
            .collect();
        for dev in &gone {
            if dev.kind == kind::NET && crate::net::detach(dev.mmio_base).is_none() {
                return;
            }
            // Forgotten at once: nothing else is retried for it.
            self.known.retain(|d| d != dev);
            outln!(out, "{} detached", dev.vdev());
        }
        let added: Vec<GuestDevice> = (current.iter())
            .filter(|c| !in_table(&self.known, c))
            .copied()
            .collect();
        for new in &added {
            match new.kind {
                kind::BLOCK => attach_disk(&mut out, new, args),
                kind::NET => match crate::net::attach(new) {
                    None => return,
                    Some(Ok(what)) => outln!(out, "{} attached: {what}", new.vdev()),
                    Some(Err(e)) => outln!(out, "{} attached but unusable: {e}", new.vdev()),
                },
                other => outln!(out, "{} attached (kind {other})", new.vdev()),
            }
            self.known.push(*new);
        }
        self.known = current;
        self.seen = now;
        // SAFETY: the guest's own field of the shared page.
        unsafe { (&shared_info().devices_ack as *const u32 as *mut u32).write_volatile(now) };
    }
}

/// Brings up a new disk, describes it and verifies its data (the result
/// goes to the console and as a report).
fn attach_disk(out: &mut Out, dev: &GuestDevice, args: &Args) {
    match Blk::open(dev, args.poll_ns()) {
        Ok(mut blk) => {
            outln!(out, "{} attached", dev.vdev());
            crate::disk::describe(out, &mut blk);
            if blk.info().read_only {
                outln!(out, "{}: read-only, no pattern written", dev.vdev());
            } else if let Err(e) = crate::disk::verify(
                out,
                &mut blk,
                args,
                args.seed.unwrap_or_else(guest_runtime::time::rdtsc),
            ) {
                outln!(out, "{}: pattern check stopped: {e}", dev.vdev());
            }
        }
        Err(e) => outln!(out, "{} attached but unusable: {e}", dev.vdev()),
    }
}
