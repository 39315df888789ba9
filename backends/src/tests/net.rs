//! virtio-net: frames taken off one guest's transmit queue, copied once
//! into another guest's receive buffers, malformed chains refused and
//! counted, receive without (usable) buffers, hostile rings.

use std::vec;
use std::vec::Vec;

use protocol::virtio::feature;
use protocol::virtio::mmio as reg;
use protocol::virtio::net::{
    FrameHeader, Mac, NetHeader, BROADCAST, HDR_F_NEEDS_CSUM, HEADER_SIZE, MAX_FRAME, MIN_FRAME,
    MTU, RECEIVEQ, RX_BUFFER_SIZE, TRANSMITQ, VIRTIO_NET_F_MAC, VIRTIO_NET_F_MTU,
    VIRTIO_NET_F_STATUS, VIRTIO_NET_S_LINK_UP,
};
use protocol::virtio::queue::{Descriptor, DESC_F_NEXT, USED_F_NO_NOTIFY};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::driver::{base_features, bring_up, Driver, Seg};
use super::TestPlatform;
use crate::mmio::MmioTransport;
use crate::model::DeviceModel;
use crate::net::{GuestFrame, Net, NetConfig, Received};
use crate::platform::{Interrupt, Platform};
use crate::queue::QueueError;

pub const MAC_A: Mac = [0x00, 0x16, 0x3e, 0, 0, 1];
pub const MAC_B: Mac = [0x00, 0x16, 0x3e, 0, 0, 2];

/// A frame of `len` bytes from `src` to `dst`, its payload a pattern
/// seeded by `seed`.
pub fn eth_frame(dst: Mac, src: Mac, len: usize, seed: u8) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    for (i, b) in f[14..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    f
}

/// One guest with a virtio-net device, brought up by the test driver.
pub struct Guest {
    pub p: TestPlatform,
    pub model: DeviceModel,
    pub rx: Driver,
    pub tx: Driver,
}

impl Guest {
    pub fn new(mac: Mac) -> Self {
        Self::with_features(mac, base_features())
    }

    pub fn with_features(mac: Mac, features: u64) -> Self {
        let mut p = TestPlatform::new(0);
        let mut model = DeviceModel::net(NetConfig::new(mac));
        let rx = Driver::new(RECEIVEQ, 32, 0x1000, 0x10_0000);
        let tx = Driver::new(TRANSMITQ, 32, 0x4000, 0x20_0000);
        let features = features
            | feature(VIRTIO_NET_F_MAC)
            | feature(VIRTIO_NET_F_STATUS)
            | feature(VIRTIO_NET_F_MTU);
        let DeviceModel::Net(t) = &mut model else {
            unreachable!()
        };
        let status = bring_up(t, &mut p, features, &[&rx, &tx]);
        assert_eq!(status & reg::STATUS_DRIVER_OK, reg::STATUS_DRIVER_OK);
        Self { p, model, rx, tx }
    }

    /// Resets the device and sets it up again, with fresh rings.
    pub fn restart(&mut self) {
        self.rx = Driver::new(RECEIVEQ, 32, 0x1000, 0x10_0000);
        self.tx = Driver::new(TRANSMITQ, 32, 0x4000, 0x20_0000);
        let features = self.t().driver_features();
        let DeviceModel::Net(t) = &mut self.model else {
            unreachable!()
        };
        let status = bring_up(t, &mut self.p, features, &[&self.rx, &self.tx]);
        assert_eq!(status & reg::STATUS_DRIVER_OK, reg::STATUS_DRIVER_OK);
    }

    pub fn t(&mut self) -> &mut MmioTransport<Net> {
        match &mut self.model {
            DeviceModel::Net(t) => t,
            _ => unreachable!(),
        }
    }

    pub fn net(&self) -> &Net {
        self.model.as_net().unwrap()
    }

    /// Posts `header` then `frame` as `pieces` descriptors of the frame
    /// (split at the given offsets), and kicks the transmit queue.
    pub fn send_split(&mut self, header: NetHeader, frame: &[u8], cuts: &[usize]) -> u16 {
        let mut segs: Vec<Seg> = vec![];
        let hdr = self.tx.alloc_with(&mut self.p, &header.to_bytes());
        segs.push((hdr, HEADER_SIZE as u32, false));
        let mut start = 0;
        for &end in cuts.iter().chain([frame.len()].iter()) {
            let at = self.tx.alloc_with(&mut self.p, &frame[start..end]);
            segs.push((at, (end - start) as u32, false));
            start = end;
        }
        let head = self.tx.post(&mut self.p, &segs);
        self.kick_tx();
        head
    }

