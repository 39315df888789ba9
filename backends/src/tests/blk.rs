//! virtio-blk through the mmio transport, against an in-memory disk.

use std::vec::Vec;

use protocol::virtio::blk::{
    RequestHeader, S_IOERR, S_OK, S_UNSUPP, T_FLUSH, T_GET_ID, T_IN, T_OUT, VIRTIO_BLK_F_FLUSH,
    VIRTIO_BLK_F_RO,
};
use protocol::virtio::feature;
use protocol::virtio::mmio as reg;
use protocol::virtio::queue::UsedElem;

use super::driver::{base_features, bring_up, Driver, Seg};
use super::TestPlatform;
use crate::blk::{Blk, BlkConfig};
use crate::mmio::MmioTransport;
use crate::platform::{GuestBuf, Interrupt, IoKind, Platform};
use crate::queue::QueueError;

const DISK: usize = 1 << 20;

struct Bed {
    p: TestPlatform,
    t: MmioTransport<Blk>,
    d: Driver,
}

fn bed_with(config: BlkConfig, queue: u16) -> Bed {
    let mut p = TestPlatform::new(config.disk_bytes as usize);
    let mut t = MmioTransport::new(Blk::new(config));
    let d = Driver::new(0, queue, 0x1000, 0x10_0000);
    let features = base_features() | t.device_features_for_test();
    let status = bring_up(&mut t, &mut p, features, &[&d]);
    assert_eq!(status & reg::STATUS_DRIVER_OK, reg::STATUS_DRIVER_OK);
    Bed { p, t, d }
}

fn bed() -> Bed {
    let mut c = BlkConfig::new(DISK as u64);
    c.id = *b"hyp-disk-0\0\0\0\0\0\0\0\0\0\0";
    bed_with(c, 16)
}

impl MmioTransport<Blk> {
    fn device_features_for_test(&mut self) -> u64 {
        self.write(&mut TestPlatform::new(0), reg::DEVICE_FEATURES_SEL, 4, 0);
        let low = self.read(reg::DEVICE_FEATURES, 4);
        self.write(&mut TestPlatform::new(0), reg::DEVICE_FEATURES_SEL, 4, 1);
        low | self.read(reg::DEVICE_FEATURES, 4) << 32
    }
}

impl Bed {
    fn header(&mut self, kind: u32, sector: u64) -> u64 {
        let h = RequestHeader {
            kind,
            reserved: 0,
            sector,
        };
        self.d.alloc_with(&mut self.p, &h.to_bytes())
    }

    /// Posts a request (direct chain), kicks, returns the status address.
    fn submit(&mut self, segs: &[Seg]) -> u64 {
        self.d.post(&mut self.p, segs);
        self.t.queue_notify(&mut self.p, 0);
        let last = segs.last().unwrap();
        last.0 + u64::from(last.1) - 1
    }

    fn status(&self, at: u64) -> u8 {
        let mut b = [0xee];
        self.p.read(at, &mut b).unwrap();
        b[0]
    }

    fn used(&mut self) -> Vec<UsedElem> {
        self.d.take_used(&self.p)
    }

    /// A one-status-byte buffer preset to 0xee (so a write is visible).
    fn status_buf(&mut self) -> u64 {
        self.d.alloc_with(&mut self.p, &[0xee])
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn write_flush_read_back() {
    let mut b = bed();
    assert_eq!(b.t.device().capacity(), (DISK / 512) as u64);
    // The capacity in the config space, as two 32-bit reads.
    let lo = b.t.read(reg::CONFIG, 4);
    let hi = b.t.read(reg::CONFIG + 4, 4);
    assert_eq!(lo | hi << 32, (DISK / 512) as u64);

    // Write 8 sectors at sector 10 from two buffers that do not split at a
    // sector boundary, the header and status in descriptors of their own.
    let data = pattern(4096, 7);
    let a = b.d.alloc_with(&mut b.p, &data[..1000]);
    let c = b.d.alloc_with(&mut b.p, &data[1000..]);
    let h = b.header(T_OUT, 10);
    let st = b.status_buf();
    b.submit(&[
        (h, 16, false),
        (a, 1000, false),
        (c, 3096, false),
        (st, 1, true),
    ]);
    assert_eq!(b.status(st), S_OK);
    let used = b.used();
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].len, 1);
    assert_eq!(&b.p.disk[5120..5120 + 4096], &data[..]);
    let io = b.p.submitted.last().unwrap();
    assert_eq!((io.kind, io.offset), (IoKind::Write, 5120));
    assert_eq!(
        io.buffers,
        [
            GuestBuf { gpa: a, len: 1000 },
            GuestBuf { gpa: c, len: 3096 }
        ]
    );
    assert_ne!(b.p.durable[5120..5120 + 4096], data[..], "not flushed yet");

