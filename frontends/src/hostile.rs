//! `workload=hostile`: a guest that attacks its block device's ring.
//!
//! Each attack runs on a freshly reset device: the driver resets it
//! (status 0), brings it up again, writes a malformed request straight
//! into the rings, rings the doorbell and waits (at most a second) for the
//! device's interrupt. It then reads the status register:
//!
//! * attacks on the ring rules (addresses outside RAM, loops, overlong
//!   chains, bad indirect tables, a runaway available index, a head out of
//!   range) must leave the device in DEVICE_NEEDS_RESET;
//! * malformed requests (a short header, a status the device cannot
//!   write) may instead complete with an error status, or with nothing
//!   written at all when there is no writable byte for a status.
//!
//! Then the driver resets the device again and does one valid read to show
//! that it recovered. Each attack is one `Report::Check`: `passed` when the
//! device refused it as expected and recovered; `value` is the status
//! register read after the attack.

use guest_runtime::{control, event, time, BootInfo};
use protocol::domain::ShutdownReason;
use protocol::virtio::blk::{RequestHeader, S_IOERR, S_OK, S_UNSUPP, T_FLUSH, T_IN, T_OUT};
use protocol::virtio::mmio::STATUS_DEVICE_NEEDS_RESET;
use protocol::virtio::queue::{Descriptor, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};

use crate::cmdline::Args;
use crate::disk::{self, TIMEOUT_NS};
use crate::dma::DmaBuf;
use crate::out::Out;
use crate::virtio::blk::Blk;
use crate::virtio::queue::RawQueue;

/// An address far outside any guest's RAM.
const FAR: u64 = 0x7FFF_0000_0000;
/// Scratch layout: header, status byte, two indirect tables, data.
const HDR: usize = 0;
const STATUS: usize = 64;
const TABLE1: usize = 1024;
const TABLE2: usize = 2048;
const DATA: usize = 4096;
const SCRATCH_BYTES: usize = 8192;
/// Status byte value before the device answers.
const UNSET: u8 = 0xFF;
/// How long to wait for the device's reaction to an attack.
const REACTION_NS: u64 = 1_000_000_000;

/// What the device must do with an attack.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A ring rule is broken: DEVICE_NEEDS_RESET.
    RingRule,
    /// A malformed request: DEVICE_NEEDS_RESET, an error status, or no
    /// status at all when there is nowhere to put one.
    Refusal,
}

/// One attack: its name, the request type in its header, what the device
/// must do, and how to write it into the rings.
struct Attack {
    name: &'static str,
    kind: u32,
    expect: Expect,
    build: fn(&mut Ctx),
}

/// What an attack writes with.
struct Ctx<'a> {
    raw: RawQueue<'a>,
    scratch: &'a mut DmaBuf,
    size: u16,
    ram_bytes: u64,
}

impl Ctx<'_> {
    fn addr(&self, offset: usize) -> u64 {
        self.scratch.addr(offset)
    }

    /// Writes descriptor `idx` of the ring's table.
    fn d(&mut self, idx: u16, addr: u64, len: u32, flags: u16, next: u16) {
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
    fn t(&mut self, table: usize, i: usize, addr: u64, len: u32, flags: u16, next: u16) {
        let d = Descriptor {
            addr,
            len,
            flags,
            next,
        };
        let at = table + 16 * i;
        self.scratch.bytes_mut()[at..at + 16].copy_from_slice(&d.to_bytes());
    }

    /// A valid read request (header, 512 bytes of data, status) as entries
    /// 0..3 of the indirect table at `table`.
    fn valid_table(&mut self, table: usize) {
        let (hdr, data, status) = (self.addr(HDR), self.addr(DATA), self.addr(STATUS));
        self.t(table, 0, hdr, 16, DESC_F_NEXT, 1);
        self.t(table, 1, data, 512, DESC_F_WRITE | DESC_F_NEXT, 2);
        self.t(table, 2, status, 1, DESC_F_WRITE, 0);
    }

    /// A valid read request as ring descriptors 0..3.
    fn valid_chain(&mut self) {
        let (hdr, data, status) = (self.addr(HDR), self.addr(DATA), self.addr(STATUS));
        self.d(0, hdr, 16, DESC_F_NEXT, 1);
        self.d(1, data, 512, DESC_F_WRITE | DESC_F_NEXT, 2);
        self.d(2, status, 1, DESC_F_WRITE, 0);
    }

    /// Makes `head` available and publishes the index.
    fn publish(&mut self, head: u16) {
        self.raw.push(head);
        let idx = self.raw.avail_shadow();
        self.raw.publish(idx);
    }
}