    pub fn send(&mut self, frame: &[u8]) -> u16 {
        self.send_split(NetHeader::default(), frame, &[])
    }

    pub fn kick_tx(&mut self) {
        let p = &mut self.p;
        match &mut self.model {
            DeviceModel::Net(t) => t.queue_notify(p, TRANSMITQ),
            _ => unreachable!(),
        }
    }

    /// Posts a receive buffer of `len` bytes; returns its address.
    pub fn post_rx(&mut self, len: u32) -> u64 {
        let at = self.rx.alloc(u64::from(len));
        self.rx.post(&mut self.p, &[(at, len, true)]);
        at
    }

    /// Returns the `n` oldest pending frames to the driver.
    pub fn finish(&mut self, n: usize) -> Option<usize> {
        self.model
            .with_net(&mut self.p, |net, p, q| net.finish_tx(p, q, n))
    }

    pub fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.p.read(gpa, &mut b).unwrap();
        b
    }
}

/// Delivers `from`'s oldest pending frame into `to`, as a placement does.
pub fn deliver(from: &Guest, to: &mut Guest) -> Option<Received> {
    let frame = from.model.tx_frames().next()?;
    let source = GuestFrame {
        platform: &from.p,
        frame,
    };
    to.model
        .with_net(&mut to.p, |net, p, q| net.receive(p, q, &source))
}

#[test]
fn a_frame_goes_from_one_guest_to_another_byte_for_byte() {
    let mut a = Guest::new(MAC_A);
    let mut b = Guest::new(MAC_B);
    let frame = eth_frame(MAC_B, MAC_A, 1000, 7);
    // The frame in three pieces, one cut inside the inspected prefix.
    a.send_split(NetHeader::default(), &frame, &[20, 700]);
    assert!(a.tx.take_used(&a.p).is_empty(), "held until switched");
    let pending: Vec<_> = a.model.tx_frames().collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].len(), 1000);
    assert_eq!(*pending[0].header(), FrameHeader::parse(&frame).unwrap());
    assert_eq!(pending[0].prefix(), &frame[..42]);
    let mut out = vec![0u8; 1000];
    pending[0].read(&a.p, 0, &mut out).unwrap();
    assert_eq!(out, frame);
    assert!(pending[0].read(&a.p, 990, &mut [0u8; 11]).is_err());

    // The receiver's buffer in two pieces, the first shorter than a header.
    let r1 = b.rx.alloc(8);
    let r2 = b.rx.alloc(RX_BUFFER_SIZE as u64);
    b.rx.post(
        &mut b.p,
        &[(r1, 8, true), (r2, RX_BUFFER_SIZE as u32 - 8, true)],
    );
    assert_eq!(deliver(&a, &mut b), Some(Received::Delivered));
    let used = b.rx.take_used(&b.p);
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].len, (HEADER_SIZE + 1000) as u32);
    let mut got = b.read(r1, 8);
    got.extend(b.read(r2, HEADER_SIZE + 1000 - 8));
    assert_eq!(got[..HEADER_SIZE], NetHeader::RECEIVED.to_bytes());
    assert_eq!(got[10..12], [1, 0], "num_buffers 1");
    assert_eq!(got[HEADER_SIZE..], frame[..]);
    assert_eq!(b.p.interrupts, [Interrupt::Queue(RECEIVEQ)]);

    assert_eq!(a.finish(5), Some(1), "only one was pending");
    let used = a.tx.take_used(&a.p);
    assert_eq!((used.len(), used[0].len), (1, 0));
    assert_eq!(a.p.interrupts, [Interrupt::Queue(TRANSMITQ)]);
    assert_eq!(a.model.tx_frames().count(), 0);
    let (sa, sb) = (a.net().stats(), b.net().stats());
    assert_eq!((sa.tx_frames, sa.tx_bytes, sa.tx_malformed), (1, 1000, 0));
    assert_eq!((sb.rx_frames, sb.rx_bytes), (1, 1000));
}

