//! One interface: a network device, smoltcp's interface on it, its
//! sockets and the services ([`Stack`]), and waiting on several of them
//! at once.

use alloc::string::String;
use core::fmt::Write;

use guest_runtime::time;
use protocol::device::GuestDevice;
use protocol::virtio::net::is_group;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpCidr, IpEndpoint, Ipv4Address};

use super::{frames, http, services};
use crate::virtio::net::{Net, NetCounters, NetError, NetInfo};
use crate::virtio::wait::{AdaptivePoll, Waitable};

/// Interface polls per [`Stack::poll`] while the services keep queueing.
const MAX_ROUNDS: usize = 4;
/// First local port of outgoing connections.
const EPHEMERAL_BASE: u16 = 49152;

/// What every stack of this guest is opened with.
#[derive(Clone, Copy)]
pub struct Guest {
    /// This domain's id.
    pub domid: u16,
    /// Its name, as the core gave it at creation (may be empty).
    pub name: &'static str,
    /// Longest adaptive spin of a wait, in nanoseconds.
    pub spin_max_ns: u64,
}

/// Who this guest is on one interface, for the status page.
pub(super) struct Identity {
    /// This domain's id.
    domid: u16,
    /// Its name (may be empty).
    name: &'static str,
    /// The interface's address and prefix length.
    pub(super) ipv4: ([u8; 4], u8),
    /// True if the address is the default one.
    default_ipv4: bool,
    /// TSC when the stack came up.
    up_since: u64,
}

/// The interface, its device and sockets, and the services.
pub struct Stack {
    /// The device table's entry.
    pub(super) dev: GuestDevice,
    /// The device.
    pub(super) net: Net,
    /// smoltcp's interface on it.
    iface: Interface,
    /// The services' sockets and any a workload adds.
    sockets: SocketSet<'static>,
    /// The services' state.
    services: services::Services,
    /// The adaptive spin of [`Stack::wait`].
    pub(super) poll: AdaptivePoll,
    /// TSC at which the stack's next timer is due (`u64::MAX`: none).
    pub(super) next_poll: u64,
    /// Who this guest is, for the status page.
    pub(super) id: Identity,
    /// Local port of the next outgoing connection.
    next_port: u16,
}

/// smoltcp's clock: the TSC in microseconds.
fn now() -> Instant {
    Instant::from_micros((time::ticks_to_ns(time::rdtsc()) / 1000) as i64)
}

/// The TSC value at `at`.
fn to_tsc(at: Instant) -> u64 {
    time::ns_to_ticks(at.total_micros().max(0) as u64 * 1000)
}

/// The address taken when the device table gives none (see the module
/// documentation).
fn default_ipv4(domid: u16) -> [u8; 4] {
    [
        169,
        254,
        1 + (domid / 254 % 254) as u8,
        1 + (domid % 254) as u8,
    ]
}

impl Stack {
    /// Brings up the device `dev` and the stack on it.
    pub(super) fn open(dev: &GuestDevice, guest: Guest) -> Result<Self, NetError> {
        let Guest {
            domid,
            name,
            spin_max_ns,
        } = guest;
        // Sockets first: the device, once live, writes into its buffers
        // until it is reset, so nothing may fail after it is up.
        let mut sockets = SocketSet::new(alloc::vec::Vec::new());
        let services = services::Services::new(&mut sockets)?;
        let [hi, lo] = domid.to_be_bytes();
        let fallback_mac = [0x02, 0x16, 0x3e, 0, hi, lo];
        let mut net = Net::open(dev, fallback_mac)?;
        let (ipv4, default_ipv4) = if dev.ipv4.is_set() {
            ((dev.ipv4.addr, dev.ipv4.prefix_len.min(32)), false)
        } else {
            ((default_ipv4(domid), 16), true)
        };
        // smoltcp refuses a group address as its own.
        let mac = Some(net.info().mac).filter(|m| !is_group(m));
        let mut config = Config::new(EthernetAddress(mac.unwrap_or(fallback_mac)).into());
        config.random_seed = time::rdtsc();
        let mut iface = Interface::new(config, &mut net, now());
        let [a, b, c, d] = ipv4.0;
        iface.update_ip_addrs(|addrs| {
            // The list holds two addresses and starts empty.
            let _ = addrs.push(IpCidr::new(Ipv4Address::new(a, b, c, d).into(), ipv4.1));
        });
        Ok(Self {
            dev: *dev,
            net,
            iface,
            sockets,
            services,
            poll: AdaptivePoll::new(spin_max_ns),
            next_poll: 0,
            id: Identity {
                domid,
                name,
                ipv4,
                default_ipv4,
                up_since: time::rdtsc(),
            },
            next_port: EPHEMERAL_BASE,
        })
    }

    /// True if a poll has work: a frame or awaited buffers came, or a
    /// timer is due (timers wait while the transmit queue is full).
    fn due(&self) -> bool {
        self.net.pending() || (!self.net.starved() && time::rdtsc() >= self.next_poll)
    }

    /// Polls the stack if it has work (cheap when it has none). A
    /// workload that drives the device itself keeps the services
    /// answering this way.
    pub fn poll_if_due(&mut self) {
        if self.due() {
            self.poll();
        }
    }

