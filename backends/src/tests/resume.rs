//! Taking a block device over from a backend that stopped with requests
//! in flight: each is done again, none is returned twice, and the driver
//! carries on as if nothing happened.

use std::vec::Vec;

use protocol::virtio::blk::{RequestHeader, S_OK, T_IN, T_OUT};
use protocol::virtio::mmio as reg;
use protocol::virtio::saved::SavedDevice;

use super::driver::{base_features, bring_up, Driver};
use super::TestPlatform;
use crate::blk::{Blk, BlkConfig};
use crate::mmio::MmioTransport;
use crate::platform::{Interrupt, Platform};

const DISK: u64 = 1 << 20;

fn header(d: &mut Driver, p: &mut TestPlatform, kind: u32, sector: u64) -> u64 {
    let h = RequestHeader {
        kind,
        reserved: 0,
        sector,
    };
    d.alloc_with(p, &h.to_bytes())
}

fn status(p: &TestPlatform, at: u64) -> u8 {
    let mut b = [0xee];
    p.read(at, &mut b).unwrap();
    b[0]
}

fn device() -> MmioTransport<Blk> {
    MmioTransport::new(Blk::new(BlkConfig::new(DISK)))
}

#[test]
fn a_new_backend_redoes_what_the_old_one_took_and_returns_each_chain_once() {
    let mut p = TestPlatform::new(DISK as usize);
    p.saved = Some(std::boxed::Box::default());
    p.deferred = true;
    let mut old = device();
    let mut d = Driver::new(0, 32, 0x1000, 0x10_0000);
    let features = base_features() | crate::VirtioDevice::device_features(old.device());
    let up = bring_up(&mut old, &mut p, features, &[&d]);
    assert_eq!(up & reg::STATUS_DRIVER_OK, reg::STATUS_DRIVER_OK);

    // Six writes of distinct patterns, one sector each.
    let mut statuses = Vec::new();
    for sector in 0..6u64 {
        let h = header(&mut d, &mut p, T_OUT, sector);
        let data = d.alloc_with(&mut p, &[sector as u8 + 1; 512]);
        let st = d.alloc_with(&mut p, &[0xee]);
        d.post(&mut p, &[(h, 16, false), (data, 512, false), (st, 1, true)]);
        statuses.push(st);
    }
    old.queue_notify(&mut p, 0);
    assert_eq!(old.device().in_flight(), 6);
    // Two complete, out of order; the backend stops with four in flight.
    let mut done = p.run_pending();
    for &(tag, result) in done.iter().rev().take(2) {
        old.complete(&mut p, tag, result);
    }
    let first = d.take_used(&p);
    assert_eq!(first.len(), 2);
    drop(old);
    // The host I/O the old backend left in flight finishes with nobody
    // to hear of it (Domain-0's restart drains it first).
    done.clear();

    let mut new = device();
    p.interrupts.clear();
    assert!(new.resume(&mut p), "the page held the device's state");
    assert!(new.is_live());
    assert_eq!(new.driver_features(), features);
    assert_eq!(new.queues()[0].to_redo(), 4);
    assert_eq!(p.interrupts, [Interrupt::Queue(0)], "the driver is told");
    // A request the driver adds meanwhile comes after the redone ones.
    let h = header(&mut d, &mut p, T_IN, 5);
    let buf = d.alloc(512);
    let read_status = d.alloc_with(&mut p, &[0xee]);
    d.post(
        &mut p,
        &[(h, 16, false), (buf, 512, true), (read_status, 1, true)],
    );
    new.queue_notify(&mut p, 0);
    assert_eq!(new.device().in_flight(), 5);
    for (tag, result) in p.run_pending() {
        new.complete(&mut p, tag, result);
    }
    let second = d.take_used(&p);
    let mut heads: Vec<u32> = first.iter().chain(&second).map(|u| u.id).collect();
    assert_eq!(heads.len(), 7, "every chain returned");
    heads.sort_unstable();
    heads.dedup();
    assert_eq!(heads.len(), 7, "none returned twice");
    for (sector, &st) in statuses.iter().enumerate() {
        assert_eq!(status(&p, st), S_OK);
        assert_eq!(p.disk[sector * 512], sector as u8 + 1);
    }
    assert_eq!(status(&p, read_status), S_OK);
    let mut got = [0u8; 512];
    p.read(buf, &mut got).unwrap();
    assert_eq!(
        got, [6u8; 512],
        "the read after the takeover sees the redone write"
    );
    assert_eq!(
        p.saved
            .as_ref()
            .unwrap()
            .takeovers
            .load(core::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn a_fresh_page_is_a_new_device_and_a_reset_forgets_what_was_taken() {
    let mut p = TestPlatform::new(DISK as usize);
    p.saved = Some(std::boxed::Box::<SavedDevice>::default());
    let mut t = device();
    assert!(!t.resume(&mut p), "nothing saved yet");
    p.deferred = true;
    let mut d = Driver::new(0, 16, 0x1000, 0x10_0000);
    let features = base_features() | crate::VirtioDevice::device_features(t.device());
    bring_up(&mut t, &mut p, features, &[&d]);
    let h = header(&mut d, &mut p, T_IN, 0);
    let buf = d.alloc(512);
    let st = d.alloc_with(&mut p, &[0xee]);
    d.post(&mut p, &[(h, 16, false), (buf, 512, true), (st, 1, true)]);
    t.queue_notify(&mut p, 0);
    // The driver resets the device, then the backend stops.
    t.write(&mut p, reg::STATUS, 4, 0);
    drop(t);
    let mut new = device();
    assert!(new.resume(&mut p));
    assert!(!new.is_live(), "a reset device stays reset");
    assert_eq!(new.queues()[0].to_redo(), 0);
}
