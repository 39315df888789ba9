//! Domain-0's learning switch as pure logic: learning, flooding, ageing,
//! the table bound, anti-spoofing, hairpins, rate credit on a synthetic
//! clock, port removal.

use std::vec::Vec;

use protocol::device::{Ipv4Cidr, NetParams};
use protocol::virtio::net::{
    FrameHeader, Mac, BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_VLAN, MAX_FRAME,
};

use crate::switch::{
    DropReason, Forward, PortConfig, PortId, Rate, Switch, SwitchConfig, SwitchError,
    DEFAULT_AGEING_NS,
};

const A: Mac = [0x00, 0x16, 0x3e, 0, 0, 0xa];
const B: Mac = [0x00, 0x16, 0x3e, 0, 0, 0xb];
const HOST: Mac = [0x02, 0, 0, 0, 0, 0x01];
const MULTICAST: Mac = [0x01, 0x00, 0x5e, 0, 0, 0xfb];
const MS: u64 = 1_000_000;

fn hdr(dst: Mac, src: Mac) -> FrameHeader {
    FrameHeader {
        dst,
        src,
        ethertype: 0x86dd,
        ipv4_sender: None,
    }
}

fn ipv4(src: Mac, sender: [u8; 4]) -> FrameHeader {
    FrameHeader {
        ethertype: ETHERTYPE_IPV4,
        ipv4_sender: Some(sender),
        ..hdr(BROADCAST, src)
    }
}

fn vif(mac: Mac) -> PortConfig {
    PortConfig {
        mac: Some(mac),
        ..PortConfig::default()
    }
}

fn cidr(addr: [u8; 4], prefix_len: u8) -> Ipv4Cidr {
    Ipv4Cidr {
        addr,
        prefix_len,
        _pad: [0; 3],
    }
}

/// A switch with an uplink and vifs for A and B.
fn bridge() -> (Switch, PortId, PortId, PortId) {
    let mut s = Switch::new(SwitchConfig::default());
    let up = s.add_port(PortConfig::uplink()).unwrap();
    let a = s.add_port(vif(A)).unwrap();
    let b = s.add_port(vif(B)).unwrap();
    (s, up, a, b)
}

fn go(s: &mut Switch, port: PortId, h: FrameHeader, now: u64) -> Forward {
    s.ingress(port, &h, 100, now).unwrap()
}

#[test]
fn learns_and_floods() {
    let (mut s, up, a, b) = bridge();
    assert_eq!(go(&mut s, a, hdr(BROADCAST, A), 0), Forward::Flood);
    assert_eq!(s.flood_targets(a).collect::<Vec<_>>(), [up, b]);
    assert_eq!(s.learned(&A, 0), Some(a));
    // B answers A: learned, one port.
    assert_eq!(go(&mut s, b, hdr(A, B), 1), Forward::Port(a));
    assert_eq!(go(&mut s, a, hdr(B, A), 2), Forward::Port(b));
    // Unknown unicast and multicast are flooded.
    assert_eq!(go(&mut s, a, hdr(HOST, A), 3), Forward::Flood);
    assert_eq!(go(&mut s, up, hdr(MULTICAST, HOST), 4), Forward::Flood);
    assert_eq!(go(&mut s, a, hdr(HOST, A), 5), Forward::Port(up));
    assert_eq!(s.ports().collect::<Vec<_>>(), [up, a, b]);
    let st = s.port_stats(a).unwrap();
    assert_eq!((st.frames_in, st.bytes_in, st.drops.total()), (4, 400, 0));
    s.delivered(b, 100);
    s.dropped(b, DropReason::NoBuffer);
    let st = s.port_stats(b).unwrap();
    assert_eq!(
        (st.frames_out, st.bytes_out, st.drops.no_buffer),
        (1, 100, 1)
    );
}

