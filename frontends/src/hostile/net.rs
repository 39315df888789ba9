//! `workload=nethostile`: a guest that attacks its network device's
//! transmit ring, as `hostile` does the block device's.
//!
//! Each attack runs on a freshly reset device: the driver resets it and
//! brings it up again ([`Net::reinit`]), writes one malformed chain
//! straight into the transmit ring, rings the doorbell and waits (at most
//! a second) for the device's interrupt or a used entry. Then:
//!
//! * attacks on the ring rules (a `next` out of range, a loop, a chain
//!   longer than the queue, buffers outside RAM, a runaway available
//!   index, a head out of range or made available twice, an indirect
//!   descriptor never negotiated) must leave the device in
//!   DEVICE_NEEDS_RESET;
//! * malformed frames on a sound ring (a device-writable buffer, a frame
//!   too long or too short, a header asking for an offload) may instead
//!   come back in the used ring; that the device dropped them rather
//!   than sent them is for the host to say (the vif's `tx_malformed`
//!   counter, which `hypd` logs when the vif goes away).
//!
//! The driver then resets the device again, sends one valid frame and
//! checks that it comes back. Each attack is one `Report::Check` and a
//! console line, `check net-NAME: WHAT; recovered after reset -> ok`,
//! where `WHAT` is `device status 0x..: needs reset`, `returned with used
//! length N` or `no reaction (...)`; `value` is the status register
//! read after the attack. A first check, `net-baseline-frame`, sends one
//! valid frame before any attack. Last, the device is brought up cleanly
//! (`nethostile: device up again; serving`) and the guest serves like
//! `idle`, so a test can check that it still answers ping.

use guest_runtime::{control, time, BootInfo};
use protocol::virtio::mmio::STATUS_DEVICE_NEEDS_RESET;
use protocol::virtio::net::{HDR_F_NEEDS_CSUM, HEADER_SIZE, MAX_FRAME};
use protocol::virtio::queue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};

use super::ring::{
    forget_interrupts, recovery, wait_reaction, Ctx, Expect, Reaction, FAR, REACTION_NS,
};
use crate::cmdline::Args;
use crate::dma::DmaBuf;
use crate::net::frames::{Frame, BROADCAST};
use crate::net::{self, Stack};
use crate::out::Out;
use crate::outln;
use crate::virtio::net::Net;

/// Scratch offset of the virtio-net header.
const HDR: usize = 0;
/// Scratch offset of the indirect table.
const TABLE: usize = 1024;
/// Scratch offset of the frame (room for [`BIG`] bytes).
const FRAME: usize = 2048;
/// Bytes of the valid frame.
const FRAME_LEN: u32 = 60;
/// Bytes of the oversized frame: past the largest the device takes.
const BIG: u32 = MAX_FRAME as u32 + 482;
/// Bytes of scratch memory.
const SCRATCH_BYTES: usize = FRAME + BIG as usize;
/// `gso_type` of TCPv4 segmentation (never offered).
const GSO_TCPV4: u8 = 1;
/// Bytes of the header (for descriptor lengths).
const HDR_LEN: u32 = HEADER_SIZE as u32;

/// One attack: its name, what the device must do, and how to write it
/// into the transmit ring.
struct Attack {
    /// The check's name.
    name: &'static str,
    /// What the device must do.
    expect: Expect,
    /// Writes the attack into the rings.
    build: fn(&mut Ctx),
}

/// A valid frame (header, then frame) as ring descriptors 0 and 1.
fn valid_chain(c: &mut Ctx) {
    let (hdr, frame) = (c.addr(HDR), c.addr(FRAME));
    c.d(0, hdr, HDR_LEN, DESC_F_NEXT, 1);
    c.d(1, frame, FRAME_LEN, 0, 0);
}