#[test]
fn receivers_get_the_checked_prefix_not_what_the_sender_wrote_later() {
    let mut a = Guest::new(MAC_A);
    let mut b = Guest::new(MAC_B);
    let frame = eth_frame(BROADCAST, MAC_A, 100, 1);
    let hdr = a.tx.alloc_with(&mut a.p, &[0u8; HEADER_SIZE]);
    let data = a.tx.alloc_with(&mut a.p, &frame);
    a.tx.post(&mut a.p, &[(hdr, 12, false), (data, 100, false)]);
    a.kick_tx();
    // The guest rewrites its source MAC (and payload) after the device
    // took the frame: the source MAC goes out as checked; the payload past
    // the prefix is the sender's own business.
    a.p.write(data + 6, &MAC_B).unwrap();
    a.p.write(data + 60, &[0xaa]).unwrap();
    let at = b.post_rx(RX_BUFFER_SIZE as u32);
    assert_eq!(deliver(&a, &mut b), Some(Received::Delivered));
    let got = b.read(at + HEADER_SIZE as u64, 100);
    assert_eq!(got[6..12], MAC_A);
    assert_eq!(got[60], 0xaa);
    assert_eq!(got[..60], frame[..60]);
}

#[test]
fn frames_from_the_placement_and_bad_lengths() {
    let mut b = Guest::new(MAC_B);
    let at = b.post_rx(RX_BUFFER_SIZE as u32);
    let frame = eth_frame(MAC_B, MAC_A, MAX_FRAME, 3);
    let receive = |b: &mut Guest, f: &[u8]| {
        b.model
            .with_net(&mut b.p, |net, p, q| net.receive(p, q, f))
            .unwrap()
    };
    assert_eq!(receive(&mut b, &frame[..MIN_FRAME - 1]), Received::BadFrame);
    assert_eq!(receive(&mut b, &[0u8; MAX_FRAME + 1]), Received::BadFrame);
    assert_eq!(receive(&mut b, &frame), Received::Delivered);
    assert_eq!(b.read(at + HEADER_SIZE as u64, MAX_FRAME), frame);
    assert_eq!(b.rx.take_used(&b.p)[0].len, RX_BUFFER_SIZE as u32);
    let s = b.net().stats();
    assert_eq!((s.rx_bad_frame, s.rx_frames), (2, 1));
}

#[test]
fn malformed_transmit_chains_are_returned_and_counted() {
    let mut a = Guest::new(MAC_A);
    let good = eth_frame(BROADCAST, MAC_A, 60, 0);
    let csum = NetHeader {
        flags: HDR_F_NEEDS_CSUM,
        ..NetHeader::default()
    };
    let gso = NetHeader {
        gso_type: 1,
        ..NetHeader::default()
    };
    a.send(&good[..MIN_FRAME - 1]);
    a.send(&eth_frame(BROADCAST, MAC_A, MAX_FRAME + 1, 0));
    a.send_split(csum, &good, &[]);
    a.send_split(gso, &good, &[]);
    // Only a header.
    let hdr = a.tx.alloc_with(&mut a.p, &[0u8; HEADER_SIZE]);
    a.tx.post(&mut a.p, &[(hdr, HEADER_SIZE as u32, false)]);
    // A device-writable buffer after the frame.
    let f = a.tx.alloc_with(&mut a.p, &good);
    let w = a.tx.alloc(16);
    a.tx.post(&mut a.p, &[(hdr, 12, false), (f, 60, false), (w, 16, true)]);
    a.kick_tx();
    let used = a.tx.take_used(&a.p);
    assert_eq!(used.len(), 6);
    assert!(used.iter().all(|u| u.len == 0));
    assert_eq!(a.net().stats().tx_malformed, 6);
    assert_eq!(a.model.tx_frames().count(), 0);
    assert!(!a.t().needs_reset());
    // The bounds themselves are fine.
    a.send(&good[..MIN_FRAME]);
    a.send(&eth_frame(BROADCAST, MAC_A, MAX_FRAME, 0));
    let lens: Vec<_> = a.model.tx_frames().map(|f| f.len()).collect();
    assert_eq!(lens, [MIN_FRAME, MAX_FRAME]);
    assert!(a.tx.take_used(&a.p).is_empty());
}

#[test]
fn the_placement_may_stop_after_any_frame_and_resume() {
    let mut a = Guest::new(MAC_A);
    let heads: Vec<u16> = (0..3)
        .map(|i| a.send(&eth_frame(BROADCAST, MAC_A, 64 + i, 0)))
        .collect();
    assert_eq!(a.finish(1), Some(1));
    let used = a.tx.take_used(&a.p);
    assert_eq!(
        used.iter().map(|u| u.id).collect::<Vec<_>>(),
        [heads[0] as u32]
    );
    let lens: Vec<_> = a.model.tx_frames().map(|f| f.len()).collect();
    assert_eq!(lens, [65, 66], "the rest wait, in order");
    assert_eq!(a.finish(0), Some(0));
    assert_eq!(a.finish(2), Some(2));
    let ids: Vec<_> = a.tx.take_used(&a.p).iter().map(|u| u.id).collect();
    assert_eq!(ids, [u32::from(heads[1]), u32::from(heads[2])]);
}