    // Flush.
    let h = b.header(T_FLUSH, 0);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (st, 1, true)]);
    assert_eq!(b.status(st), S_OK);
    assert_eq!(b.p.submitted.last().unwrap().kind, IoKind::Flush);
    assert_eq!(&b.p.durable[5120..5120 + 4096], &data[..]);
    assert_eq!(b.used()[0].len, 1);

    // Read it back through an indirect chain, into three buffers, with the
    // status byte sharing the last buffer.
    let h = b.header(T_IN, 10);
    let r1 = b.d.alloc(512);
    let r2 = b.d.alloc(2048);
    let r3 = b.d.alloc(1536 + 1);
    b.d.post_indirect(
        &mut b.p,
        &[
            (h, 16, false),
            (r1, 512, true),
            (r2, 2048, true),
            (r3, 1537, true),
        ],
    );
    b.t.queue_notify(&mut b.p, 0);
    let used = b.used();
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].len, 4097);
    assert_eq!(b.status(r3 + 1536), S_OK);
    let mut back = std::vec![0u8; 4096];
    b.p.read(r1, &mut back[..512]).unwrap();
    b.p.read(r2, &mut back[512..2560]).unwrap();
    b.p.read(r3, &mut back[2560..]).unwrap();
    assert_eq!(back, data);

    // Each answer raised the interrupt (used_event is 0: the driver wants
    // to hear about the first entry only, then every one it re-arms for).
    assert!(b.p.interrupts.contains(&Interrupt::Queue(0)));
    assert_eq!(b.t.device().stats().reads, 1);
    assert_eq!(b.t.device().stats().writes, 1);
    assert_eq!(b.t.device().stats().flushes, 1);
}

#[test]
fn get_id_returns_the_id() {
    let mut b = bed();
    let h = b.header(T_GET_ID, 0);
    let id = b.d.alloc(20);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (id, 20, true), (st, 1, true)]);
    assert_eq!(b.status(st), S_OK);
    let mut got = [0u8; 20];
    b.p.read(id, &mut got).unwrap();
    assert_eq!(&got, b"hyp-disk-0\0\0\0\0\0\0\0\0\0\0");
    assert_eq!(b.used()[0].len, 21);
    assert!(b.p.submitted.is_empty(), "answered without host I/O");
}

#[test]
fn many_requests_in_flight_complete_in_any_order() {
    let mut b = bed();
    b.p.deferred = true;
    b.p.disk[..512 * 4].copy_from_slice(&pattern(512 * 4, 3));
    let mut reads = Vec::new();
    for s in 0..4u64 {
        let h = b.header(T_IN, s);
        let buf = b.d.alloc(512);
        let st = b.status_buf();
        b.d.post(&mut b.p, &[(h, 16, false), (buf, 512, true), (st, 1, true)]);
        reads.push((buf, st));
    }
    b.t.queue_notify(&mut b.p, 0);
    assert_eq!(b.t.device().in_flight(), 4);
    assert!(b.used().is_empty());
    let mut done = b.p.run_pending();
    done.reverse();
    // A tag nobody issued, and a duplicate, are ignored.
    b.t.complete(&mut b.p, 0xdead_0000_0003, Ok(512));
    for (tag, result) in &done {
        b.t.complete(&mut b.p, *tag, *result);
    }
    b.t.complete(&mut b.p, done[0].0, done[0].1);
    assert_eq!(b.t.device().stats().stale_completions, 2);
    let used = b.used();
    assert_eq!(used.len(), 4);
    let heads: Vec<u32> = used.iter().map(|u| u.id).collect();
    assert_eq!(heads, [9, 6, 3, 0], "completion order");
    for (s, (buf, st)) in reads.iter().enumerate() {
        assert_eq!(b.status(*st), S_OK);
        let mut got = std::vec![0u8; 512];
        b.p.read(*buf, &mut got).unwrap();
        assert_eq!(got, &b.p.disk[s * 512..(s + 1) * 512]);
    }
    assert_eq!(b.t.device().in_flight(), 0);
}

