//! Domain-0's learning L2 switch: one per bridge, a port per vif and one
//! for the uplink. Pure logic: it decides where a frame goes from its
//! [`FrameHeader`] ([`Switch::ingress`]); the placement does the copying,
//! one destination at a time as [`Switch::deliver`] calls it back, and the
//! switch counts what became of each copy (or the placement tells it:
//! [`Switch::delivered`], [`Switch::dropped`]).
//!
//! For each frame a port sends, [`Switch::ingress`] applies, in order:
//!
//! 1. **Anti-spoofing**, as Xen's vif scripts do it. A group (broadcast
//!    or multicast) source MAC is always dropped. A port with a `mac`
//!    drops frames from any other source. A port with an `ip` drops an
//!    IPv4 packet or ARP message whose sender (IPv4 source, ARP sender
//!    protocol address) lies outside it; the unspecified sender 0.0.0.0
//!    passes, since DHCP discovery and ARP probes use it before the guest
//!    has an address and it impersonates no one (Xen's scripts let DHCP
//!    through the same way). A frame whose ethertype says IPv4, ARP or a
//!    further 802.1Q tag but whose sender could not be read (truncated,
//!    or an ARP variant the parser does not take) cannot be checked and
//!    is dropped too. Other ethertypes (IPv6, ...) pass.
//! 2. **The rate limit** (`rate=`): a credit of [`Rate::bytes`] per
//!    [`Rate::interval_ns`], refilled at each interval's end and held to
//!    at most one interval's worth. A frame goes while some credit is left
//!    and may take it below zero; that debt is paid from the next
//!    intervals' credit. So a frame larger than the whole credit still
//!    goes (once the debt of the one before is paid), a burst exceeds one
//!    interval's credit by less than one frame, and the long-run rate is
//!    the limit whatever the frames' sizes. A frame that finds no credit
//!    is not dropped: the answer is [`Forward::Later`] with the time at
//!    which there will be some, and the placement leaves the frame's
//!    chain outstanding and asks again then, as Xen's netback holds a
//!    frame until the credit is replenished. Frames dropped in step 1 use
//!    no credit.
//! 3. **Forwarding.** The source MAC is learned on the ingress port (only
//!    from frames that are forwarded: a dropped frame teaches nothing). A
//!    group destination, or a unicast destination not learned (or whose
//!    entry is older than the ageing time, 300 s by default as in Linux
//!    bridges), is flooded to every port but the ingress one
//!    ([`Switch::deliver`] or [`Switch::flood_targets`], no allocation). A
//!    learned destination goes to its port, unless that is the ingress
//!    port (a hairpin): dropped. A MAC seen on another port moves there.
//!
//! The learning table is bounded ([`SwitchConfig::table_size`], 1024 by
//! default). When it is full, learning a new MAC evicts the entry seen
//! least recently (expired entries first, as they are the oldest; found by
//! a scan, only when the table is full), so stale entries never stop the
//! switch from learning the stations that are active; a MAC that cannot
//! stay learned is flooded to, which costs copies, not correctness.
//! Removing a port forgets every MAC learned on it.
//!
//! Times are nanoseconds on any monotonic clock of the placement's (the
//! TSC converted, a synthetic clock in tests); the switch keeps no clock.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use protocol::device::{Ipv4Cidr, NetParams};
use protocol::virtio::net::{
    is_group, FrameHeader, Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_VLAN,
};

/// Nanoseconds in a second.
const NS_PER_SEC: u64 = 1_000_000_000;

/// How long a learned MAC stays valid without being seen again: 300 s, as
/// Linux bridges age.
pub const DEFAULT_AGEING_NS: u64 = 300 * NS_PER_SEC;
/// Learned MACs held by default.
pub const DEFAULT_TABLE_SIZE: usize = 1024;
/// Ports a switch has by default.
pub const DEFAULT_MAX_PORTS: usize = 256;