#[test]
fn receive_without_a_usable_buffer_drops_the_frame() {
    let mut a = Guest::new(MAC_A);
    let mut b = Guest::new(MAC_B);
    a.send(&eth_frame(MAC_B, MAC_A, 200, 0));
    assert_eq!(deliver(&a, &mut b), Some(Received::NoBuffer));
    // Too small for the header and the frame: returned empty, frame lost.
    b.post_rx((HEADER_SIZE + 199) as u32);
    assert_eq!(deliver(&a, &mut b), Some(Received::BadBuffer));
    // A device-readable part.
    let r = b.rx.alloc(16);
    let w = b.rx.alloc(RX_BUFFER_SIZE as u64);
    b.rx.post(
        &mut b.p,
        &[(r, 16, false), (w, RX_BUFFER_SIZE as u32, true)],
    );
    assert_eq!(deliver(&a, &mut b), Some(Received::BadBuffer));
    let used = b.rx.take_used(&b.p);
    assert_eq!(used.iter().map(|u| u.len).collect::<Vec<_>>(), [0, 0]);
    // A buffer just large enough works, and the ring moved on to it.
    let at = b.post_rx((HEADER_SIZE + 200) as u32);
    assert_eq!(deliver(&a, &mut b), Some(Received::Delivered));
    assert_eq!(b.read(at + 12 + 6, 6), MAC_A);
    let s = b.net().stats();
    assert_eq!((s.rx_no_buffer, s.rx_bad_buffer, s.rx_frames), (1, 2, 1));
    assert!(!b.t().needs_reset());
}

#[test]
fn a_source_whose_memory_is_gone_costs_the_frame_not_the_receiver() {
    let mut a = Guest::new(MAC_A);
    let mut b = Guest::new(MAC_B);
    a.send(&eth_frame(MAC_B, MAC_A, 300, 0));
    let mut gone = TestPlatform::new(0);
    gone.mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1000)]).unwrap();
    b.post_rx(RX_BUFFER_SIZE as u32);
    let frame = a.model.tx_frames().next().unwrap();
    let source = GuestFrame {
        platform: &gone,
        frame,
    };
    let r = b
        .model
        .with_net(&mut b.p, |net, p, q| net.receive(p, q, &source));
    assert!(matches!(r, Some(Received::Fault(_))), "{r:?}");
    assert_eq!(b.rx.take_used(&b.p)[0].len, 0);
    assert_eq!(b.net().stats().rx_faults, 1);
    assert!(!b.t().needs_reset());
}

#[test]
fn configuration_and_features() {
    let mut a = Guest::new(MAC_A);
    let t = a.t();
    let mut config = [0u8; 12];
    for (i, b) in config.iter_mut().enumerate() {
        *b = t.read(reg::CONFIG + i as u64, 1) as u8;
    }
    assert_eq!(config[..6], MAC_A);
    assert_eq!(
        u16::from_le_bytes([config[6], config[7]]),
        VIRTIO_NET_S_LINK_UP
    );
    assert_eq!(u16::from_le_bytes([config[8], config[9]]), 1);
    assert_eq!(u16::from_le_bytes([config[10], config[11]]), MTU);
    assert_eq!(t.read(reg::DEVICE_ID, 4), u64::from(reg::DEVICE_ID_NET));
    let mut p = TestPlatform::new(0);
    t.write(&mut p, reg::CONFIG, 1, 0x02);
    assert_eq!(t.stats().bad_accesses, 1, "the MAC is read-only");
    assert_eq!(t.read(reg::CONFIG, 1), 0x00);
    let offered = crate::VirtioDevice::device_features(t.device());
    let want = base_features()
        | feature(VIRTIO_NET_F_MAC)
        | feature(VIRTIO_NET_F_STATUS)
        | feature(VIRTIO_NET_F_MTU);
    assert_eq!(offered, want, "no offload, no mergeable buffers");
}

#[test]
fn the_device_asks_for_no_receive_notifications() {
    let features = base_features() & !feature(protocol::virtio::features::VIRTIO_F_EVENT_IDX);
    let mut b = Guest::with_features(MAC_B, features);
    b.post_rx(RX_BUFFER_SIZE as u32);
    let p = &mut b.p;
    if let DeviceModel::Net(t) = &mut b.model {
        t.queue_notify(p, RECEIVEQ);
    }
    assert_eq!(b.p.read_u16(b.rx.used).unwrap(), USED_F_NO_NOTIFY);
    assert!(b.rx.take_used(&b.p).is_empty(), "the buffer is kept");
}