const ATTACKS: &[Attack] = &[
    Attack {
        name: "desc-addr-outside-ram",
        kind: T_OUT,
        expect: Expect::RingRule,
        build: |c| {
            let (hdr, status) = (c.addr(HDR), c.addr(STATUS));
            c.d(0, hdr, 16, DESC_F_NEXT, 1);
            c.d(1, FAR, 4096, DESC_F_NEXT, 2);
            c.d(2, status, 1, DESC_F_WRITE, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "desc-len-past-ram",
        kind: T_OUT,
        expect: Expect::RingRule,
        build: |c| {
            let (hdr, status) = (c.addr(HDR), c.addr(STATUS));
            c.d(0, hdr, 16, DESC_F_NEXT, 1);
            c.d(1, c.ram_bytes.saturating_sub(4096), 1 << 20, DESC_F_NEXT, 2);
            c.d(2, status, 1, DESC_F_WRITE, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "desc-chain-loop",
        kind: T_IN,
        expect: Expect::RingRule,
        build: |c| {
            let (hdr, data) = (c.addr(HDR), c.addr(DATA));
            c.d(0, hdr, 16, DESC_F_NEXT, 1);
            c.d(1, data, 512, DESC_F_WRITE | DESC_F_NEXT, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "chain-longer-than-queue",
        kind: T_OUT,
        expect: Expect::RingRule,
        build: |c| {
            // Every descriptor of the table, the last one leading back to
            // the first: size + 1 buffers.
            let (hdr, data) = (c.addr(HDR), c.addr(DATA));
            for i in 0..c.size {
                let (addr, len) = if i == 0 { (hdr, 16) } else { (data, 512) };
                c.d(i, addr, len, DESC_F_NEXT, (i + 1) % c.size);
            }
            c.publish(0);
        },
    },
    Attack {
        name: "indirect-table-outside-ram",
        kind: T_IN,
        expect: Expect::RingRule,
        build: |c| {
            c.d(0, FAR, 48, DESC_F_INDIRECT, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "indirect-table-past-ram",
        kind: T_IN,
        expect: Expect::RingRule,
        build: |c| {
            c.d(0, c.ram_bytes.saturating_sub(32), 48, DESC_F_INDIRECT, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "indirect-len-not-multiple-of-16",
        kind: T_IN,
        expect: Expect::RingRule,
        build: |c| {
            c.valid_table(TABLE1);
            let table = c.addr(TABLE1);
            c.d(0, table, 40, DESC_F_INDIRECT, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "indirect-nested",
        kind: T_IN,
        expect: Expect::RingRule,
        build: |c| {
            c.valid_table(TABLE2);
            let (t1, t2) = (c.addr(TABLE1), c.addr(TABLE2));
            c.t(TABLE1, 0, t2, 48, DESC_F_INDIRECT, 0);
            c.d(0, t1, 16, DESC_F_INDIRECT, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "avail-idx-jump",
        kind: T_IN,
        expect: Expect::RingRule,
        build: |c| {
            c.valid_chain();
            c.raw.push(0);
            // More entries than the ring holds.
            let idx = c.size.wrapping_add(1);
            c.raw.publish(idx);
        },
    },
    Attack {
        name: "avail-head-out-of-range",
        kind: T_IN,
        expect: Expect::RingRule,
        build: |c| {
            c.valid_chain();
            let head = c.size.wrapping_add(3);
            c.publish(head);
        },
    },
    Attack {
        name: "header-too-short",
        kind: T_IN,
        expect: Expect::Refusal,
        build: |c| {
            let (hdr, status) = (c.addr(HDR), c.addr(STATUS));
            c.d(0, hdr, 8, DESC_F_NEXT, 1);
            c.d(1, status, 1, DESC_F_WRITE, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "status-not-writable",
        kind: T_IN,
        expect: Expect::Refusal,
        build: |c| {
            let (hdr, data, status) = (c.addr(HDR), c.addr(DATA), c.addr(STATUS));
            c.d(0, hdr, 16, DESC_F_NEXT, 1);
            c.d(1, data, 512, DESC_F_WRITE | DESC_F_NEXT, 2);
            c.d(2, status, 1, 0, 0);
            c.publish(0);
        },
    },
    Attack {
        name: "no-writable-status",
        kind: T_FLUSH,
        expect: Expect::Refusal,
        build: |c| {
            let (hdr, status) = (c.addr(HDR), c.addr(STATUS));
            c.d(0, hdr, 16, DESC_F_NEXT, 1);
            c.d(1, status, 1, 0, 0);
            c.publish(0);
        },
    },
];

/// Runs the workload.
pub fn run(boot: &BootInfo, args: &Args) -> ! {
    let (mut blk, mut out) = disk::open(boot, args, Out::open(boot));
    let Ok(mut scratch) = DmaBuf::new(SCRATCH_BYTES) else {
        out.finish(ShutdownReason::Crash, b"out of memory")
    };
    disk::describe(&mut out, &mut blk);
    let baseline = blk.read(0, &mut scratch, DATA, 4096, TIMEOUT_NS);
    let ok = baseline.is_ok_and(|c| c.ok());
    out.check(
        "hostile-baseline-read",
        ok,
        baseline.map_or(-1, |c| i64::from(c.status)),
        format_args!("a valid read before any attack"),
    );
    for attack in ATTACKS {
        run_attack(&mut out, &mut blk, &mut scratch, boot.ram_bytes, attack);
        control::set_progress(time::rdtsc());
    }
    out.finish(ShutdownReason::Poweroff, b"")
}

fn run_attack(out: &mut Out, blk: &mut Blk, scratch: &mut DmaBuf, ram_bytes: u64, attack: &Attack) {
    if let Err(e) = blk.reinit() {
        out.check(
            attack.name,
            false,
            -1,
            format_args!("device did not come up: {e}"),
        );
        return;
    }
    // Forget interrupts left over from earlier requests.
    if event::poll().control() {
        control::obey("frontends");
    }
    scratch.zero();
    let header = RequestHeader {
        kind: attack.kind,
        reserved: 0,
        sector: 0,
    };
    scratch.bytes_mut()[HDR..HDR + 16].copy_from_slice(&header.to_bytes());
    scratch.bytes_mut()[STATUS] = UNSET;
    let port = blk.transport().irq_port();
    let size = blk.queue().size();
    {
        let mut ctx = Ctx {
            raw: blk.queue().raw(),
            scratch,
            size,
            ram_bytes,
        };
        (attack.build)(&mut ctx);
        ctx.raw.arm();
        ctx.raw.notify();
    }
    let interrupted = wait_reaction(blk, port);
    let status = blk.transport().status();
    let needs_reset = status & STATUS_DEVICE_NEEDS_RESET != 0;
    let raw = blk.queue().raw();
    let used = raw.used_idx() != 0;
    let used_len = raw.used_elem(0).len;
    let status_byte = scratch.bytes()[STATUS];
    let refused = needs_reset
        || (attack.expect == Expect::Refusal
            && used
            && (status_byte == S_IOERR
                || status_byte == S_UNSUPP
                || (used_len == 0 && status_byte == UNSET)));
    let what = if needs_reset {
        alloc::format!("device status {status:#x}: needs reset")
    } else if used {
        alloc::format!("completed with status byte {status_byte:#x}, used length {used_len}")
    } else {
        alloc::format!(
            "no reaction (status {status:#x}, {})",
            if interrupted {
                "interrupted"
            } else {
                "no interrupt"
            }
        )
    };
    let recovered = blk.reinit().is_ok()
        && blk
            .read(0, scratch, DATA, 4096, TIMEOUT_NS)
            .is_ok_and(|c| c.status == S_OK);
    out.check(
        attack.name,
        refused && recovered,
        i64::from(status),
        format_args!(
            "{what}; {}",
            if recovered {
                "recovered after reset"
            } else {
                "did NOT recover"
            }
        ),
    );
}

/// Waits for the device's interrupt or a used entry, at most
/// [`REACTION_NS`]; true if the interrupt came.
fn wait_reaction(blk: &mut Blk, port: u32) -> bool {
    let deadline = time::rdtsc() + time::ns_to_ticks(REACTION_NS);
    loop {
        if blk.queue().raw().used_idx() != 0 {
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
