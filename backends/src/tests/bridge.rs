//! A placement's loop, as Domain-0 runs it: guests' virtio-net devices
//! and an uplink on one switch, frames copied once from sender to
//! receivers, spoofed frames dropped, a rate-limited guest's chains held
//! until its credit returns.

use std::vec;
use std::vec::Vec;

use protocol::device::{Ipv4Cidr, NetParams};
use protocol::virtio::net::{
    FrameHeader, Mac, BROADCAST, ETHERTYPE_ARP, HEADER_SIZE, RX_BUFFER_SIZE,
};

use super::net::{eth_frame, Guest};
use crate::net::{GuestFrame, Received};
use crate::switch::{DropReason, Forward, PortConfig, PortId, Switch, SwitchConfig};

const A: Mac = [0x00, 0x16, 0x3e, 0, 0, 0xa];
const B: Mac = [0x00, 0x16, 0x3e, 0, 0, 0xb];
const C: Mac = [0x00, 0x16, 0x3e, 0, 0, 0xc];
const HOST: Mac = [0x02, 0, 0, 0, 0, 1];
const MS: u64 = 1_000_000;

struct Bridge {
    switch: Switch,
    guests: Vec<Guest>,
    ports: Vec<PortId>,
    uplink: PortId,
    /// Frames sent to the uplink.
    uplink_out: Vec<Vec<u8>>,
}

/// Copies `frame` to the port `to`: a guest's receive buffer or the
/// uplink.
fn copy_to(
    to: PortId,
    source: &GuestFrame<'_, super::TestPlatform>,
    others: (&mut [Guest], &mut [Guest]),
    ports: &[PortId],
    uplink: (PortId, &mut Vec<Vec<u8>>),
) -> Result<(), DropReason> {
    if to == uplink.0 {
        let mut bytes = vec![0u8; source.frame.len()];
        source
            .frame
            .read(source.platform, 0, &mut bytes)
            .map_err(|_| DropReason::Malformed)?;
        uplink.1.push(bytes);
        return Ok(());
    }
    let j = ports.iter().position(|&p| p == to).unwrap();
    let (before, after) = others;
    let rx = if j < before.len() {
        &mut before[j]
    } else {
        &mut after[j - before.len() - 1]
    };
    match rx
        .model
        .with_net(&mut rx.p, |net, p, q| net.receive(p, q, source))
    {
        Some(Received::Delivered) => Ok(()),
        _ => Err(DropReason::NoBuffer),
    }
}

impl Bridge {
    fn new() -> Self {
        let mut switch = Switch::new(SwitchConfig::default());
        let uplink = switch.add_port(PortConfig::uplink()).unwrap();
        let params = |mac, rate_bytes| NetParams {
            mac,
            ip: Ipv4Cidr {
                addr: [10, 0, 0, mac[5]],
                prefix_len: 24,
                _pad: [0; 3],
            },
            rate_bytes,
            rate_interval_us: 10_000,
            ..NetParams::default()
        };
        let mut guests = Vec::new();
        let mut ports = Vec::new();
        for (mac, rate) in [(A, 0), (B, 3000), (C, 0)] {
            ports.push(
                switch
                    .add_port(PortConfig::vif(&params(mac, rate)))
                    .unwrap(),
            );
            guests.push(Guest::new(mac));
        }
        Self {
            switch,
            guests,
            ports,
            uplink,
            uplink_out: Vec::new(),
        }
    }

    /// Switches guest `i`'s pending frames at `now`; returns when to come
    /// back if its credit ran out.
    fn pump(&mut self, i: usize, now: u64) -> Option<u64> {
        loop {
            let (before, rest) = self.guests.split_at_mut(i);
            let (sender, after) = rest.split_first_mut().unwrap();
            let frame = sender.model.tx_frames().next()?;
            let from = self.ports[i];
            let len = frame.len();
            let forward = self.switch.ingress(from, frame.header(), len, now).unwrap();
            if let Forward::Later(at) = forward {
                return Some(at);
            }
            let source = GuestFrame {
                platform: &sender.p,
                frame,
            };
            let (ports, uplink, out) = (&self.ports, self.uplink, &mut self.uplink_out);
            self.switch.deliver(from, forward, len, |to| {
                copy_to(
                    to,
                    &source,
                    (&mut *before, &mut *after),
                    ports,
                    (uplink, &mut *out),
                )
            });
            assert_eq!(sender.finish(1), Some(1));
        }
    }

    /// A frame from the host's side of the bridge.
    fn uplink_sends(&mut self, bytes: &[u8], now: u64) -> Forward {
        let header = FrameHeader::parse(bytes).unwrap();
        let forward = self
            .switch
            .ingress(self.uplink, &header, bytes.len(), now)
            .unwrap();
        let (guests, ports) = (&mut self.guests, &self.ports);
        self.switch
            .deliver(self.uplink, forward, bytes.len(), |to| {
                let j = ports.iter().position(|&p| p == to).unwrap();
                let g = &mut guests[j];
                match g
                    .model
                    .with_net(&mut g.p, |net, p, q| net.receive(p, q, bytes))
                {
                    Some(Received::Delivered) => Ok(()),
                    _ => Err(DropReason::NoBuffer),
                }
            });
        forward
    }

    /// Transmit chains guest `i` got back since the last call.
    fn tx_done(&mut self, i: usize) -> usize {
        let g = &mut self.guests[i];
        g.tx.take_used(&g.p).len()
    }

