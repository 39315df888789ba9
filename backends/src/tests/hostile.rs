//! A driver that breaks the ring rules: every violation is an error, never
//! a panic, and a device behind the transport stops with
//! `DEVICE_NEEDS_RESET` until the driver resets it.

use protocol::virtio::mmio as reg;
use protocol::virtio::queue::{Descriptor, DESC_F_INDIRECT, DESC_F_NEXT};

use super::driver::{base_features, bring_up, Driver};
use super::{TestPlatform, HIGH_RAM_BASE, LOW_RAM};
use crate::blk::{Blk, BlkConfig};
use crate::chain::Chain;
use crate::mmio::MmioTransport;
use crate::platform::{Interrupt, Platform};
use crate::queue::{Queue, QueueError};

const SIZE: u16 = 8;

fn setup() -> (TestPlatform, Driver, Queue) {
    let p = TestPlatform::new(0);
    let d = Driver::new(0, SIZE, 0x1000, 0x10_0000);
    let mut q = Queue::new(SIZE);
    q.set_desc_table(d.desc);
    q.set_avail_ring(d.avail);
    q.set_used_ring(d.used);
    q.set_features(true, true);
    q.set_ready(&p).unwrap();
    (p, d, q)
}

fn pop(q: &mut Queue, p: &TestPlatform) -> Result<bool, QueueError> {
    q.pop(p, &mut Chain::new())
}

fn desc(addr: u64, len: u32, flags: u16, next: u16) -> Descriptor {
    Descriptor {
        addr,
        len,
        flags,
        next,
    }
}

#[test]
fn buffer_outside_ram_is_refused() {
    for (addr, len) in [
        (LOW_RAM, 1),               // in the hole
        (LOW_RAM - 8, 16),          // straddles the end of RAM
        (HIGH_RAM_BASE - 4, 8),     // straddles the start of the next region
        (u64::MAX - 4, 16),         // wraps around
        (0x4000_0000_0000, 0x1000), // far away
    ] {
        let (mut p, mut d, mut q) = setup();
        d.post(&mut p, &[(0x20_0000, 16, false), (addr, len, true)]);
        assert_eq!(
            pop(&mut q, &p),
            Err(QueueError::BufferOutOfRange { addr, len }),
            "{addr:#x}+{len}"
        );
    }
}

#[test]
fn a_loop_is_refused() {
    let (mut p, mut d, mut q) = setup();
    d.write_desc(&mut p, 0, desc(0x20_0000, 16, DESC_F_NEXT, 1));
    d.write_desc(&mut p, 1, desc(0x20_1000, 16, DESC_F_NEXT, 0));
    d.publish(&mut p, 0);
    assert_eq!(pop(&mut q, &p), Err(QueueError::Loop(0)));
    // A descriptor pointing at itself.
    let (mut p, mut d, mut q) = setup();
    d.write_desc(&mut p, 3, desc(0x20_0000, 16, DESC_F_NEXT, 3));
    d.publish(&mut p, 3);
    assert_eq!(pop(&mut q, &p), Err(QueueError::Loop(3)));
}

#[test]
fn a_chain_longer_than_the_queue_is_refused() {
    // Every descriptor of the table in one chain is fine ...
    let (mut p, mut d, mut q) = setup();
    for i in 0..SIZE {
        let last = i + 1 == SIZE;
        let flags = if last { 0 } else { DESC_F_NEXT };
        d.write_desc(
            &mut p,
            i,
            desc(0x20_0000 + 64 * u64::from(i), 64, flags, i + 1),
        );
    }
    d.publish(&mut p, 0);
    let mut chain = Chain::new();
    assert_eq!(q.pop(&p, &mut chain), Ok(true));
    assert_eq!(chain.buffers().len(), usize::from(SIZE));
    // ... one more is necessarily a repeat ...
    d.write_desc(&mut p, SIZE - 1, desc(0x20_0000, 64, DESC_F_NEXT, 0));
    d.publish(&mut p, 0);
    assert_eq!(pop(&mut q, &p), Err(QueueError::Loop(0)));
    // ... and `next` past the table is refused too.
    let (mut p, mut d, mut q) = setup();
    d.write_desc(&mut p, 0, desc(0x20_0000, 64, DESC_F_NEXT, SIZE));
    d.publish(&mut p, 0);
    assert_eq!(pop(&mut q, &p), Err(QueueError::NextOutOfRange(SIZE)));
}

#[test]
fn head_outside_the_table_is_refused() {
    let (mut p, mut d, mut q) = setup();
    d.publish(&mut p, SIZE + 3);
    assert_eq!(pop(&mut q, &p), Err(QueueError::HeadOutOfRange(SIZE + 3)));
}

