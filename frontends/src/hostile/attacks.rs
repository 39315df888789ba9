//! The attacks of the hostile workload: each writes one malformed
//! request straight into the block device's rings (see [`super`]) with
//! the shared helpers of [`super::ring`].

use protocol::virtio::blk::{S_IOERR, S_UNSUPP, T_FLUSH, T_IN, T_OUT};
use protocol::virtio::queue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};

use super::ring::{Ctx, Expect, Reaction, FAR};

/// Scratch offset of the request header.
pub const HDR: usize = 0;
/// Scratch offset of the status byte.
pub const STATUS: usize = 64;
/// Scratch offset of the first indirect table.
pub const TABLE1: usize = 1024;
/// Scratch offset of the second indirect table.
pub const TABLE2: usize = 2048;
/// Scratch offset of the 4 KiB data buffer.
pub const DATA: usize = 4096;
/// Bytes of scratch memory.
pub const SCRATCH_BYTES: usize = 8192;

/// Status byte value before the device answers.
pub const UNSET: u8 = 0xFF;

/// True if the device's `reaction` (and the request's status byte) is a
/// refusal of an attack expecting `expect`.
pub fn refused(expect: Expect, reaction: &Reaction, status_byte: u8) -> bool {
    let error_status = matches!(status_byte, S_IOERR | S_UNSUPP);
    let no_status = reaction.used_len == 0 && status_byte == UNSET;
    reaction.needs_reset
        || (expect == Expect::Refusal && reaction.used && (error_status || no_status))
}

/// One attack: its name, the request type in its header, what the device
/// must do, and how to write it into the rings.
pub struct Attack {
    /// The check's name.
    pub name: &'static str,
    /// The request type in the header.
    pub kind: u32,
    /// What the device must do.
    pub expect: Expect,
    /// Writes the attack into the rings.
    pub build: fn(&mut Ctx),
}

/// Block requests written in an attack's context.
trait BlkRequests {
    /// A valid read request (header, 512 bytes of data, status) as
    /// entries 0..3 of the indirect table at `table`.
    fn valid_table(&mut self, table: usize);
    /// A valid read request as ring descriptors 0..3.
    fn valid_chain(&mut self);
}

impl BlkRequests for Ctx<'_> {
    fn valid_table(&mut self, table: usize) {
        let (hdr, data, status) = (self.addr(HDR), self.addr(DATA), self.addr(STATUS));
        self.t(table, 0, hdr, 16, DESC_F_NEXT, 1);
        self.t(table, 1, data, 512, DESC_F_WRITE | DESC_F_NEXT, 2);
        self.t(table, 2, status, 1, DESC_F_WRITE, 0);
    }

    fn valid_chain(&mut self) {
        let (hdr, data, status) = (self.addr(HDR), self.addr(DATA), self.addr(STATUS));
        self.d(0, hdr, 16, DESC_F_NEXT, 1);
        self.d(1, data, 512, DESC_F_WRITE | DESC_F_NEXT, 2);
        self.d(2, status, 1, DESC_F_WRITE, 0);
    }
}

/// Every attack, in the order they run.
pub const ATTACKS: &[Attack] = &[
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
            let (hdr, data) = (c.addr(HDR), c.addr(DATA));
            c.chain_all((hdr, 16), (data, 512));
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
            c.jump_avail_idx(0);
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