    /// Polls the stack if it has work, then asks the device for an
    /// interrupt when a frame comes. Returns the TSC by which a sleep must
    /// end: now if work is already there, the stack's next timer
    /// otherwise (`u64::MAX` while the transmit queue is full: only
    /// returned buffers help then).
    pub(super) fn before_sleep(&mut self) -> u64 {
        self.poll_if_due();
        if self.net.arm() {
            time::rdtsc()
        } else if self.net.starved() {
            u64::MAX
        } else {
            // Never 0, which would mean no deadline.
            self.next_poll.max(1)
        }
    }

    /// Takes in every frame that came, runs the services, sends what they
    /// and the stack queued, and notes when the stack's next timer is due.
    pub fn poll(&mut self) {
        self.net.disarm();
        for _ in 0..MAX_ROUNDS {
            self.iface.poll(now(), &mut self.net, &mut self.sockets);
            let status = status(&self.net, &self.id);
            if !self.services.run(&mut self.sockets, &status) {
                break;
            }
        }
        self.net.flush();
        self.note_next_timer();
    }

    /// Notes when the stack's next timer is due (now, if a socket has
    /// something to send).
    fn note_next_timer(&mut self) {
        self.next_poll = self
            .iface
            .poll_at(now(), &self.sockets)
            .map_or(u64::MAX, to_tsc);
    }

    /// Waits (adaptive spin, then sleep) until the stack has work or the
    /// TSC reaches `deadline` (`u64::MAX`: none).
    pub fn wait(&mut self, deadline: u64) {
        wait_all(core::slice::from_mut(self), deadline);
    }

    /// The sockets, to add a client's, use and remove it.
    pub fn sockets(&mut self) -> &mut SocketSet<'static> {
        &mut self.sockets
    }

    /// Connects the TCP socket `handle` to `remote` from a fresh local
    /// port.
    pub fn connect(
        &mut self,
        handle: SocketHandle,
        remote: IpEndpoint,
    ) -> Result<(), tcp::ConnectError> {
        let port = self.next_port;
        self.next_port = self.next_port.checked_add(1).unwrap_or(EPHEMERAL_BASE);
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        socket.connect(self.iface.context(), remote, port)
    }

    /// What the device offers.
    pub fn info(&self) -> NetInfo {
        self.net.info()
    }

    /// What went through the device.
    pub fn counters(&self) -> NetCounters {
        self.net.counters()
    }

    /// The interface's address and the prefix length of its network.
    pub fn network(&self) -> frames::Ipv4Net {
        let (addr, prefix) = self.id.ipv4;
        frames::Ipv4Net { addr, prefix }
    }

    /// MAC and address, as the console lines show them:
    /// `mac 00:16:3e:00:00:02, ipv4 10.0.0.2/24` (with ` (default)` when
    /// the address is the default one).
    pub fn identity(&self) -> String {
        let mut text = String::with_capacity(64);
        let ([a, b, c, d], prefix) = self.id.ipv4;
        let _ = write!(
            text,
            "mac {}, ipv4 {a}.{b}.{c}.{d}/{prefix}{}",
            frames::MacText(self.info().mac),
            if self.id.default_ipv4 {
                " (default)"
            } else {
                ""
            }
        );
        text
    }

    /// The waits' counters.
    pub fn poll_stats(&self) -> AdaptivePoll {
        self.poll
    }
}

/// The status page's figures.
fn status<'a>(net: &Net, id: &'a Identity) -> http::Status<'a> {
    let c = net.counters();
    let info = net.info();
    http::Status {
        domid: id.domid,
        name: id.name,
        uptime_ms: time::ticks_to_ns(time::rdtsc().saturating_sub(id.up_since)) / 1_000_000,
        ipv4: id.ipv4,
        default_ipv4: id.default_ipv4,
        mac: info.mac,
        mtu: info.mtu,
        rx_frames: c.rx_frames,
        rx_bytes: c.rx_bytes,
        tx_frames: c.tx_frames,
        tx_bytes: c.tx_bytes,
        rx_dropped: c.rx_dropped,
        http_requests: 0,
    }
}

/// Waits (adaptive spin, then sleep) until one of `stacks` has work or
/// the TSC reaches `deadline` (`u64::MAX`: none); the first stack's
/// adaptive spin is the one used and counted.
pub(super) fn wait_all(stacks: &mut [Stack], deadline: u64) {
    let mut until = deadline;
    for s in stacks.iter_mut() {
        // The caller may have queued data since the last poll.
        s.note_next_timer();
        if !s.net.starved() {
            until = until.min(s.next_poll);
        }
    }
    let Some(first) = stacks.first() else {
        return;
    };
    let (port, mut poll) = (first.net.irq_port(), first.poll);
    poll.wait_on(&mut Devices(stacks), port, until);
    stacks[0].poll = poll;
}

/// The devices of several stacks, waited on together.
struct Devices<'a>(&'a mut [Stack]);

impl Waitable for Devices<'_> {
    fn ready(&self) -> bool {
        self.0.iter().any(|s| s.net.pending())
    }

    fn arm(&mut self) -> bool {
        // Every device is armed, even once one has work.
        self.0.iter_mut().fold(false, |any, s| s.net.arm() | any)
    }

    fn disarm(&mut self) {
        self.0.iter_mut().for_each(|s| s.net.disarm());
    }
}