#[test]
fn avail_idx_jumping_past_the_queue_size_is_refused() {
    let (mut p, d, mut q) = setup();
    for i in 0..SIZE {
        d.write_desc(&mut p, i, desc(0x20_0000, 16, 0, 0));
    }
    // Exactly a full ring is fine.
    p.write_u16(d.avail + 2, SIZE).unwrap();
    for _ in 0..SIZE {
        assert_eq!(pop(&mut q, &p), Ok(true));
    }
    assert_eq!(pop(&mut q, &p), Ok(false));
    // More than a ring's worth ahead is not (the device is at SIZE now).
    p.write_u16(d.avail + 2, 2 * SIZE + 1).unwrap();
    assert_eq!(
        pop(&mut q, &p),
        Err(QueueError::AvailIdxJump {
            next_avail: SIZE,
            avail_idx: 2 * SIZE + 1
        })
    );
    // Going backwards looks like a huge jump too.
    p.write_u16(d.avail + 2, SIZE - 1).unwrap();
    assert!(matches!(
        pop(&mut q, &p),
        Err(QueueError::AvailIdxJump { .. })
    ));
}

#[test]
fn indirect_tables_are_checked() {
    let table = 0x40_0000u64;
    let cases: [(Descriptor, QueueError); 6] = [
        (
            desc(LOW_RAM - 16, 32, DESC_F_INDIRECT, 0),
            QueueError::IndirectOutOfRange {
                addr: LOW_RAM - 16,
                len: 32,
            },
        ),
        (
            desc(table, 24, DESC_F_INDIRECT, 0),
            QueueError::IndirectBadLength(24),
        ),
        (
            desc(table, 0, DESC_F_INDIRECT, 0),
            QueueError::IndirectBadLength(0),
        ),
        (
            desc(table, 16 * 40_000, DESC_F_INDIRECT, 0),
            QueueError::IndirectBadLength(16 * 40_000),
        ),
        (
            desc(table, 32, DESC_F_INDIRECT | DESC_F_NEXT, 1),
            QueueError::IndirectWithNext,
        ),
        // A valid table whose first entry is itself indirect.
        (
            desc(table, 32, DESC_F_INDIRECT, 0),
            QueueError::NestedIndirect,
        ),
    ];
    for (head, err) in cases {
        let (mut p, mut d, mut q) = setup();
        p.write(table, &desc(table, 16, DESC_F_INDIRECT, 0).to_bytes())
            .unwrap();
        d.write_desc(&mut p, 0, head);
        d.publish(&mut p, 0);
        assert_eq!(pop(&mut q, &p), Err(err));
    }
}

#[test]
fn indirect_chains_are_bounded_by_their_table() {
    let table = 0x40_0000u64;
    // Entry 1 points back at entry 0: a loop inside the table.
    let (mut p, mut d, mut q) = setup();
    p.write(table, &desc(0x20_0000, 8, DESC_F_NEXT, 1).to_bytes())
        .unwrap();
    p.write(table + 16, &desc(0x20_0000, 8, DESC_F_NEXT, 0).to_bytes())
        .unwrap();
    d.write_desc(&mut p, 0, desc(table, 32, DESC_F_INDIRECT, 0));
    d.publish(&mut p, 0);
    assert_eq!(pop(&mut q, &p), Err(QueueError::Loop(0)));
    // `next` past the table's length (the table has 2 entries).
    let (mut p, mut d, mut q) = setup();
    p.write(table, &desc(0x20_0000, 8, DESC_F_NEXT, 2).to_bytes())
        .unwrap();
    d.write_desc(&mut p, 0, desc(table, 32, DESC_F_INDIRECT, 0));
    d.publish(&mut p, 0);
    assert_eq!(pop(&mut q, &p), Err(QueueError::NextOutOfRange(2)));
    // Not negotiated.
    let (mut p, mut d, mut q) = setup();
    q.set_features(true, false);
    d.post_indirect(&mut p, &[(0x20_0000, 8, false)]);
    assert_eq!(pop(&mut q, &p), Err(QueueError::IndirectNotNegotiated));
}

#[test]
fn readable_after_writable_is_refused() {
    let (mut p, mut d, mut q) = setup();
    d.post(&mut p, &[(0x20_0000, 16, true), (0x20_1000, 16, false)]);
    assert_eq!(pop(&mut q, &p), Err(QueueError::ReadableAfterWritable));
}