    /// The frames guest `i` received since the last call.
    fn received(&mut self, i: usize, bufs: &[u64]) -> Vec<Vec<u8>> {
        let g = &mut self.guests[i];
        let used = g.rx.take_used(&g.p);
        used.iter()
            .zip(bufs)
            .map(|(u, &at)| g.read(at + HEADER_SIZE as u64, u.len as usize - HEADER_SIZE))
            .collect()
    }
}

fn arp_request(src: Mac, sender: [u8; 4]) -> Vec<u8> {
    let mut f = eth_frame(BROADCAST, src, 60, 0);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&src);
    f[28..32].copy_from_slice(&sender);
    f
}

#[test]
fn guests_and_the_uplink_share_one_segment() {
    let mut br = Bridge::new();
    let bufs: Vec<Vec<u64>> = (0..3)
        .map(|i| {
            (0..8)
                .map(|_| br.guests[i].post_rx(RX_BUFFER_SIZE as u32))
                .collect()
        })
        .collect();

    // A's ARP request is flooded: B, C and the uplink get it.
    let arp = arp_request(A, [10, 0, 0, 0xa]);
    br.guests[0].send(&arp);
    assert_eq!(br.pump(0, 0), None);
    assert_eq!(br.received(1, &bufs[1]), std::slice::from_ref(&arp));
    assert_eq!(br.received(2, &bufs[2]), std::slice::from_ref(&arp));
    assert_eq!(br.uplink_out, [arp]);
    assert_eq!(br.tx_done(0), 1);

    // C answers A: learned, so only A gets it.
    let reply = eth_frame(A, C, 60, 5);
    br.guests[2].send(&reply);
    br.pump(2, 1);
    assert_eq!(br.received(0, &bufs[0]), [reply]);
    assert!(br.received(1, &bufs[1][1..]).is_empty());
    assert_eq!(br.uplink_out.len(), 1);

    // A pretends to be C: dropped, its chain returned all the same.
    br.guests[0].send(&eth_frame(BROADCAST, C, 60, 0));
    br.pump(0, 2);
    assert_eq!(br.tx_done(0), 1);
    assert!(br.received(1, &bufs[1][1..]).is_empty());
    let st = br.switch.port_stats(br.ports[0]).unwrap();
    assert_eq!(st.drops.spoofed_mac, 1);

    // The host talks to C: C's port was learned, so only C gets it; the
    // host is learned on the uplink.
    let from_host = eth_frame(C, HOST, 200, 9);
    assert_eq!(br.uplink_sends(&from_host, 3), Forward::Port(br.ports[2]));
    assert_eq!(br.received(2, &bufs[2][1..]), [from_host]);
    assert_eq!(br.switch.learned(&HOST, 3), Some(br.uplink));
    let st = br.switch.port_stats(br.ports[2]).unwrap();
    assert_eq!((st.frames_out, st.frames_in), (2, 1));
}

#[test]
fn a_rate_limited_guest_keeps_its_frames_until_its_credit_returns() {
    let mut br = Bridge::new();
    let bufs: Vec<u64> = (0..8)
        .map(|_| br.guests[0].post_rx(RX_BUFFER_SIZE as u32))
        .collect();
    // A is learned on its port first.
    br.guests[0].send(&eth_frame(BROADCAST, A, 60, 0));
    br.pump(0, 0);
    // B: 3000 bytes per 10 ms; five 1514-byte frames to A.
    let frames: Vec<Vec<u8>> = (0..5).map(|i| eth_frame(A, B, 1514, i)).collect();
    for f in &frames {
        br.guests[1].send(f);
    }
    let b = 1;
    assert_eq!(br.pump(b, 0), Some(10 * MS));
    assert_eq!(br.tx_done(b), 2, "the rest stay outstanding");
    assert_eq!(br.guests[b].model.tx_frames().count(), 3);
    assert_eq!(
        br.pump(b, 5 * MS),
        Some(10 * MS),
        "too early: still no credit"
    );
    assert_eq!(br.pump(b, 10 * MS), Some(20 * MS));
    assert_eq!(br.tx_done(b), 2);
    assert_eq!(br.pump(b, 20 * MS), None);
    assert_eq!(br.tx_done(b), 1);
    // Every frame arrived, in order, byte for byte; none went elsewhere.
    assert_eq!(br.received(0, &bufs), frames);
    assert_eq!(br.uplink_out.len(), 1, "only A's first broadcast");
    let st = br.switch.port_stats(br.ports[b]).unwrap();
    assert_eq!((st.frames_in, st.rate_delayed), (5, 3));
    assert_eq!(br.guests[b].net().stats().tx_frames, 5);
}

#[test]
fn a_receiver_without_buffers_is_counted_at_its_port() {
    let mut br = Bridge::new();
    let arp = arp_request(A, [10, 0, 0, 0xa]);
    br.guests[1].post_rx(RX_BUFFER_SIZE as u32);
    br.guests[0].send(&arp);
    br.pump(0, 0);
    let stats = |br: &Bridge, i: usize| br.switch.port_stats(br.ports[i]).unwrap();
    assert_eq!(stats(&br, 1).frames_out, 1);
    assert_eq!(stats(&br, 2).drops.no_buffer, 1);
    assert_eq!(br.guests[2].net().stats().rx_no_buffer, 1);
    assert_eq!(br.switch.port_stats(br.uplink).unwrap().frames_out, 1);
}
