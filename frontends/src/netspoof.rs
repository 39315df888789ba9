//! `workload=netspoof peer=A.B.C.D`: a guest that forges what it sends,
//! so that tests can check that Domain-0's switch and the host model
//! police its vif (a frame whose source MAC is not the vif's `mac` is
//! dropped; with `ip=`, so are IPv4 sources and ARP senders outside it).
//!
//! It writes the frames straight into its network driver, bypassing the
//! stack, `count=` of each kind (default [`DEFAULT_BURST`]):
//!
//! 1. ICMP echo requests to the peer from its own address, with the
//!    peer's MAC address (learned with an ARP request first; a made-up
//!    one if the peer does not answer) as the Ethernet source, broadcast;
//!    answers are counted (a reply comes back to the guest's real MAC if
//!    a forged frame got through);
//! 2. ICMP echo requests to the peer from its own MAC but a source
//!    address outside its own network (192.0.2.66, or 198.51.100.66 if
//!    that one is inside);
//! 3. gratuitous ARP replies from its own MAC claiming the peer's
//!    address, broadcast;
//!
//! then [`CONTROL_PINGS`] ordinary pings from its real address, counted
//! (after an uncounted one, [`netbench::warm_up`]), so that a test can
//! tell policing from a dead link, and keeps serving like `idle`. The
//! console shows, in order:
//!
//! ```text
//! netspoof: peer 10.0.0.3 is at 00:16:3e:00:00:03
//! netspoof: sent 100 frames with a forged source MAC (00:16:3e:00:00:03), 0 answered
//! netspoof: sent 100 frames with a forged source IP (192.0.2.66, outside 10.0.0.0/24)
//! netspoof: sent 100 gratuitous ARP replies claiming 10.0.0.3
//! netspoof: control: 10 pings from 10.0.0.20 to 10.0.0.3, 10 answered
//! netspoof: done; serving
//! ```
//!
//! (the first line is `netspoof: peer 10.0.0.3 did not answer ARP;
//! forging 02:00:5e:00:53:01` when the peer is silent). Whether the
//! forged frames were dropped is for the host to say: `hypd` logs each
//! vif's drops by reason when the vif goes away. The switch compares ARP
//! senders with the vif's `ip=` as given (a single address when it has
//! no prefix), so the ARP replies are dropped only when the peer's
//! address lies outside it.

use guest_runtime::time;
use smoltcp::socket::icmp;
use smoltcp::wire::{IpAddress, Ipv4Address};

use crate::cmdline::Args;
use crate::net::frames::{Frame, MacText, BROADCAST};
use crate::net::{self, Stack};
use crate::netbench::{self, deadline, until};
use crate::out::Out;
use crate::outln;

/// Frames of each forged kind when `count=` gives none.
pub const DEFAULT_BURST: u32 = 100;
/// Legitimate pings sent after the forged frames.
pub const CONTROL_PINGS: u32 = 10;
/// Tries of the ARP request that learns the peer's MAC.
const ARP_TRIES: u32 = 3;
/// Longest wait for one transmit buffer.
const SEND_TIMEOUT_NS: u64 = 5_000_000_000;
/// How long answers to the forged requests are waited for.
const ANSWER_WAIT_NS: u64 = 500_000_000;
/// The MAC forged when the peer's is unknown (locally administered).
const MADE_UP_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x53, 0x01];
/// Forged source addresses (TEST-NET-1, TEST-NET-2): the first outside
/// the guest's own network is used.
const FORGED_IPS: [[u8; 4]; 2] = [[192, 0, 2, 66], [198, 51, 100, 66]];

/// Runs the workload, then serves until shut down.
pub fn run(args: &Args) -> ! {
    let mut out = Out::open();
    match args.peer {
        None => outln!(out, "netspoof: no peer= given; serving only"),
        Some(peer) => {
            let count = args.count.unwrap_or(DEFAULT_BURST);
            if net::with(|stack| spoof(&mut out, stack, peer, count)).is_none() {
                outln!(out, "netspoof: no network device; nothing to send");
            }
        }
    }
    out.drain();
    crate::idle(args)
}