#[test]
fn bad_ring_layouts_are_refused() {
    let p = TestPlatform::new(0);
    let good = Driver::new(0, SIZE, 0x1000, 0x10_0000);
    let try_layout = |size: u16, desc_at: u64, avail: u64, used: u64| {
        let mut q = Queue::new(SIZE);
        q.set_size(size);
        q.set_desc_table(desc_at);
        q.set_avail_ring(avail);
        q.set_used_ring(used);
        q.set_ready(&p)
    };
    assert_eq!(try_layout(SIZE, good.desc, good.avail, good.used), Ok(()));
    for (size, desc_at, avail, used) in [
        (3, good.desc, good.avail, good.used), // not a power of two
        (2 * SIZE, good.desc, good.avail, good.used), // above the maximum
        (0, good.desc, good.avail, good.used), // empty
        (SIZE, good.desc + 8, good.avail, good.used), // misaligned table
        (SIZE, good.desc, good.avail + 1, good.used), // misaligned avail
        (SIZE, good.desc, good.avail, good.used + 2), // misaligned used
        (SIZE, LOW_RAM - 64, good.avail, good.used), // table past RAM
        (SIZE, good.desc, good.avail, LOW_RAM - 16), // used ring past RAM
    ] {
        assert_eq!(
            try_layout(size, desc_at, avail, used),
            Err(QueueError::BadLayout),
            "{size} {desc_at:#x} {avail:#x} {used:#x}"
        );
    }
}

/// A block device whose driver broke a rule: NEEDS_RESET, a config
/// interrupt, nothing more processed; a reset and a fresh setup recover.
#[test]
fn the_transport_needs_reset_after_a_violation_and_recovers() {
    let mut p = TestPlatform::new(1 << 20);
    let mut t = MmioTransport::new(Blk::new(BlkConfig::new(1 << 20)));
    let mut d = Driver::new(0, 16, 0x1000, 0x10_0000);
    let status = bring_up(&mut t, &mut p, base_features(), &[&d]);
    assert_eq!(status & reg::STATUS_DRIVER_OK, reg::STATUS_DRIVER_OK);

    d.write_desc(&mut p, 0, desc(0x20_0000, 16, DESC_F_NEXT, 0));
    d.publish(&mut p, 0);
    t.write(&mut p, reg::QUEUE_NOTIFY, 4, 0);
    assert!(t.needs_reset());
    assert_eq!(t.last_error(), Some(QueueError::Loop(0)));
    let status = t.read(reg::STATUS, 4) as u32;
    assert_ne!(status & reg::STATUS_DEVICE_NEEDS_RESET, 0);
    assert_eq!(p.interrupts, [Interrupt::Config]);
    assert_ne!(
        t.read(reg::INTERRUPT_STATUS, 4) as u32 & reg::INT_CONFIG_CHANGE,
        0
    );
    assert!(p.submitted.is_empty());

    // Stopped: a well-formed request is not looked at.
    let hdr = d.alloc_with(&mut p, &[0u8; 16]);
    let st = d.alloc(1);
    d.post(&mut p, &[(hdr, 16, false), (st, 1, true)]);
    t.queue_notify(&mut p, 0);
    assert_eq!(t.stats().ignored_notifies, 1);
    assert_eq!(d.take_used(&p).len(), 0);
    // The driver writing status without the reset bit cannot clear it.
    t.write(
        &mut p,
        reg::STATUS,
        4,
        u64::from(status & !reg::STATUS_DEVICE_NEEDS_RESET),
    );
    assert!(t.needs_reset());

    // Reset and set up again: works.
    let mut d = Driver::new(0, 16, 0x1000, 0x10_0000);
    let status = bring_up(&mut t, &mut p, base_features(), &[&d]);
    assert_eq!(status & reg::STATUS_DEVICE_NEEDS_RESET, 0);
    assert_eq!(t.last_error(), None);
    let hdr = d.alloc_with(&mut p, &[8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let id = d.alloc(20);
    let st = d.alloc(1);
    d.post(&mut p, &[(hdr, 16, false), (id, 20, true), (st, 1, true)]);
    t.queue_notify(&mut p, 0);
    assert_eq!(d.take_used(&p).len(), 1);
    assert!(!t.needs_reset());
}

#[test]
fn a_bad_queue_layout_sets_needs_reset() {
    let mut p = TestPlatform::new(1 << 20);
    let mut t = MmioTransport::new(Blk::new(BlkConfig::new(1 << 20)));
    let mut d = Driver::new(0, 16, 0x1000, 0x10_0000);
    d.used = LOW_RAM - 8;
    bring_up(&mut t, &mut p, base_features(), &[&d]);
    assert!(t.needs_reset());
    assert_eq!(t.last_error(), Some(QueueError::BadLayout));
    assert_eq!(t.read(reg::QUEUE_READY, 4), 0);
}
