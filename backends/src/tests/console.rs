//! virtio-console: transmit to the platform, receive fed input.

use protocol::virtio::console::{RECEIVEQ, TRANSMITQ};
use protocol::virtio::mmio as reg;

use super::driver::{base_features, bring_up, Driver};
use super::TestPlatform;
use crate::console::{Console, INPUT_CAPACITY};
use crate::mmio::MmioTransport;
use crate::platform::{Interrupt, Platform};

fn bed() -> (TestPlatform, MmioTransport<Console>, Driver, Driver) {
    let mut p = TestPlatform::new(0);
    let mut t = MmioTransport::new(Console::new(32));
    let rx = Driver::new(RECEIVEQ, 32, 0x1000, 0x10_0000);
    let tx = Driver::new(TRANSMITQ, 32, 0x4000, 0x20_0000);
    let status = bring_up(&mut t, &mut p, base_features(), &[&rx, &tx]);
    assert_ne!(status & reg::STATUS_DRIVER_OK, 0);
    (p, t, rx, tx)
}

#[test]
fn transmitted_bytes_reach_the_platform() {
    let (mut p, mut t, _rx, mut tx) = bed();
    let a = tx.alloc_with(&mut p, b"hello, ");
    let long: std::vec::Vec<u8> = (0..1000).map(|i| b'a' + (i % 26) as u8).collect();
    let b = tx.alloc_with(&mut p, &long);
    tx.post(&mut p, &[(a, 7, false)]);
    tx.post_indirect(&mut p, &[(b, 600, false), (b + 600, 400, false)]);
    t.queue_notify(&mut p, TRANSMITQ);
    let mut want = b"hello, ".to_vec();
    want.extend_from_slice(&long);
    assert_eq!(p.console, want);
    let used = tx.take_used(&p);
    assert_eq!(used.len(), 2);
    assert!(used.iter().all(|u| u.len == 0));
    assert_eq!(p.interrupts, [Interrupt::Queue(TRANSMITQ)]);
    assert_eq!(t.device().stats().bytes_out, 1007);
}

#[test]
fn input_waits_for_receive_buffers() {
    let (mut p, mut t, mut rx, _tx) = bed();
    let fed = t.with_device(&mut p, |dev, p, queues| {
        let n = dev.push_input(b"ls -l\n");
        dev.deliver_input(p, queues)?;
        Ok(n)
    });
    assert_eq!(fed, Some(6));
    assert_eq!(t.device().pending_input(), 6, "no buffer posted yet");
    let b1 = rx.alloc(4);
    let b2 = rx.alloc(16);
    rx.post(&mut p, &[(b1, 4, true)]);
    rx.post(&mut p, &[(b2, 16, true)]);
    t.queue_notify(&mut p, RECEIVEQ);
    let used = rx.take_used(&p);
    assert_eq!(
        used.iter().map(|u| u.len).collect::<std::vec::Vec<_>>(),
        [4, 2]
    );
    let mut got = [0u8; 6];
    p.read(b1, &mut got[..4]).unwrap();
    p.read(b2, &mut got[4..]).unwrap();
    assert_eq!(&got, b"ls -l\n");
    assert_eq!(t.device().pending_input(), 0);
    // More input goes straight into posted buffers.
    let b3 = rx.alloc(8);
    rx.post(&mut p, &[(b3, 8, true)]);
    t.queue_notify(&mut p, RECEIVEQ);
    assert!(
        rx.take_used(&p).is_empty(),
        "nothing to deliver: buffer kept"
    );
    t.with_device(&mut p, |dev, p, queues| {
        dev.push_input(b"pwd");
        dev.deliver_input(p, queues)
    });
    let used = rx.take_used(&p);
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].len, 3);
}

#[test]
fn input_is_bounded() {
    let (mut p, mut t, _rx, _tx) = bed();
    let big = std::vec![b'x'; INPUT_CAPACITY + 10];
    let taken = t.with_device(&mut p, |dev, _, _| Ok(dev.push_input(&big)));
    assert_eq!(taken, Some(INPUT_CAPACITY));
    assert_eq!(t.device().stats().input_dropped, 10);
}

#[test]
fn emergency_write_goes_out_at_once() {
    let mut p = TestPlatform::new(0);
    let mut t = MmioTransport::new(Console::new(8));
    t.write(&mut p, reg::CONFIG + 8, 4, u64::from(b'!'));
    t.write(&mut p, reg::CONFIG + 8, 1, u64::from(b'?'));
    assert_eq!(p.console, b"!?");
    // The other fields are read-only.
    t.write(&mut p, reg::CONFIG, 4, 0);
    assert_eq!(t.stats().bad_accesses, 1);
    assert_eq!(t.read(reg::CONFIG + 4, 4), 1, "max_nr_ports");
}