/// Every kind of forged frame, then the control pings.
fn spoof(out: &mut Out, stack: &mut Stack, peer: [u8; 4], count: u32) {
    let (own, mac) = (stack.network(), stack.mac());
    let peer_ip = Ipv4Address::from(peer);
    let peer_mac = stack.resolve(peer, ARP_TRIES);
    match peer_mac {
        Some(m) => outln!(out, "netspoof: peer {peer_ip} is at {}", MacText(m)),
        None => outln!(
            out,
            "netspoof: peer {peer_ip} did not answer ARP; forging {}",
            MacText(MADE_UP_MAC)
        ),
    }
    let forged_mac = peer_mac.unwrap_or(MADE_UP_MAC);
    let ident = time::rdtsc() as u16;
    let echo = |eth_src, eth_dst, ip_src, ident| {
        move |seq| Frame::Echo {
            eth_src,
            eth_dst,
            ip_src,
            ip_dst: peer,
            ident,
            seq,
        }
    };
    let answers = netbench::icmp_socket(stack, ident).ok();
    let sent = burst(stack, count, echo(forged_mac, BROADCAST, own.addr, ident));
    let answered = answers.map_or(0, |handle| count_answers(stack, handle, ident));
    outln!(
        out,
        "netspoof: sent {sent} frames with a forged source MAC ({}), {answered} answered",
        MacText(forged_mac)
    );
    let forged_ip = FORGED_IPS
        .into_iter()
        .find(|ip| !own.contains(*ip))
        .unwrap_or(FORGED_IPS[0]);
    let to = peer_mac.unwrap_or(BROADCAST);
    let sent = burst(stack, count, echo(mac, to, forged_ip, ident ^ 1));
    outln!(
        out,
        "netspoof: sent {sent} frames with a forged source IP ({}, outside {own})",
        Ipv4Address::from(forged_ip)
    );
    let claim = |_| Frame::Arp {
        eth_src: mac,
        eth_dst: BROADCAST,
        reply: true,
        sender: (mac, peer),
        target: (BROADCAST, peer),
    };
    let sent = burst(stack, count, claim);
    outln!(
        out,
        "netspoof: sent {sent} gratuitous ARP replies claiming {peer_ip}"
    );
    let own_ip = Ipv4Address::from(own.addr);
    // The raw ARP above left smoltcp's neighbor cache empty.
    netbench::warm_up(stack, IpAddress::Ipv4(peer_ip));
    match netbench::ping(stack, IpAddress::Ipv4(peer_ip), CONTROL_PINGS) {
        Ok((answered, _, _)) => outln!(
            out,
            "netspoof: control: {CONTROL_PINGS} pings from {own_ip} to {peer_ip}, {} answered",
            answered.len()
        ),
        Err(e) => outln!(out, "netspoof: control: pings not sent: {e}"),
    }
    outln!(out, "netspoof: done; serving");
}

/// Sends the `count` frames `make(0)`, `make(1)`, ... straight through
/// the driver; returns how many were sent (fewer if the device stopped
/// taking them).
fn burst(stack: &mut Stack, count: u32, make: impl Fn(u16) -> Frame) -> u32 {
    let mut sent = 0;
    while sent < count {
        if !stack.send_raw(&make(sent as u16), deadline(SEND_TIMEOUT_NS)) {
            break;
        }
        sent += 1;
    }
    stack.net().flush();
    sent
}

/// Counts the echo replies of `ident` that reach the socket `handle`
/// within [`ANSWER_WAIT_NS`], then removes the socket.
fn count_answers(stack: &mut Stack, handle: smoltcp::iface::SocketHandle, ident: u16) -> u32 {
    let mut answered = 0;
    until(stack, deadline(ANSWER_WAIT_NS), |stack| {
        let s = stack.sockets().get_mut::<icmp::Socket>(handle);
        while let Ok((data, _)) = s.recv() {
            answered += u32::from(netbench::echo_reply_seq(data, ident).is_some());
        }
        None::<()>
    });
    stack.sockets().remove(handle);
    answered
}