/// How a switch is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// Most ports at once (at most 65536).
    pub max_ports: usize,
    /// Most learned MACs at once; 0 learns nothing (every unicast frame is
    /// flooded).
    pub table_size: usize,
    /// How long a learned MAC stays valid without being seen, in ns.
    pub ageing_ns: u64,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        Self {
            max_ports: DEFAULT_MAX_PORTS,
            table_size: DEFAULT_TABLE_SIZE,
            ageing_ns: DEFAULT_AGEING_NS,
        }
    }
}

/// A rate limit: `bytes` of credit per `interval_ns` (Xen's
/// `rate=10Mb/s@20ms` is 25000 bytes per 20 ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Bytes the port may send per interval (1 to `u32::MAX`).
    pub bytes: u64,
    /// The interval in nanoseconds (not 0).
    pub interval_ns: u64,
}

/// What a port polices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortConfig {
    /// Frames must come from this source MAC (a vif's `mac`); `None` for
    /// the uplink, whose side has many stations.
    pub mac: Option<Mac>,
    /// IPv4 sources and ARP senders must lie in this network (`ip=`).
    pub ip: Option<Ipv4Cidr>,
    /// The port's rate limit (`rate=`); `None` for none.
    pub rate: Option<Rate>,
}

impl PortConfig {
    /// The uplink's port: no anti-spoofing, no limit.
    pub fn uplink() -> Self {
        Self::default()
    }

    /// A vif's port, from what Domain-0 is told of it: its MAC, its `ip=`
    /// if one was given, its `rate=` if it is not 0.
    pub fn vif(params: &NetParams) -> Self {
        let rate = (params.rate_bytes != 0).then_some(Rate {
            bytes: u64::from(params.rate_bytes),
            interval_ns: u64::from(params.rate_interval_us) * 1000,
        });
        Self {
            mac: Some(params.mac),
            ip: params.ip.is_set().then_some(params.ip),
            rate,
        }
    }
}

/// A port of one switch. Ids are not reused: a removed port's id stays
/// unknown even when its slot serves a new port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId {
    slot: u16,
    generation: u32,
}

impl PortId {
    /// Below the switch's `max_ports`, and unique among its current ports:
    /// an index for the placement's own table of ports.
    pub fn slot(self) -> usize {
        usize::from(self.slot)
    }
}

/// Why the switch refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchError {
    /// Every port is in use.
    TooManyPorts,
    /// The port was removed, or belongs to another switch.
    NoSuchPort,
    /// A rate of 0 or more than `u32::MAX` bytes, or an interval of 0.
    BadRate,
    /// An `ip` with no address (prefix length 0).
    BadAddress,
}

/// Why a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Its source MAC is a group address.
    GroupSource,
    /// Its source MAC is not the port's.
    SpoofedMac,
    /// Its IPv4 source or ARP sender is outside the port's `ip`, or could
    /// not be read.
    SpoofedIp,
    /// Its destination was learned on the port it came from.
    Hairpin,
    /// The receiver had no (usable) receive buffer, or was not running
    /// (reported by the placement).
    NoBuffer,
    /// The frame was malformed (reported by the placement).
    Malformed,
}

/// Frames dropped, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// [`DropReason::GroupSource`].
    pub group_source: u64,
    /// [`DropReason::SpoofedMac`].
    pub spoofed_mac: u64,
    /// [`DropReason::SpoofedIp`].
    pub spoofed_ip: u64,
    /// [`DropReason::Hairpin`].
    pub hairpin: u64,
    /// [`DropReason::NoBuffer`].
    pub no_buffer: u64,
    /// [`DropReason::Malformed`].
    pub malformed: u64,
}

impl Drops {
    fn count(&mut self, reason: DropReason) {
        let n = match reason {
            DropReason::GroupSource => &mut self.group_source,
            DropReason::SpoofedMac => &mut self.spoofed_mac,
            DropReason::SpoofedIp => &mut self.spoofed_ip,
            DropReason::Hairpin => &mut self.hairpin,
            DropReason::NoBuffer => &mut self.no_buffer,
            DropReason::Malformed => &mut self.malformed,
        };
        *n += 1;
    }

    /// Every drop, whatever the reason.
    pub fn total(&self) -> u64 {
        self.group_source
            + self.spoofed_mac
            + self.spoofed_ip
            + self.hairpin
            + self.no_buffer
            + self.malformed
    }
}