#[test]
fn entries_age_and_a_moved_mac_is_relearned() {
    let config = SwitchConfig {
        ageing_ns: 1000 * MS,
        ..SwitchConfig::default()
    };
    assert_eq!(SwitchConfig::default().ageing_ns, DEFAULT_AGEING_NS);
    let mut s = Switch::new(config);
    let p1 = s.add_port(PortConfig::uplink()).unwrap();
    let p2 = s.add_port(PortConfig::uplink()).unwrap();
    go(&mut s, p1, hdr(BROADCAST, HOST), 0);
    assert_eq!(go(&mut s, p2, hdr(HOST, B), 999 * MS), Forward::Port(p1));
    assert_eq!(
        go(&mut s, p2, hdr(HOST, B), 1000 * MS),
        Forward::Flood,
        "aged"
    );
    // Seen again: valid again, and refreshed.
    go(&mut s, p1, hdr(BROADCAST, HOST), 1500 * MS);
    assert_eq!(go(&mut s, p2, hdr(HOST, B), 2400 * MS), Forward::Port(p1));
    // HOST moves to the other port.
    go(&mut s, p2, hdr(BROADCAST, HOST), 2500 * MS);
    assert_eq!(s.learned(&HOST, 2500 * MS), Some(p2));
    assert_eq!(go(&mut s, p1, hdr(HOST, A), 2600 * MS), Forward::Port(p2));
}

#[test]
fn the_table_is_bounded_and_evicts_the_least_recently_seen() {
    let mut s = Switch::new(SwitchConfig {
        table_size: 4,
        ..SwitchConfig::default()
    });
    let up = s.add_port(PortConfig::uplink()).unwrap();
    let macs: Vec<Mac> = (1..=6u8).map(|i| [0x02, 0, 0, 0, 0, i]).collect();
    for (t, mac) in macs[..4].iter().enumerate() {
        go(&mut s, up, hdr(BROADCAST, *mac), t as u64);
    }
    // The first one is refreshed, so the second is the oldest.
    go(&mut s, up, hdr(BROADCAST, macs[0]), 10);
    go(&mut s, up, hdr(BROADCAST, macs[4]), 11);
    go(&mut s, up, hdr(BROADCAST, macs[5]), 12);
    assert_eq!(s.table_len(), 4);
    let known: Vec<bool> = macs.iter().map(|m| s.learned(m, 13).is_some()).collect();
    assert_eq!(known, [true, false, false, true, true, true]);
    // A table of size 0 learns nothing.
    let mut s = Switch::new(SwitchConfig {
        table_size: 0,
        ..SwitchConfig::default()
    });
    let up = s.add_port(PortConfig::uplink()).unwrap();
    go(&mut s, up, hdr(BROADCAST, HOST), 0);
    assert_eq!(s.table_len(), 0);
}

#[test]
fn spoofed_and_group_source_macs_are_dropped_and_teach_nothing() {
    let (mut s, up, a, _b) = bridge();
    assert_eq!(
        go(&mut s, a, hdr(BROADCAST, B), 0),
        Forward::Drop(DropReason::SpoofedMac)
    );
    assert_eq!(s.learned(&B, 0), None);
    for port in [a, up] {
        assert_eq!(
            go(&mut s, port, hdr(HOST, MULTICAST), 0),
            Forward::Drop(DropReason::GroupSource)
        );
    }
    assert_eq!(s.table_len(), 0);
    let st = s.port_stats(a).unwrap();
    assert_eq!((st.drops.spoofed_mac, st.drops.group_source), (1, 1));
    assert_eq!(st.frames_in, 2, "dropped frames are counted in");
    // The uplink may carry any unicast source.
    assert_eq!(go(&mut s, up, hdr(BROADCAST, B), 0), Forward::Flood);
}

#[test]
fn ipv4_and_arp_senders_must_lie_in_the_ports_network() {
    let mut s = Switch::new(SwitchConfig::default());
    let params = NetParams {
        mac: A,
        ip: cidr([10, 0, 0, 2], 24),
        ..NetParams::default()
    };
    let a = s.add_port(PortConfig::vif(&params)).unwrap();
    let open = s.add_port(vif(B)).unwrap();
    let arp = |sender| FrameHeader {
        ethertype: ETHERTYPE_ARP,
        ..ipv4(A, sender)
    };
    let unverifiable = |ethertype| FrameHeader {
        ethertype,
        ipv4_sender: None,
        ..hdr(BROADCAST, A)
    };
    let spoofed = Forward::Drop(DropReason::SpoofedIp);
    for (h, want) in [
        (ipv4(A, [10, 0, 0, 2]), Forward::Flood),
        (ipv4(A, [10, 0, 0, 77]), Forward::Flood),
        (ipv4(A, [10, 0, 1, 2]), spoofed),
        (arp([10, 0, 0, 9]), Forward::Flood),
        (arp([192, 168, 0, 1]), spoofed),
        // DHCP discovery and ARP probes, before the guest has an address.
        (ipv4(A, [0, 0, 0, 0]), Forward::Flood),
        (arp([0, 0, 0, 0]), Forward::Flood),
        // Truncated IPv4, an ARP the parser does not take, a second tag.
        (unverifiable(ETHERTYPE_IPV4), spoofed),
        (unverifiable(ETHERTYPE_ARP), spoofed),
        (unverifiable(ETHERTYPE_VLAN), spoofed),
        // Not IPv4: not this check's business.
        (unverifiable(0x86dd), Forward::Flood),
    ] {
        assert_eq!(go(&mut s, a, h, 0), want, "{h:?}");
    }
    assert_eq!(s.port_stats(a).unwrap().drops.spoofed_ip, 5);
    // Without ip=, any sender goes.
    let h = FrameHeader {
        src: B,
        ..ipv4(B, [192, 168, 0, 1])
    };
    assert_eq!(go(&mut s, open, h, 0), Forward::Flood);
    // An address must be given to be checked against.
    let no_address = PortConfig {
        ip: Some(Ipv4Cidr::default()),
        ..vif(B)
    };
    assert_eq!(s.add_port(no_address), Err(SwitchError::BadAddress));
}