#[test]
fn a_held_head_made_available_again_needs_reset_and_spares_the_other_guest() {
    let mut a = Guest::new(MAC_A);
    let mut b = Guest::new(MAC_B);
    let head = a.send(&eth_frame(MAC_B, MAC_A, 64, 0));
    a.tx.publish(&mut a.p, head);
    a.kick_tx();
    assert!(a.t().needs_reset());
    assert_eq!(a.t().last_error(), Some(QueueError::HeadInFlight(head)));
    assert_eq!(
        a.model.tx_frames().count(),
        0,
        "a stopped device shows none"
    );
    assert_eq!(a.finish(1), None);
    // The other guest carries on.
    b.send(&eth_frame(MAC_A, MAC_B, 64, 0));
    assert_eq!(b.model.tx_frames().count(), 1);
    assert_eq!(b.finish(1), Some(1));
    assert!(!b.t().needs_reset());
    // A reset forgets the held frame; the device works again.
    a.restart();
    assert!(!a.t().needs_reset());
    assert_eq!(a.model.tx_frames().count(), 0);
    a.send(&eth_frame(MAC_B, MAC_A, 64, 9));
    assert_eq!(a.model.tx_frames().count(), 1);
}

#[test]
fn hostile_rings_need_reset_and_spare_the_other_guest() {
    type Break = fn(&mut Guest);
    let cases: [(Break, QueueError); 3] = [
        (
            |g| g.tx.publish(&mut g.p, 40),
            QueueError::HeadOutOfRange(40),
        ),
        (
            |g| {
                let d = Descriptor {
                    addr: 0x20_0000,
                    len: 64,
                    flags: DESC_F_NEXT,
                    next: 5,
                };
                g.tx.write_desc(&mut g.p, 5, d);
                g.tx.publish(&mut g.p, 5);
            },
            QueueError::Loop(5),
        ),
        (
            |g| {
                let d = Descriptor {
                    addr: 0x20_0000,
                    len: 64,
                    flags: DESC_F_NEXT,
                    next: 33,
                };
                g.tx.write_desc(&mut g.p, 3, d);
                g.tx.publish(&mut g.p, 3);
            },
            QueueError::NextOutOfRange(33),
        ),
    ];
    for (break_ring, err) in cases {
        let mut a = Guest::new(MAC_A);
        let mut b = Guest::new(MAC_B);
        b.send(&eth_frame(MAC_A, MAC_B, 80, 0));
        break_ring(&mut a);
        a.kick_tx();
        assert!(a.t().needs_reset());
        assert_eq!(a.t().last_error(), Some(err));
        assert_eq!(a.p.interrupts, [Interrupt::Config]);
        // Frames for the stopped guest are not delivered; the other guest
        // is untouched.
        a.post_rx(RX_BUFFER_SIZE as u32);
        assert_eq!(deliver(&b, &mut a), None);
        assert_eq!(b.finish(1), Some(1));
        assert!(!b.t().needs_reset());
        assert_eq!(b.net().stats().tx_frames, 1);
    }
    // A broken receive ring stops the receiver, not the sender.
    let mut a = Guest::new(MAC_A);
    let mut b = Guest::new(MAC_B);
    a.send(&eth_frame(MAC_B, MAC_A, 80, 0));
    b.rx.publish(&mut b.p, 99);
    assert_eq!(deliver(&a, &mut b), None);
    assert_eq!(b.t().last_error(), Some(QueueError::HeadOutOfRange(99)));
    assert_eq!(a.finish(1), Some(1));
    assert!(!a.t().needs_reset());
}

#[test]
fn polling_finds_transmits_but_not_waiting_receive_buffers() {
    let mut a = Guest::new(MAC_A);
    a.post_rx(RX_BUFFER_SIZE as u32);
    assert!(!a.model.set_polling(&mut a.p, true));
    assert!(
        !a.model.poll(&mut a.p),
        "posted receive buffers are not work"
    );
    // A frame posted without a kick is found.
    let frame = eth_frame(BROADCAST, MAC_A, 60, 0);
    let hdr = a.tx.alloc_with(&mut a.p, &[0u8; HEADER_SIZE]);
    let data = a.tx.alloc_with(&mut a.p, &frame);
    a.tx.post(&mut a.p, &[(hdr, 12, false), (data, 60, false)]);
    assert!(a.model.poll(&mut a.p));
    assert_eq!(a.model.tx_frames().count(), 1);
    assert!(
        !a.model.set_polling(&mut a.p, false),
        "leaving finds nothing either"
    );
    assert!(!a.model.poll(&mut a.p));
}