#[test]
fn completions_from_before_a_reset_are_dropped() {
    let mut b = bed();
    b.p.deferred = true;
    let h = b.header(T_IN, 0);
    let buf = b.d.alloc(512);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (buf, 512, true), (st, 1, true)]);
    let done = b.p.run_pending();
    // The driver resets and sets the device up again before the I/O ends.
    b.d = Driver::new(0, 16, 0x1000, 0x20_0000);
    bring_up(&mut b.t, &mut b.p, base_features(), &[&b.d]);
    b.t.complete(&mut b.p, done[0].0, done[0].1);
    assert_eq!(b.t.device().stats().stale_completions, 1);
    assert_eq!(b.status(st), 0xee, "no status written");
    assert!(b.used().is_empty());
}

#[test]
fn event_idx_suppresses_interrupts_until_used_event() {
    let mut b = bed();
    b.p.deferred = true;
    let mut sts = Vec::new();
    for _ in 0..6 {
        let h = b.header(T_FLUSH, 0);
        let st = b.status_buf();
        b.d.post(&mut b.p, &[(h, 16, false), (st, 1, true)]);
        sts.push(st);
    }
    b.t.queue_notify(&mut b.p, 0);
    // The device asked to hear about the next available entry.
    assert_eq!(b.d.avail_event(&b.p), 6);
    // Interrupt me once the 4th used entry (index 3) is written.
    b.d.set_used_event(&mut b.p, 3);
    let done = b.p.run_pending();
    let mut irq_after = Vec::new();
    for (tag, r) in done {
        b.t.complete(&mut b.p, tag, r);
        irq_after.push(b.p.interrupts.len());
    }
    assert_eq!(irq_after, [0, 0, 0, 1, 1, 1]);
}

#[test]
fn requests_past_the_end_of_the_disk_fail() {
    let mut b = bed();
    let sectors = (DISK / 512) as u64;
    for (sector, len) in [
        (sectors, 512u32),
        (sectors - 1, 1024),
        (u64::MAX / 256, 512),
    ] {
        for kind in [T_IN, T_OUT] {
            let h = b.header(kind, sector);
            let buf = b.d.alloc(u64::from(len));
            let st = b.status_buf();
            b.submit(&[(h, 16, false), (buf, len, kind == T_IN), (st, 1, true)]);
            assert_eq!(b.status(st), S_IOERR, "{kind} at {sector}");
            assert_eq!(b.used()[0].len, 1);
        }
    }
    // The last sector itself is fine.
    let h = b.header(T_IN, sectors - 1);
    let buf = b.d.alloc(512);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (buf, 512, true), (st, 1, true)]);
    assert_eq!(b.status(st), S_OK);
    assert_eq!(
        b.p.submitted.len(),
        1,
        "only the valid request reached the host"
    );
    assert!(!b.t.needs_reset());
}

#[test]
fn malformed_requests_get_an_error_status() {
    let mut b = bed();
    let buf = b.d.alloc(4096);
    // A read whose data buffer is device-readable.
    let h = b.header(T_IN, 0);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (buf, 512, false), (st, 1, true)]);
    assert_eq!(b.status(st), S_IOERR);
    // A write with device-writable data.
    let h = b.header(T_OUT, 0);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (buf, 512, true), (st, 1, true)]);
    assert_eq!(b.status(st), S_IOERR);
    // Not a whole number of sectors.
    let h = b.header(T_IN, 0);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (buf, 100, true), (st, 1, true)]);
    assert_eq!(b.status(st), S_IOERR);
    // A header shorter than 16 bytes.
    let h = b.header(T_IN, 0);
    let st = b.status_buf();
    b.submit(&[(h, 8, false), (st, 1, true)]);
    assert_eq!(b.status(st), S_IOERR);
    // An unknown request type.
    let h = b.header(0x77, 0);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (st, 1, true)]);
    assert_eq!(b.status(st), S_UNSUPP);
    // GET_ID with its id buffer device-readable.
    let h = b.header(T_GET_ID, 0);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (buf, 20, false), (st, 1, true)]);
    assert_eq!(b.status(st), S_IOERR);
    assert!(b.p.submitted.is_empty());
    assert_eq!(b.used().len(), 6);
    assert!(!b.t.needs_reset(), "a bad request is not a bad ring");

    // A header split over two descriptors is fine.
    let h = b.header(T_GET_ID, 0);
    let st = b.status_buf();
    b.submit(&[
        (h, 5, false),
        (h + 5, 11, false),
        (buf, 20, true),
        (st, 1, true),
    ]);
    assert_eq!(b.status(st), S_OK);
}

