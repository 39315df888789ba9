//! virtio-net (virtio 1.2, section 5.1), and the Ethernet, ARP and IPv4
//! fields the backends look at to switch and police frames.
//!
//! Without `VIRTIO_NET_F_MQ` the device has one queue pair: [`RECEIVEQ`]
//! carries frames from the device to the driver (the driver posts
//! device-writable buffers), [`TRANSMITQ`] frames from the driver to the
//! device. Every buffer starts with a [`NetHeader`] of [`HEADER_SIZE`]
//! bytes (in virtio 1.x the header always has `num_buffers`), then one
//! Ethernet frame without its FCS.
//!
//! What this project's device offers, and why: [`VIRTIO_NET_F_MAC`],
//! [`VIRTIO_NET_F_STATUS`] and [`VIRTIO_NET_F_MTU`], and no offloads (no
//! checksum, no segmentation, no mergeable receive buffers). Frames are at
//! most [`MAX_FRAME`] bytes, so the driver posts receive buffers of
//! [`RX_BUFFER_SIZE`] bytes, each holding one whole frame; every header the
//! device writes has `num_buffers` 1 and no flags. A switch that copies
//! each frame once does not gain from offloads it would have to undo for
//! the other ports.

/// Feature bit: the driver handles partial checksums.
pub const VIRTIO_NET_F_CSUM: u32 = 0;
/// Feature bit: the device handles partial checksums.
pub const VIRTIO_NET_F_GUEST_CSUM: u32 = 1;
/// Feature bit: `mtu` in the configuration is valid.
pub const VIRTIO_NET_F_MTU: u32 = 3;
/// Feature bit: `mac` in the configuration is valid.
pub const VIRTIO_NET_F_MAC: u32 = 5;
/// Feature bit: the driver can merge receive buffers.
pub const VIRTIO_NET_F_MRG_RXBUF: u32 = 15;
/// Feature bit: `status` in the configuration is valid.
pub const VIRTIO_NET_F_STATUS: u32 = 16;
/// Feature bit: a control queue exists.
pub const VIRTIO_NET_F_CTRL_VQ: u32 = 17;
/// Feature bit: several queue pairs.
pub const VIRTIO_NET_F_MQ: u32 = 22;

/// `status` bit: the link is up.
pub const VIRTIO_NET_S_LINK_UP: u16 = 1;
/// `status` bit: the driver should send a gratuitous ARP.
pub const VIRTIO_NET_S_ANNOUNCE: u16 = 2;

/// Queue index of the receive queue (device to driver).
pub const RECEIVEQ: u16 = 0;
/// Queue index of the transmit queue (driver to device).
pub const TRANSMITQ: u16 = 1;
/// Number of queues without `VIRTIO_NET_F_MQ` or `VIRTIO_NET_F_CTRL_VQ`.
pub const NUM_QUEUES: usize = 2;

/// The MTU the device reports: Ethernet's.
pub const MTU: u16 = 1500;
/// Bytes of an Ethernet header (destination, source, ethertype).
pub const ETH_HEADER: usize = 14;
/// Smallest frame a device accepts from a driver: an Ethernet header.
pub const MIN_FRAME: usize = ETH_HEADER;
/// Largest frame without FCS: the MTU, the Ethernet header and an 802.1Q
/// tag.
pub const MAX_FRAME: usize = MTU as usize + ETH_HEADER + 4;
/// The receive buffer a driver posts: a header and the largest frame.
pub const RX_BUFFER_SIZE: usize = HEADER_SIZE + MAX_FRAME;

/// The virtio-net configuration space, at [`super::mmio::CONFIG`] (the
/// fields up to `mtu`; the rest needs features not offered).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Config {
    /// The device's MAC address ([`VIRTIO_NET_F_MAC`]).
    pub mac: [u8; 6],
    /// `VIRTIO_NET_S_*` bits ([`VIRTIO_NET_F_STATUS`]).
    pub status: u16,
    /// Queue pairs (`VIRTIO_NET_F_MQ`); 1 otherwise.
    pub max_virtqueue_pairs: u16,
    /// The link's MTU ([`VIRTIO_NET_F_MTU`]).
    pub mtu: u16,
}

