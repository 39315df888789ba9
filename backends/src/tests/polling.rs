//! Polled mode: a backend whose CPU polls anyway asks the driver for no
//! notifications and finds the requests by reading the available index.

use std::vec::Vec;

use protocol::virtio::blk::{RequestHeader, S_OK, T_IN};
use protocol::virtio::feature;
use protocol::virtio::features::VIRTIO_F_EVENT_IDX;
use protocol::virtio::mmio as reg;
use protocol::virtio::queue::{vring_need_event, USED_F_NO_NOTIFY};

use super::driver::{base_features, bring_up, Driver};
use super::TestPlatform;
use crate::blk::{Blk, BlkConfig};
use crate::mmio::MmioTransport;
use crate::platform::Platform;

const DISK: u64 = 1 << 20;

struct Bed {
    p: TestPlatform,
    t: MmioTransport<Blk>,
    d: Driver,
}

fn bed(event_idx: bool) -> Bed {
    let mut p = TestPlatform::new(DISK as usize);
    let mut t = MmioTransport::new(Blk::new(BlkConfig::new(DISK)));
    let d = Driver::new(0, 16, 0x1000, 0x10_0000);
    let mut features = base_features();
    if !event_idx {
        features &= !feature(VIRTIO_F_EVENT_IDX);
    }
    let status = bring_up(&mut t, &mut p, features, &[&d]);
    assert_eq!(status & reg::STATUS_DRIVER_OK, reg::STATUS_DRIVER_OK);
    Bed { p, t, d }
}

impl Bed {
    /// Posts a one-sector read and returns where its status goes and
    /// whether the driver must notify, by the event-index rule.
    fn post_read(&mut self) -> (u64, bool) {
        let old = self.d.avail_idx;
        let header = RequestHeader {
            kind: T_IN,
            reserved: 0,
            sector: 1,
        };
        let h = self.d.alloc_with(&mut self.p, &header.to_bytes());
        let buf = self.d.alloc(512);
        let st = self.d.alloc_with(&mut self.p, &[0xee]);
        self.d.post(
            &mut self.p,
            &[(h, 16, false), (buf, 512, true), (st, 1, true)],
        );
        let event = self.d.avail_event(&self.p);
        (st, vring_need_event(event, self.d.avail_idx, old))
    }

    fn used(&mut self) -> usize {
        self.d.take_used(&self.p).len()
    }

    fn status(&self, at: u64) -> u8 {
        let mut b = [0];
        self.p.read(at, &mut b).unwrap();
        b[0]
    }
}

#[test]
fn a_polled_queue_asks_for_no_notifications_and_its_work_is_found() {
    let mut b = bed(true);
    let (_, notify) = b.post_read();
    assert!(notify, "before polling the driver notifies");
    b.t.queue_notify(&mut b.p, 0);
    assert_eq!(b.used(), 1);

    assert!(!b.t.set_polling(&mut b.p, true), "nothing waits");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (st, notify) = b.post_read();
        assert!(!notify, "no notification while the device polls");
        statuses.push(st);
    }
    assert!(b.t.poll(&mut b.p), "polling finds the three requests");
    assert_eq!(b.used(), 3);
    assert!(statuses.iter().all(|&st| b.status(st) == S_OK));
    assert!(!b.t.poll(&mut b.p), "and then nothing more");

    // A request queued just as polling stops is served by the final check.
    let (st, notify) = b.post_read();
    assert!(!notify);
    assert!(b.t.set_polling(&mut b.p, false));
    assert_eq!((b.used(), b.status(st)), (1, S_OK));
    let (_, notify) = b.post_read();
    assert!(notify, "notifications are wanted again");

    let s = b.t.stats();
    assert_eq!((s.notifies, s.polled), (1, 1));
}

#[test]
fn without_event_indices_polling_sets_the_no_notify_flag() {
    let mut b = bed(false);
    let flags = |b: &Bed| b.p.read_u16(b.d.used).unwrap();
    b.t.set_polling(&mut b.p, true);
    assert_eq!(flags(&b) & USED_F_NO_NOTIFY, USED_F_NO_NOTIFY);
    b.post_read();
    assert!(b.t.poll(&mut b.p));
    assert_eq!(b.used(), 1);
    b.t.set_polling(&mut b.p, false);
    assert_eq!(flags(&b) & USED_F_NO_NOTIFY, 0);
}

#[test]
fn polled_mode_survives_a_reset_of_the_device() {
    let mut b = bed(true);
    b.t.set_polling(&mut b.p, true);
    // The driver resets and brings the device up again on fresh rings.
    b.d = Driver::new(0, 16, 0x8000, 0x20_0000);
    bring_up(&mut b.t, &mut b.p, base_features(), &[&b.d]);
    b.post_read();
    assert!(b.t.poll(&mut b.p), "still polled after the reset");
    assert_eq!(b.used(), 1);
    assert!(!b.t.set_polling(&mut b.p, false));
    let (_, notify) = b.post_read();
    assert!(notify);
}

#[test]
fn a_hostile_available_index_stops_a_polled_device() {
    let mut b = bed(true);
    b.t.set_polling(&mut b.p, true);
    // Forty entries published on a queue of sixteen.
    b.p.write_u16(b.d.avail + 2, 40).unwrap();
    assert!(b.t.poll(&mut b.p));
    assert!(b.t.needs_reset());
    assert!(!b.t.poll(&mut b.p), "a stopped device is not polled");
    assert!(!b.t.set_polling(&mut b.p, false));
    assert_eq!(b.used(), 0);
}