/// Counters of one port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Frames the port sent that the switch decided on (forwarded or
    /// dropped; a frame told to come back later is counted when it does).
    pub frames_in: u64,
    /// Bytes of those frames.
    pub bytes_in: u64,
    /// Frames delivered to the port.
    pub frames_out: u64,
    /// Bytes of those frames.
    pub bytes_out: u64,
    /// Times a frame was held for want of credit ([`Forward::Later`]).
    pub rate_delayed: u64,
    /// Drops: on ingress for the port's own frames (spoofing, hairpin,
    /// malformed), on egress for frames it could not take (no buffer).
    pub drops: Drops,
}

impl core::fmt::Display for PortStats {
    /// The counters as both placements log them when a port goes.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let d = &self.drops;
        write!(
            f,
            "in {} frames ({} bytes), out {} frames ({} bytes), {} delayed by rate; dropped {}: {} spoofed MAC, {} spoofed IP, {} group source, {} hairpin, {} no buffer, {} malformed",
            self.frames_in,
            self.bytes_in,
            self.frames_out,
            self.bytes_out,
            self.rate_delayed,
            d.total(),
            d.spoofed_mac,
            d.spoofed_ip,
            d.group_source,
            d.hairpin,
            d.no_buffer,
            d.malformed
        )
    }
}

/// Where a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    /// To this port (a learned unicast destination).
    Port(PortId),
    /// To every port but the ingress one ([`Switch::flood_targets`]).
    Flood,
    /// Nowhere.
    Drop(DropReason),
    /// Not yet: the port's credit is spent. Ask again at this time (ns, on
    /// the clock `ingress` was given); the frame should stay with its
    /// sender meanwhile.
    Later(u64),
}

/// A port's credit for its rate limit.
#[derive(Clone, Copy, Debug)]
struct Credit {
    rate: Rate,
    /// Bytes the port may still send; negative (a debt) after a frame
    /// larger than what was left. At most `rate.bytes`.
    credit: i64,
    /// Start of the current interval, from the port's first frame on.
    window: Option<u64>,
}

impl Credit {
    fn new(rate: Rate) -> Self {
        Self {
            rate,
            // `rate.bytes` was checked to fit a u32.
            credit: rate.bytes as i64,
            window: None,
        }
    }

    /// Spends `len` bytes at `now`, or says when there will be credit.
    fn spend(&mut self, len: u64, now: u64) -> Result<(), u64> {
        let (bytes, interval) = (self.rate.bytes as i64, self.rate.interval_ns);
        let mut start = *self.window.get_or_insert(now);
        let elapsed = now.saturating_sub(start) / interval;
        if elapsed > 0 {
            let added = elapsed.min(u64::from(u32::MAX)) as i64 * bytes;
            self.credit = self.credit.saturating_add(added).min(bytes);
            start = start.saturating_add(elapsed.saturating_mul(interval));
            self.window = Some(start);
        }
        if self.credit > 0 {
            self.credit -= len.min(u64::from(u32::MAX)) as i64;
            return Ok(());
        }
        // The first interval end at which the debt is repaid.
        let intervals = (-self.credit) as u64 / self.rate.bytes + 1;
        Err(start.saturating_add(intervals.saturating_mul(interval)))
    }
}

#[derive(Debug)]
struct Port {
    id: PortId,
    config: PortConfig,
    credit: Option<Credit>,
    stats: PortStats,
}

/// One slot of the port table.
#[derive(Debug, Default)]
struct Slot {
    /// Generation of the next port in this slot.
    generation: u32,
    port: Option<Port>,
}

/// A learned MAC.
#[derive(Clone, Copy, Debug)]
struct Learned {
    port: PortId,
    seen_ns: u64,
}

/// A learning L2 switch.
#[derive(Debug)]
pub struct Switch {
    config: SwitchConfig,
    slots: Vec<Slot>,
    table: BTreeMap<Mac, Learned>,
}