/// Bytes of [`Config`].
pub const CONFIG_SIZE: usize = 12;

impl Config {
    /// Encodes the configuration space as its little-endian bytes.
    pub fn to_bytes(&self) -> [u8; CONFIG_SIZE] {
        let mut b = [0u8; CONFIG_SIZE];
        b[0..6].copy_from_slice(&self.mac);
        b[6..8].copy_from_slice(&self.status.to_le_bytes());
        b[8..10].copy_from_slice(&self.max_virtqueue_pairs.to_le_bytes());
        b[10..12].copy_from_slice(&self.mtu.to_le_bytes());
        b
    }
}

/// `NetHeader::flags` bit: the checksum is partial
/// ([`VIRTIO_NET_F_CSUM`]).
pub const HDR_F_NEEDS_CSUM: u8 = 1;
/// `NetHeader::gso_type`: not a segmentation offload.
pub const HDR_GSO_NONE: u8 = 0;

/// The header before every frame in either queue (`virtio_net_hdr`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct NetHeader {
    /// `HDR_F_*` bits.
    pub flags: u8,
    /// `HDR_GSO_*` value.
    pub gso_type: u8,
    /// Bytes of headers to copy into each segment (GSO).
    pub hdr_len: u16,
    /// Bytes of payload per segment (GSO).
    pub gso_size: u16,
    /// Where checksumming starts ([`HDR_F_NEEDS_CSUM`]).
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`.
    pub csum_offset: u16,
    /// Buffers this frame spans ([`VIRTIO_NET_F_MRG_RXBUF`]); 1 otherwise.
    pub num_buffers: u16,
}

/// Bytes of a [`NetHeader`].
pub const HEADER_SIZE: usize = 12;

impl NetHeader {
    /// The header a device writes before a received frame when no offload
    /// was negotiated.
    pub const RECEIVED: NetHeader = NetHeader {
        flags: 0,
        gso_type: HDR_GSO_NONE,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
        num_buffers: 1,
    };

    /// Encodes the header as its little-endian bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b[10..12].copy_from_slice(&self.num_buffers.to_le_bytes());
        b
    }

    /// Decodes a header from its little-endian bytes.
    pub fn from_bytes(b: &[u8; HEADER_SIZE]) -> NetHeader {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        NetHeader {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
            num_buffers: u16_at(10),
        }
    }
}

/// An Ethernet (MAC) address.
pub type Mac = [u8; 6];

/// The broadcast address.
pub const BROADCAST: Mac = [0xff; 6];

/// True for a group (broadcast or multicast) address: the low bit of the
/// first octet.
pub const fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 == 1
}

/// Ethertype of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// Ethertype of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;

/// Bytes of a frame's start that [`FrameHeader::parse`] looks at: the
/// Ethernet header and the first 28 bytes after it (an ARP packet for
/// IPv4, or an IPv4 header's source address).
pub const INSPECT_BYTES: usize = ETH_HEADER + 28;

/// What the switch reads of a frame: addresses and, for IPv4 and ARP,
/// the sender's protocol address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Destination MAC.
    pub dst: Mac,
    /// Source MAC.
    pub src: Mac,
    /// Ethertype (after an 802.1Q tag, if there is one).
    pub ethertype: u16,
    /// The IPv4 source address (IPv4), or the ARP sender's protocol address
    /// (ARP for IPv4 over Ethernet); `None` for anything else or a frame
    /// too short to hold it.
    pub ipv4_sender: Option<[u8; 4]>,
}

impl FrameHeader {
    /// Parses the start of a frame (at most [`INSPECT_BYTES`] are read);
    /// `None` if it is shorter than an Ethernet header.
    pub fn parse(frame: &[u8]) -> Option<FrameHeader> {
        if frame.len() < ETH_HEADER {
            return None;
        }
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&frame[0..6]);
        src.copy_from_slice(&frame[6..12]);
        let mut ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let mut payload = ETH_HEADER;
        if ethertype == ETHERTYPE_VLAN && frame.len() >= ETH_HEADER + 4 {
            ethertype = u16::from_be_bytes([frame[16], frame[17]]);
            payload += 4;
        }
        let body = &frame[payload..];
        let ipv4_sender = match ethertype {
            // IPv4: version 4, source address at bytes 12..16.
            ETHERTYPE_IPV4 if body.len() >= 20 && body[0] >> 4 == 4 => {
                Some([body[12], body[13], body[14], body[15]])
            }
            // ARP: hardware Ethernet (1), protocol IPv4, lengths 6 and 4;
            // the sender's protocol address at bytes 14..18.
            ETHERTYPE_ARP
                if body.len() >= 28
                    && body[0..2] == [0, 1]
                    && body[2..4] == ETHERTYPE_IPV4.to_be_bytes()
                    && body[4] == 6
                    && body[5] == 4 =>
            {
                Some([body[14], body[15], body[16], body[17]])
            }
            _ => None,
        };
        Some(FrameHeader {
            dst,
            src,
            ethertype,
            ipv4_sender,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn wire_layouts() {
        assert_eq!(size_of::<Config>(), CONFIG_SIZE);
        assert_eq!(offset_of!(Config, mtu), 10);
        assert_eq!(size_of::<NetHeader>(), HEADER_SIZE);
        assert_eq!(offset_of!(NetHeader, num_buffers), 10);
        let h = NetHeader::RECEIVED;
        assert_eq!(NetHeader::from_bytes(&h.to_bytes()), h);
        assert_eq!(h.to_bytes()[10..12], [1, 0]);
        let c = Config {
            mac: [0, 0x16, 0x3e, 1, 2, 3],
            status: VIRTIO_NET_S_LINK_UP,
            max_virtqueue_pairs: 1,
            mtu: MTU,
        }
        .to_bytes();
        assert_eq!(c[6..], [1, 0, 1, 0, 0xdc, 0x05]);
        assert_eq!(RX_BUFFER_SIZE, 1530);
    }

    #[test]
    fn frame_headers_of_ipv4_arp_and_vlan() {
        let mut ip = [0u8; 34];
        ip[..6].copy_from_slice(&BROADCAST);
        ip[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        ip[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        ip[14] = 0x45;
        ip[26..30].copy_from_slice(&[10, 0, 0, 2]);
        let h = FrameHeader::parse(&ip).unwrap();
        assert_eq!(
            (h.ethertype, h.ipv4_sender),
            (ETHERTYPE_IPV4, Some([10, 0, 0, 2]))
        );
        assert!(is_group(&h.dst) && !is_group(&h.src));
        // Too short for the IPv4 header: no sender.
        assert_eq!(FrameHeader::parse(&ip[..30]).unwrap().ipv4_sender, None);

        let mut arp = [0u8; 42];
        arp[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        arp[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        arp[28..32].copy_from_slice(&[10, 0, 0, 9]);
        assert_eq!(
            FrameHeader::parse(&arp).unwrap().ipv4_sender,
            Some([10, 0, 0, 9])
        );

        let mut tagged = [0u8; 38];
        tagged[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
        tagged[16..18].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        tagged[18] = 0x45;
        tagged[30..34].copy_from_slice(&[10, 0, 0, 3]);
        let h = FrameHeader::parse(&tagged).unwrap();
        assert_eq!(h.ipv4_sender, Some([10, 0, 0, 3]));
        assert_eq!(FrameHeader::parse(&[0u8; 13]), None);
    }
}