#[test]
fn a_frame_back_to_where_its_destination_lives_is_dropped() {
    let (mut s, up, a, _b) = bridge();
    go(&mut s, up, hdr(BROADCAST, HOST), 0);
    go(&mut s, up, hdr(BROADCAST, B), 0);
    assert_eq!(
        go(&mut s, up, hdr(HOST, B), 1),
        Forward::Drop(DropReason::Hairpin)
    );
    assert_eq!(s.port_stats(up).unwrap().drops.hairpin, 1);
    assert_eq!(go(&mut s, a, hdr(HOST, A), 2), Forward::Port(up));
}

#[test]
fn removing_a_port_forgets_its_macs_and_its_id() {
    let (mut s, up, a, b) = bridge();
    go(&mut s, a, hdr(BROADCAST, A), 0);
    go(&mut s, up, hdr(BROADCAST, HOST), 0);
    assert_eq!(go(&mut s, b, hdr(A, B), 1), Forward::Port(a));
    let last = s.remove_port(a).unwrap();
    assert_eq!(last.frames_in, 1);
    assert_eq!(s.learned(&A, 1), None);
    assert_eq!(s.learned(&HOST, 1), Some(up), "other ports' entries stay");
    assert_eq!(go(&mut s, b, hdr(A, B), 2), Forward::Flood);
    assert_eq!(s.flood_targets(b).collect::<Vec<_>>(), [up]);
    assert_eq!(
        s.ingress(a, &hdr(B, A), 60, 3),
        Err(SwitchError::NoSuchPort)
    );
    assert_eq!(s.remove_port(a), Err(SwitchError::NoSuchPort));
    // The slot is reused, the old id is not.
    let c = s.add_port(vif(A)).unwrap();
    assert_eq!(c.slot(), a.slot());
    assert_ne!(c, a);
    assert_eq!(s.port_stats(a), Err(SwitchError::NoSuchPort));
    s.delivered(a, 100);
    assert_eq!(s.port_stats(c).unwrap().frames_out, 0);
}

#[test]
fn ports_are_bounded_and_their_limits_checked() {
    let mut s = Switch::new(SwitchConfig {
        max_ports: 2,
        ..SwitchConfig::default()
    });
    let p = s.add_port(PortConfig::uplink()).unwrap();
    s.add_port(vif(A)).unwrap();
    assert_eq!(s.add_port(vif(B)), Err(SwitchError::TooManyPorts));
    s.remove_port(p).unwrap();
    s.add_port(vif(B)).unwrap();
    let mut s = Switch::new(SwitchConfig::default());
    for (bytes, interval_ns) in [(0, MS), (1000, 0), (u64::from(u32::MAX) + 1, MS)] {
        let config = PortConfig {
            rate: Some(Rate { bytes, interval_ns }),
            ..vif(A)
        };
        assert_eq!(s.add_port(config), Err(SwitchError::BadRate));
    }
    // From a vif's parameters: rate_bytes 0 is no limit.
    let params = NetParams {
        mac: A,
        rate_bytes: 25_000,
        rate_interval_us: 20_000,
        ..NetParams::default()
    };
    let c = PortConfig::vif(&params);
    assert_eq!(
        (c.mac, c.ip, c.rate),
        (
            Some(A),
            None,
            Some(Rate {
                bytes: 25_000,
                interval_ns: 20 * MS
            })
        )
    );
    let c = PortConfig::vif(&NetParams {
        rate_bytes: 0,
        ..params
    });
    assert_eq!(c.rate, None);
}