/// Step 1 of [`Switch::ingress`]: the reason to drop the frame, if any.
fn police(config: &PortConfig, frame: &FrameHeader) -> Option<DropReason> {
    if is_group(&frame.src) {
        return Some(DropReason::GroupSource);
    }
    if config.mac.is_some_and(|mac| mac != frame.src) {
        return Some(DropReason::SpoofedMac);
    }
    let net = config.ip?;
    let allowed = match frame.ipv4_sender {
        Some(sender) => sender == [0; 4] || net.contains(sender),
        None => !matches!(
            frame.ethertype,
            ETHERTYPE_IPV4 | ETHERTYPE_ARP | ETHERTYPE_VLAN
        ),
    };
    (!allowed).then_some(DropReason::SpoofedIp)
}

impl Switch {
    /// A switch with no ports and nothing learned.
    pub fn new(config: SwitchConfig) -> Self {
        Self {
            config: SwitchConfig {
                max_ports: config.max_ports.min(usize::from(u16::MAX) + 1),
                ..config
            },
            slots: Vec::new(),
            table: BTreeMap::new(),
        }
    }

    /// Adds a port.
    pub fn add_port(&mut self, config: PortConfig) -> Result<PortId, SwitchError> {
        if let Some(rate) = config.rate {
            if rate.bytes == 0 || rate.bytes > u64::from(u32::MAX) || rate.interval_ns == 0 {
                return Err(SwitchError::BadRate);
            }
        }
        if config.ip.is_some_and(|ip| !ip.is_set()) {
            return Err(SwitchError::BadAddress);
        }
        let index = match self.slots.iter().position(|s| s.port.is_none()) {
            Some(i) => i,
            None if self.slots.len() < self.config.max_ports => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
            None => return Err(SwitchError::TooManyPorts),
        };
        let slot = &mut self.slots[index];
        let id = PortId {
            slot: index as u16,
            generation: slot.generation,
        };
        slot.port = Some(Port {
            id,
            config,
            credit: config.rate.map(Credit::new),
            stats: PortStats::default(),
        });
        Ok(id)
    }

    /// Removes a port, forgetting the MACs learned on it; returns its
    /// final counters.
    pub fn remove_port(&mut self, id: PortId) -> Result<PortStats, SwitchError> {
        self.port(id)?;
        let slot = &mut self.slots[id.slot()];
        slot.generation = slot.generation.wrapping_add(1);
        let port = slot.port.take().ok_or(SwitchError::NoSuchPort)?;
        self.table.retain(|_, e| e.port != id);
        Ok(port.stats)
    }

