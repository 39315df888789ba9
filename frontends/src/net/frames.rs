//! Frames built and read by hand, for the workloads that bypass the stack
//! and write straight into the driver's buffers (`netspoof`, `netflood`,
//! `nethostile`): ARP, ICMP echo requests and a filler, built with
//! smoltcp's wire types so that every header and checksum is right
//! except what a workload forges on purpose.

use core::fmt;

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
    ETHERNET_HEADER_LEN, IPV4_HEADER_LEN,
};

/// The broadcast MAC address.
pub const BROADCAST: [u8; 6] = [0xff; 6];
/// Ethertype of filler frames: IEEE 802's local experimental one, which
/// no stack takes in.
pub const ETHERTYPE_EXPERIMENTAL: u16 = 0x88B5;
/// Bytes of an ICMP echo header.
const ICMP_ECHO_HEADER: usize = 8;
/// Bytes of an echo request's payload (as `ping` sends).
const ECHO_PAYLOAD: usize = 56;
/// The smallest Ethernet frame without FCS: ARP packets are padded to it.
const MIN_ETHERNET: usize = 60;

/// A MAC address as `00:16:3e:00:00:02`.
pub struct MacText(pub [u8; 6]);

impl fmt::Display for MacText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// An IPv4 address with the prefix length of its network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Net {
    /// The address.
    pub addr: [u8; 4],
    /// Bits of the network part (0 to 32).
    pub prefix: u8,
}

impl Ipv4Net {
    /// The network's mask.
    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix.min(32)))
            .unwrap_or(0)
    }

    /// True if `ip` lies in the network.
    pub fn contains(&self, ip: [u8; 4]) -> bool {
        let mask = self.mask();
        u32::from_be_bytes(ip) & mask == u32::from_be_bytes(self.addr) & mask
    }
}

/// Shows the network itself: `10.0.0.0/24`.
impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let net = Ipv4Address::from(u32::from_be_bytes(self.addr) & self.mask());
        write!(f, "{net}/{}", self.prefix)
    }
}

/// One frame to build.
#[derive(Clone, Copy, Debug)]
pub enum Frame {
    /// An ARP packet for IPv4 over Ethernet.
    Arp {
        /// Ethernet source.
        eth_src: [u8; 6],
        /// Ethernet destination.
        eth_dst: [u8; 6],
        /// True for a reply, false for a request.
        reply: bool,
        /// Sender hardware and protocol addresses.
        sender: ([u8; 6], [u8; 4]),
        /// Target hardware and protocol addresses.
        target: ([u8; 6], [u8; 4]),
    },
    /// An ICMP echo request with 56 bytes of payload, as `ping` sends.
    Echo {
        /// Ethernet source.
        eth_src: [u8; 6],
        /// Ethernet destination.
        eth_dst: [u8; 6],
        /// IPv4 source.
        ip_src: [u8; 4],
        /// IPv4 destination.
        ip_dst: [u8; 4],
        /// Echo identifier.
        ident: u16,
        /// Echo sequence number.
        seq: u16,
    },
    /// `len` bytes of [`ETHERTYPE_EXPERIMENTAL`] frame whose payload
    /// starts with `seq`.
    Filler {
        /// Ethernet source.
        eth_src: [u8; 6],
        /// Ethernet destination.
        eth_dst: [u8; 6],
        /// Bytes of the whole frame (at least the Ethernet header and 8).
        len: usize,
        /// A sequence number.
        seq: u64,
    },
}

impl Frame {
    /// Bytes of the frame (without FCS).
    pub fn len(&self) -> usize {
        match *self {
            Self::Arp { .. } => MIN_ETHERNET,
            Self::Echo { .. } => {
                ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + ICMP_ECHO_HEADER + ECHO_PAYLOAD
            }
            Self::Filler { len, .. } => len.max(ETHERNET_HEADER_LEN + 8),
        }
    }

    /// Writes the frame into `buf`, which holds [`Frame::len`] bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        buf.fill(0);
        let (eth_src, eth_dst, ethertype) = match *self {
            Self::Arp {
                eth_src, eth_dst, ..
            } => (eth_src, eth_dst, EthernetProtocol::Arp),
            Self::Echo {
                eth_src, eth_dst, ..
            } => (eth_src, eth_dst, EthernetProtocol::Ipv4),
            Self::Filler {
                eth_src, eth_dst, ..
            } => (eth_src, eth_dst, ETHERTYPE_EXPERIMENTAL.into()),
        };
        let mut frame = EthernetFrame::new_unchecked(&mut *buf);
        EthernetRepr {
            src_addr: EthernetAddress(eth_src),
            dst_addr: EthernetAddress(eth_dst),
            ethertype,
        }
        .emit(&mut frame);
        let payload = frame.payload_mut();
        match *self {
            Self::Arp {
                reply,
                sender,
                target,
                ..
            } => ArpRepr::EthernetIpv4 {
                operation: if reply {
                    ArpOperation::Reply
                } else {
                    ArpOperation::Request
                },
                source_hardware_addr: EthernetAddress(sender.0),
                source_protocol_addr: Ipv4Address::from(sender.1),
                target_hardware_addr: EthernetAddress(target.0),
                target_protocol_addr: Ipv4Address::from(target.1),
            }
            .emit(&mut ArpPacket::new_unchecked(payload)),
            Self::Echo {
                ip_src,
                ip_dst,
                ident,
                seq,
                ..
            } => echo(payload, ip_src, ip_dst, ident, seq),
            Self::Filler { seq, .. } => payload[..8].copy_from_slice(&seq.to_be_bytes()),
        }
    }
}

/// Writes an IPv4 packet holding an ICMP echo request into `buf`.
fn echo(buf: &mut [u8], src: [u8; 4], dst: [u8; 4], ident: u16, seq_no: u16) {
    let caps = ChecksumCapabilities::default();
    let data = [0x5Au8; ECHO_PAYLOAD];
    let icmp = Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data: &data,
    };
    let mut packet = Ipv4Packet::new_unchecked(&mut *buf);
    Ipv4Repr {
        src_addr: Ipv4Address::from(src),
        dst_addr: Ipv4Address::from(dst),
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
    }
    .emit(&mut packet, &caps);
    icmp.emit(
        &mut Icmpv4Packet::new_unchecked(packet.payload_mut()),
        &caps,
    );
}

/// The sender's MAC address if `frame` is an ARP reply from `ip`.
pub fn arp_reply_from(frame: &[u8], ip: [u8; 4]) -> Option<[u8; 6]> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Arp {
        return None;
    }
    let arp = ArpPacket::new_checked(eth.payload()).ok()?;
    match ArpRepr::parse(&arp).ok()? {
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr,
            source_protocol_addr,
            ..
        } if source_protocol_addr.octets() == ip => Some(source_hardware_addr.0),
        _ => None,
    }
}