/// Offers `frames` frames of `len` bytes as fast as the port's credit
/// lets them go, on a synthetic clock that jumps to each `Later`; returns
/// the times at which they went.
fn send_all(s: &mut Switch, port: PortId, frames: usize, len: usize) -> Vec<u64> {
    let mut now = 0u64;
    let mut sent = Vec::new();
    while sent.len() < frames {
        match s.ingress(port, &hdr(BROADCAST, A), len, now).unwrap() {
            Forward::Later(at) => {
                assert!(at > now, "a retry time in the future");
                now = at;
            }
            Forward::Flood => sent.push(now),
            other => panic!("{other:?}"),
        }
    }
    sent
}

#[test]
fn rate_credit_delays_a_burst_and_holds_the_long_run_rate() {
    // rate=10Mb/s@20ms: 25000 bytes per 20 ms.
    let rate = Rate {
        bytes: 25_000,
        interval_ns: 20 * MS,
    };
    let mut s = Switch::new(SwitchConfig::default());
    let a = s
        .add_port(PortConfig {
            rate: Some(rate),
            ..vif(A)
        })
        .unwrap();
    let times = send_all(&mut s, a, 2000, 1514);
    // The burst: what one interval's credit covers goes at once (the last
    // frame into debt), the next waits for the refill.
    let at_once = times.iter().filter(|&&t| t == 0).count();
    assert_eq!(at_once, 17);
    assert_eq!(times[at_once], 20 * MS);
    let st = s.port_stats(a).unwrap();
    assert_eq!(st.frames_in, 2000);
    assert!(st.rate_delayed > 0);
    // Long run: bytes over the time they took, against the limit.
    let check = |times: &[u64], len: usize, rate: Rate| {
        let elapsed = *times.last().unwrap() as f64;
        let bytes = ((times.len() - 1) * len) as f64;
        let limit = rate.bytes as f64 / rate.interval_ns as f64;
        let ratio = bytes / elapsed / limit;
        assert!((0.9..=1.1).contains(&ratio), "rate {ratio} of the limit");
        // Never more than the limit plus one interval's credit plus a frame.
        for (i, &t) in times.iter().enumerate() {
            let allowed = rate.bytes * (t / rate.interval_ns + 1) + len as u64;
            assert!((i as u64 + 1) * len as u64 <= allowed, "frame {i} at {t}");
        }
    };
    check(&times, 1514, rate);
    // Frames larger than the whole credit per interval still go, and the
    // long-run rate holds too.
    let small = Rate {
        bytes: 1000,
        interval_ns: MS,
    };
    let mut s = Switch::new(SwitchConfig::default());
    let a = s
        .add_port(PortConfig {
            rate: Some(small),
            ..vif(A)
        })
        .unwrap();
    let times = send_all(&mut s, a, 500, MAX_FRAME);
    check(&times, MAX_FRAME, small);
    // After a pause the credit is full again, but no more than full.
    let later = times.last().unwrap() + 1000 * MS;
    let mut burst = 0;
    while let Forward::Flood = s.ingress(a, &hdr(BROADCAST, A), 100, later).unwrap() {
        burst += 1;
    }
    assert_eq!(burst, 10);
}

#[test]
fn dropped_frames_spend_no_credit() {
    let mut s = Switch::new(SwitchConfig::default());
    let a = s
        .add_port(PortConfig {
            rate: Some(Rate {
                bytes: 1000,
                interval_ns: MS,
            }),
            ..vif(A)
        })
        .unwrap();
    for _ in 0..100 {
        let r = s.ingress(a, &hdr(BROADCAST, B), 1000, 0).unwrap();
        assert_eq!(r, Forward::Drop(DropReason::SpoofedMac));
    }
    assert_eq!(
        s.ingress(a, &hdr(BROADCAST, A), 1000, 0).unwrap(),
        Forward::Flood
    );
    assert_eq!(
        s.ingress(a, &hdr(BROADCAST, A), 1000, 0).unwrap(),
        Forward::Later(MS)
    );
    assert_eq!(s.port_stats(a).unwrap().rate_delayed, 1);
}