    /// The current ports, in slot order.
    pub fn ports(&self) -> impl Iterator<Item = PortId> + '_ {
        self.slots
            .iter()
            .filter_map(|s| s.port.as_ref().map(|p| p.id))
    }

    /// The ports a flooded frame from `from` goes to: every port but
    /// `from`.
    pub fn flood_targets(&self, from: PortId) -> impl Iterator<Item = PortId> + '_ {
        self.ports().filter(move |&id| id != from)
    }

    /// A port's counters.
    pub fn port_stats(&self, id: PortId) -> Result<PortStats, SwitchError> {
        self.port(id).map(|p| p.stats)
    }

    /// Decides where a frame of `len` bytes that `port` sent at `now_ns`
    /// goes (see the module documentation for the steps).
    pub fn ingress(
        &mut self,
        port: PortId,
        frame: &FrameHeader,
        len: usize,
        now_ns: u64,
    ) -> Result<Forward, SwitchError> {
        let destination = if is_group(&frame.dst) {
            None
        } else {
            self.learned(&frame.dst, now_ns)
        };
        let p = self.port_mut(port)?;
        if let Some(reason) = police(&p.config, frame) {
            p.stats.frames_in += 1;
            p.stats.bytes_in += len as u64;
            p.stats.drops.count(reason);
            return Ok(Forward::Drop(reason));
        }
        if let Some(credit) = &mut p.credit {
            if let Err(at) = credit.spend(len as u64, now_ns) {
                p.stats.rate_delayed += 1;
                return Ok(Forward::Later(at));
            }
        }
        p.stats.frames_in += 1;
        p.stats.bytes_in += len as u64;
        let forward = match destination {
            Some(to) if to == port => Forward::Drop(DropReason::Hairpin),
            Some(to) => Forward::Port(to),
            None => Forward::Flood,
        };
        if let Forward::Drop(reason) = forward {
            p.stats.drops.count(reason);
        } else {
            self.learn(frame.src, port, now_ns);
        }
        Ok(forward)
    }

    /// Carries out `forward`, the decision on a frame of `len` bytes from
    /// `from`: calls `copy(to)` for each port it goes to (the learned
    /// port, or every port but `from` when flooding; none for a drop or a
    /// frame to send later), and counts each `Ok` as delivered, each
    /// `Err(reason)` as dropped at that port. Returns the number
    /// delivered. Allocates nothing, and `copy` may use everything but the
    /// switch.
    pub fn deliver(
        &mut self,
        from: PortId,
        forward: Forward,
        len: usize,
        mut copy: impl FnMut(PortId) -> Result<(), DropReason>,
    ) -> usize {
        let mut delivered = 0;
        let mut send = |switch: &mut Self, to: PortId| match copy(to) {
            Ok(()) => {
                switch.delivered(to, len);
                delivered += 1;
            }
            Err(reason) => switch.dropped(to, reason),
        };
        match forward {
            Forward::Port(to) => send(self, to),
            Forward::Flood => {
                for slot in 0..self.slots.len() {
                    let to = self.slots[slot].port.as_ref().map(|p| p.id);
                    if let Some(to) = to.filter(|&to| to != from) {
                        send(self, to);
                    }
                }
            }
            Forward::Drop(_) | Forward::Later(_) => {}
        }
        delivered
    }

    /// The placement delivered a frame of `len` bytes to `port`. Unknown
    /// ports (removed meanwhile) are ignored.
    pub fn delivered(&mut self, port: PortId, len: usize) {
        if let Ok(p) = self.port_mut(port) {
            p.stats.frames_out += 1;
            p.stats.bytes_out += len as u64;
        }
    }

    /// The placement dropped a frame at `port` (for want of a receive
    /// buffer there, or malformed from it). Unknown ports are ignored.
    pub fn dropped(&mut self, port: PortId, reason: DropReason) {
        if let Ok(p) = self.port_mut(port) {
            p.stats.drops.count(reason);
        }
    }

    /// The port `mac` was learned on, if the entry is still valid at
    /// `now_ns`.
    pub fn learned(&self, mac: &Mac, now_ns: u64) -> Option<PortId> {
        self.table
            .get(mac)
            .filter(|e| now_ns.saturating_sub(e.seen_ns) < self.config.ageing_ns)
            .map(|e| e.port)
    }

    /// Entries in the learning table, expired ones not yet evicted
    /// included.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    fn learn(&mut self, mac: Mac, port: PortId, now_ns: u64) {
        if let Some(e) = self.table.get_mut(&mac) {
            *e = Learned {
                port,
                seen_ns: now_ns,
            };
            return;
        }
        if self.config.table_size == 0 {
            return;
        }
        if self.table.len() >= self.config.table_size {
            let oldest = self
                .table
                .iter()
                .min_by_key(|(_, e)| e.seen_ns)
                .map(|(mac, _)| *mac);
            if let Some(oldest) = oldest {
                self.table.remove(&oldest);
            }
        }
        self.table.insert(
            mac,
            Learned {
                port,
                seen_ns: now_ns,
            },
        );
    }

    fn port(&self, id: PortId) -> Result<&Port, SwitchError> {
        self.slots
            .get(id.slot())
            .and_then(|s| s.port.as_ref())
            .filter(|p| p.id == id)
            .ok_or(SwitchError::NoSuchPort)
    }

    fn port_mut(&mut self, id: PortId) -> Result<&mut Port, SwitchError> {
        self.slots
            .get_mut(id.slot())
            .and_then(|s| s.port.as_mut())
            .filter(|p| p.id == id)
            .ok_or(SwitchError::NoSuchPort)
    }
}