/// Every attack, in the order they run.
const ATTACKS: &[Attack] = &[
    Attack {
        name: "net-desc-next-out-of-range",
        expect: Expect::RingRule,
        build: |c| {
            let hdr = c.addr(HDR);
            let next = c.size.wrapping_add(5);
            c.d(0, hdr, HDR_LEN, DESC_F_NEXT, next);
            c.publish(0);
        },
    },
    Attack {
        name: "net-desc-chain-loop",
        expect: Expect::RingRule,
        build: |c| {
            let (hdr, frame) = (c.addr(HDR), c.addr(FRAME));
            c.d(0, hdr, HDR_LEN, DESC_F_NEXT, 1);
            c.d(1, frame, FRAME_LEN, DESC_F_NEXT, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "net-chain-longer-than-queue",
        expect: Expect::RingRule,
        build: |c| {
            let (hdr, frame) = (c.addr(HDR), c.addr(FRAME));
            c.chain_all((hdr, HDR_LEN), (frame, FRAME_LEN));
        },
    },
    Attack {
        name: "net-buffer-outside-ram",
        expect: Expect::RingRule,
        build: |c| {
            let hdr = c.addr(HDR);
            c.d(0, hdr, HDR_LEN, DESC_F_NEXT, 1);
            c.d(1, FAR, FRAME_LEN, 0, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "net-buffer-past-ram",
        expect: Expect::RingRule,
        build: |c| {
            let hdr = c.addr(HDR);
            c.d(0, hdr, HDR_LEN, DESC_F_NEXT, 1);
            c.d(1, c.ram_bytes.saturating_sub(32), 1024, 0, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "net-avail-idx-jump",
        expect: Expect::RingRule,
        build: |c| {
            valid_chain(c);
            c.jump_avail_idx(0);
        },
    },
    Attack {
        name: "net-avail-head-out-of-range",
        expect: Expect::RingRule,
        build: |c| {
            valid_chain(c);
            let head = c.size.wrapping_add(3);
            c.publish(head);
        },
    },
    Attack {
        name: "net-head-available-twice",
        expect: Expect::RingRule,
        build: |c| {
            valid_chain(c);
            c.raw.push(0);
            c.publish(0);
        },
    },
    Attack {
        name: "net-indirect-not-negotiated",
        expect: Expect::RingRule,
        build: |c| {
            let (hdr, frame, table) = (c.addr(HDR), c.addr(FRAME), c.addr(TABLE));
            c.t(TABLE, 0, hdr, HDR_LEN, DESC_F_NEXT, 1);
            c.t(TABLE, 1, frame, FRAME_LEN, 0, 0);
            c.d(0, table, 32, DESC_F_INDIRECT, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "net-tx-writable-descriptor",
        expect: Expect::Refusal,
        build: |c| {
            let (hdr, frame) = (c.addr(HDR), c.addr(FRAME));
            c.d(0, hdr, HDR_LEN, DESC_F_NEXT, 1);
            c.d(1, frame, FRAME_LEN, DESC_F_WRITE, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "net-tx-oversized-frame",
        expect: Expect::Refusal,
        build: |c| {
            let (hdr, frame) = (c.addr(HDR), c.addr(FRAME));
            c.d(0, hdr, HDR_LEN, DESC_F_NEXT, 1);
            c.d(1, frame, BIG, 0, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "net-tx-runt-frame",
        expect: Expect::Refusal,
        build: |c| {
            let (hdr, frame) = (c.addr(HDR), c.addr(FRAME));
            c.d(0, hdr, HDR_LEN, DESC_F_NEXT, 1);
            c.d(1, frame, 6, 0, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "net-tx-offload-header",
        expect: Expect::Refusal,
        build: |c| {
            c.scratch.bytes_mut()[HDR] = HDR_F_NEEDS_CSUM;
            c.scratch.bytes_mut()[HDR + 1] = GSO_TCPV4;
            valid_chain(c);
            c.publish(0);
        },
    },
];

/// Runs the workload, then serves until shut down.
pub fn run(boot: &BootInfo, args: &Args) -> ! {
    let mut out = Out::open();
    let ram_bytes = boot.ram_bytes;
    if net::with(|stack| attack_all(&mut out, stack, ram_bytes)).is_none() {
        outln!(out, "nethostile: no network device; nothing to attack");
    }
    out.drain();
    crate::idle(args)
}

/// The baseline, every attack, and the clean bring-up.
fn attack_all(out: &mut Out, stack: &mut Stack, ram_bytes: u64) {
    let mac = stack.mac();
    let Ok(mut scratch) = DmaBuf::new(SCRATCH_BYTES) else {
        outln!(out, "nethostile: out of memory");
        return;
    };
    let net = stack.net();
    let ok = net.reinit().is_ok() && sends(net);
    out.check(
        "net-baseline-frame",
        ok,
        i64::from(net.transport().status()),
        format_args!("a valid frame before any attack"),
    );
    for attack in ATTACKS {
        run_attack(out, net, &mut scratch, mac, ram_bytes, attack);
        control::set_progress(time::rdtsc());
    }
    match net.reinit() {
        Ok(()) => outln!(out, "nethostile: device up again; serving"),
        Err(e) => outln!(out, "nethostile: device did not come up: {e}"),
    }
}

/// Runs one attack on a freshly reset device and reports whether it was
/// refused and the device recovered: set up, attack, observe, recover.
fn run_attack(
    out: &mut Out,
    net: &mut Net,
    scratch: &mut DmaBuf,
    mac: [u8; 6],
    ram_bytes: u64,
    attack: &Attack,
) {
    if let Err(e) = net.reinit() {
        let detail = format_args!("device did not come up: {e}");
        out.check(attack.name, false, -1, detail);
        return;
    }
    forget_interrupts();
    scratch.zero();
    let frame = Frame::Filler {
        eth_src: mac,
        eth_dst: BROADCAST,
        len: FRAME_LEN as usize,
        seq: 0,
    };
    frame.emit(&mut scratch.bytes_mut()[FRAME..FRAME + FRAME_LEN as usize]);
    let port = net.irq_port();
    let size = net.tx_queue().size();
    {
        let mut ctx = Ctx {
            raw: net.tx_queue().raw(),
            scratch,
            size,
            ram_bytes,
        };
        (attack.build)(&mut ctx);
        ctx.launch();
    }
    // Received frames raise the same interrupt: wait on until the device
    // reacted (returned the chain, or asked for a reset) or time is up.
    let deadline = time::rdtsc() + time::ns_to_ticks(REACTION_NS);
    let mut interrupted = false;
    loop {
        let returned = net.tx_queue().raw().used_idx() != 0;
        let broken = net.transport().status() & STATUS_DEVICE_NEEDS_RESET != 0;
        if returned || broken || time::rdtsc() >= deadline {
            break;
        }
        interrupted |= wait_reaction(port, || net.tx_queue().raw().used_idx() != 0);
    }
    let status = net.transport().status();
    let reaction = Reaction::observe(status, &net.tx_queue().raw(), interrupted);
    let what =
        reaction.describe(|| alloc::format!("returned with used length {}", reaction.used_len));
    let refused = reaction.needs_reset || (attack.expect == Expect::Refusal && reaction.used);
    let recovered = net.reinit().is_ok() && sends(net);
    out.check(
        attack.name,
        refused && recovered,
        i64::from(status),
        format_args!("{what}; {}", recovery(recovered)),
    );
}

/// Sends one valid broadcast frame through the driver and waits for the
/// device to return it; true if it did and does not need a reset.
fn sends(net: &mut Net) -> bool {
    let mac = net.info().mac;
    let frame = Frame::Filler {
        eth_src: mac,
        eth_dst: BROADCAST,
        len: FRAME_LEN as usize,
        seq: 1,
    };
    let Some(tx) = net.take_tx() else {
        return false;
    };
    tx.send(frame.len(), |buf| frame.emit(buf));
    net.flush();
    net.tx_queue().arm();
    let port = net.irq_port();
    // The device's one interrupt also says "frame received" (a broadcast
    // from another guest, say): wait on until the frame came back.
    let deadline = time::rdtsc() + time::ns_to_ticks(REACTION_NS);
    while !net.tx_queue().has_used() && time::rdtsc() < deadline {
        wait_reaction(port, || net.tx_queue().has_used());
    }
    net.tx_queue().has_used() && net.transport().check().is_ok()
}