#[test]
fn a_status_that_is_not_writable() {
    // No device-writable byte at all: nowhere to answer, so the chain comes
    // back with nothing written.
    let mut b = bed();
    let h = b.header(T_GET_ID, 0);
    let id = b.d.alloc(20);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (id, 20, false), (st, 1, false)]);
    assert_eq!(b.status(st), 0xee);
    let used = b.used();
    assert_eq!((used.len(), used[0].len), (1, 0));
    assert_eq!(b.t.device().stats().malformed, 1);
    assert!(!b.t.needs_reset());

    // A writable id buffer followed by a read-only status: the ring order
    // rule is broken, the device needs a reset.
    for kind in [T_GET_ID, T_IN] {
        let mut b = bed();
        let h = b.header(kind, 0);
        let data = b.d.alloc(512);
        let st = b.status_buf();
        b.submit(&[(h, 16, false), (data, 512, true), (st, 1, false)]);
        assert_eq!(b.status(st), 0xee);
        assert!(b.t.needs_reset());
        assert_eq!(b.t.last_error(), Some(QueueError::ReadableAfterWritable));
        assert!(b.p.submitted.is_empty());
    }
}

#[test]
fn a_read_only_disk_refuses_writes_without_touching_the_host() {
    let mut c = BlkConfig::new(DISK as u64);
    c.read_only = true;
    let mut b = bed_with(c, 16);
    assert_ne!(b.t.driver_features() & feature(VIRTIO_BLK_F_RO), 0);
    assert_ne!(b.t.driver_features() & feature(VIRTIO_BLK_F_FLUSH), 0);
    let data = b.d.alloc_with(&mut b.p, &pattern(512, 1));
    let h = b.header(T_OUT, 0);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (data, 512, false), (st, 1, true)]);
    assert_eq!(b.status(st), S_IOERR);
    assert!(b.p.submitted.is_empty());
    assert!(b.p.disk.iter().all(|&x| x == 0));
    // Reads still work.
    let h = b.header(T_IN, 0);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (data, 512, true), (st, 1, true)]);
    assert_eq!(b.status(st), S_OK);
    assert_eq!(b.p.submitted.len(), 1);
}

#[test]
fn host_errors_and_short_transfers_become_ioerr() {
    let mut b = bed();
    b.p.fail_with = Some(5);
    let h = b.header(T_IN, 0);
    let buf = b.d.alloc(512);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (buf, 512, true), (st, 1, true)]);
    assert_eq!(b.status(st), S_IOERR);
    assert_eq!(b.used()[0].len, 1);
    // A short read reported by the host.
    b.p.fail_with = None;
    b.p.deferred = true;
    let h = b.header(T_IN, 0);
    let st = b.status_buf();
    b.submit(&[(h, 16, false), (buf, 512, true), (st, 1, true)]);
    let done = b.p.run_pending();
    b.t.complete(&mut b.p, done[0].0, Ok(511));
    assert_eq!(b.status(st), S_IOERR);
}

#[test]
fn too_many_segments_fail() {
    // A queue of at most 4: seg_max is 2.
    let mut c = BlkConfig::new(DISK as u64);
    c.queue_size = 4;
    let mut b = bed_with(c, 4);
    assert_eq!(b.t.read(reg::CONFIG + 12, 4), 2);
    let h = b.header(T_IN, 0);
    let bufs: Vec<u64> = (0..3).map(|_| b.d.alloc(512)).collect();
    let st = b.status_buf();
    b.d.post_indirect(
        &mut b.p,
        &[
            (h, 16, false),
            (bufs[0], 512, true),
            (bufs[1], 512, true),
            (bufs[2], 512, true),
            (st, 1, true),
        ],
    );
    b.t.queue_notify(&mut b.p, 0);
    assert_eq!(b.status(st), S_IOERR);
    assert!(b.p.submitted.is_empty());
}

#[test]
fn a_head_reused_while_in_flight_is_a_ring_violation() {
    let mut b = bed();
    b.p.deferred = true;
    let h = b.header(T_FLUSH, 0);
    let st = b.status_buf();
    let head = b.d.post(&mut b.p, &[(h, 16, false), (st, 1, true)]);
    b.t.queue_notify(&mut b.p, 0);
    b.d.publish(&mut b.p, head);
    b.t.queue_notify(&mut b.p, 0);
    assert!(b.t.needs_reset());
    assert_eq!(b.t.last_error(), Some(QueueError::HeadInFlight(head)));
    // Its completion is dropped: the device is stopped.
    let done = b.p.run_pending();
    b.t.complete(&mut b.p, done[0].0, done[0].1);
    assert_eq!(b.t.stats().dropped_completions, 1);
}
