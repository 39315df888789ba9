//! The guest paths: a client guest running `workload=net` toward a peer
//! (a second guest of the same placement, serving; or the host's
//! [`super::server::Server`] on the bridge), and the counts along its
//! path.
//!
//! The client measures, then keeps serving (it never powers off): a run
//! ends when its four checks and its closing `net: done` line are in;
//! then both guests are destroyed, client first, and their backends'
//! counts collected (the host model's just before, Domain-0's reports
//! and log lines as the devices go). Every wait is bounded, and a run
//! that fails says why, for its path and round only.

use hyp::{DomainConfig, Event};
use hypd::devices::NetBacking;
use hypd::{DeviceConfig, GuestConfig, Machine, Placement};
use protocol::device::Ipv4Cidr;
use protocol::domain::{DomId, DOM0};
use protocol::report::{BackendStats, Report};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::parse;
use super::sample::{Figure, NetRun, Path, PathCounters, NET_WORKLOADS};

/// The Linux bridge every guest's vif joins (in the benchmark's own
/// network namespace).
pub const BRIDGE: &str = "xlbench0";
/// The host's address on the bridge, where the guest-to-host runs' server
/// listens.
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 255, 254);
/// The bridge's network: 10.0.0.0/16.
pub const PREFIX_LEN: u8 = 16;
/// Guest RAM.
const GUEST_MIB: u64 = 32;
/// How long Domain-0 may take to report a removed device.
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a line may trail the report it goes with.
const LINE_GRACE: Duration = Duration::from_millis(500);

/// Runs guest paths on one machine.
pub struct Guests<'a> {
    /// The machine.
    machine: &'a Machine,
    /// Its events.
    events: &'a Receiver<Event>,
    /// Number of the next guest (its address and MAC).
    next: u16,
    /// Pings and round trips per run.
    count: u32,
    /// MiB per stream.
    mib: u64,
}

/// What the client's run gave.
#[derive(Default)]
struct Client {
    /// Each check's outcome and value, in [`NET_WORKLOADS`] order.
    checks: [Option<(bool, i64)>; 4],
    /// What each failed check said.
    details: [Option<String>; 4],
    /// The p99s of ping and round trips, µs.
    p99_us: [Option<f64>; 2],
    /// Frames it sent and received.
    frames: Option<f64>,
}

impl Client {
    /// Notes one of the client's events; `Err` if a guest ended.
    fn note(&mut self, event: Event, client: DomId, peer: Option<DomId>) -> Result<(), String> {
        match event {
            Event::Report { domid, bytes } if domid == client => {
                if let Some(Report::Check {
                    name,
                    passed,
                    value,
                }) = Report::decode(&bytes)
                {
                    if let Some(i) = NET_WORKLOADS.iter().position(|w| w.name == name.as_str()) {
                        self.checks[i] = Some((passed, value));
                    }
                }
            }
            Event::Console { domid, line } if domid == client => {
                let line = line.strip_prefix("frontends: ").unwrap_or(&line);
                if let Some((name, p99)) = parse::guest_p99(line) {
                    let i = usize::from(name != "net-ping");
                    self.p99_us[i] = Some(p99);
                } else if let Some(frames) = parse::guest_frames(line) {
                    self.frames = Some(frames);
                } else if let Some((name, detail)) = parse::failed_check(line) {
                    if let Some(i) = NET_WORKLOADS.iter().position(|w| w.name == name) {
                        self.details[i] = Some(detail.to_string());
                    }
                }
            }
            Event::State {
                domid,
                state,
                message,
            } if state.is_final() && (domid == client || Some(domid) == peer) => {
                let who = if domid == client { "client" } else { "peer" };
                return Err(format!(
                    "the {who} guest ended {state:?}{}",
                    message.map(|m| format!(": {m}")).unwrap_or_default()
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// True once every check is in.
    fn checked(&self) -> bool {
        self.checks.iter().all(Option::is_some)
    }

    /// The figures, or why each is missing.
    fn figures(&self) -> [Result<Figure, String>; 4] {
        std::array::from_fn(|i| match self.checks[i] {
            Some((true, value)) if NET_WORKLOADS[i].stream => Ok(Figure::Stream {
                gbit_s: value as f64 / 1e9,
            }),
            Some((true, value)) => Ok(Figure::Latency {
                median_us: value as f64 / 1e3,
                p99_us: self.p99_us[i],
            }),
            Some((false, _)) => Err(self.details[i]
                .clone()
                .unwrap_or_else(|| "the guest's check failed".into())),
            None => Err("the guest did not report it in time".into()),
        })
    }
}

/// What a guest's backend did, as the run needs it.
struct Removed {
    /// The backend's counts.
    stats: BackendStats,
    /// Frames Domain-0 delivered into the guest (from its log).
    delivered: Option<f64>,
}

/// Frames each interface received and sent, in this thread's namespace.
fn net_dev() -> HashMap<String, (u64, u64)> {
    std::fs::read_to_string("/proc/thread-self/net/dev")
        .map(|text| parse::net_dev(&text))
        .unwrap_or_default()
}

impl<'a> Guests<'a> {
    /// Guest paths on `machine`, with `count` pings and round trips and
    /// streams of `mib` MiB per run.
    pub fn new(machine: &'a Machine, events: &'a Receiver<Event>, count: u32, mib: u64) -> Self {
        Self {
            machine,
            events,
            next: 1,
            count,
            mib,
        }
    }

    /// One run of `path` (a guest path).
    pub fn run(&mut self, path: Path) -> NetRun {
        self.try_run(path).unwrap_or_else(|e| NetRun::failed(&e))
    }

    /// A guest named `role-N` with a vif on the bridge and `cmdline`; its
    /// id and address.
    fn create(
        &mut self,
        placement: Placement,
        role: &str,
        cmdline: &str,
    ) -> Result<(DomId, Ipv4Addr), String> {
        let n = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        let ip = Ipv4Addr::new(10, 0, (n / 250 % 250) as u8, (n % 250 + 1) as u8);
        let [hi, lo] = n.to_be_bytes();
        let vif = NetBacking {
            devid: 0,
            mac: [0x00, 0x16, 0x3e, 0x42, hi, lo],
            bridge: BRIDGE.into(),
            vifname: None,
            guest_ip: Some(Ipv4Cidr {
                addr: ip.octets(),
                prefix_len: PREFIX_LEN,
                _pad: [0; 3],
            }),
            allowed_ip: None,
            rate: None,
        };
        let name = format!("{role}-{n}");
        let mut domain = DomainConfig::new(&name, kernels::FRONTENDS.to_vec(), GUEST_MIB);
        domain.cmdline = format!("{cmdline} name={name}");
        let guest = GuestConfig {
            domain,
            devices: vec![DeviceConfig::net(vif), DeviceConfig::console()],
            placement,
        };
        let id = self
            .machine
            .create(guest)
            .map_err(|e| format!("creating a {} guest with a vif: {e}", placement.name()))?;
        Ok((id, ip))
    }

    /// The frames through the uplink tap of Domain-0's switch for the
    /// bridge, received and sent (0 before it exists).
    fn uplink_frames(&self) -> (u64, u64) {
        let tap = self
            .machine
            .dom0_switches()
            .into_iter()
            .find(|(bridge, _)| bridge == BRIDGE)
            .map(|(_, tap)| tap);
        tap.and_then(|t| net_dev().get(&t).copied())
            .unwrap_or_default()
    }

    /// Runs the client (and its peer guest, for guest to guest) and
    /// gathers what they and their path did.
    fn try_run(&mut self, path: Path) -> Result<NetRun, String> {
        let placement = match path {
            Path::Host | Path::HostToHost => Placement::Host,
            _ => Placement::ServiceVm,
        };
        let hv = self.machine.core();
        let exits = |id: DomId| {
            hv.domain(id).map_or(0.0, |d| {
                d.counters.user_exits.load(Ordering::Relaxed) as f64
            })
        };
        let uplink_before = self.uplink_frames();
        let dom0_before = exits(DOM0);
        let peer = match path {
            Path::Host | Path::ServiceVm => {
                Some(self.create(placement, "net-peer", "workload=idle")?)
            }
            _ => None,
        };
        let peer_id = peer.map(|(id, _)| id);
        let peer_ip = peer.map_or(HOST_IP, |(_, ip)| ip);
        let cmdline = format!(
            "workload=net peer={peer_ip} count={} net_mib={}",
            self.count, self.mib
        );
        let client_id = match self.create(placement, "net-client", &cmdline) {
            Ok((id, _)) => id,
            Err(e) => {
                if let Some(id) = peer_id {
                    let _ = self.machine.destroy(id);
                }
                return Err(e);
            }
        };
        let waited = self.wait_client(client_id, peer_id);
        let guests: Vec<DomId> = std::iter::once(client_id).chain(peer_id).collect();
        let guest_exits: f64 = guests.iter().map(|&id| exits(id)).sum();
        let dom0_exits = (exits(DOM0) - dom0_before).max(0.0);
        let dev = net_dev();
        let taps: f64 = guests
            .iter()
            .filter_map(|id| dev.get(&format!("vif{id}.0")))
            .map(|&(rx, tx)| (rx + tx) as f64)
            .sum();
        let uplink_after = self.uplink_frames();
        let mut removed = Vec::new();
        let mut failure = waited.as_ref().err().cloned();
        for &id in &guests {
            match self.remove(id) {
                Ok(r) => removed.push(r),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        let client = waited?;
        let counters = match (client.frames, failure) {
            (Some(frames), None) => {
                let uplink_rx = uplink_after.0.saturating_sub(uplink_before.0) as f64;
                let uplink = uplink_rx + uplink_after.1.saturating_sub(uplink_before.1) as f64;
                Some(PathCounters {
                    guest_exits,
                    dom0_exits,
                    ..counters(placement, frames, &removed, taps, uplink, uplink_rx)
                })
            }
            _ => None,
        };
        Ok(NetRun {
            figures: client.figures(),
            counters,
        })
    }

    /// Waits for the client's checks and closing line.
    fn wait_client(&self, client: DomId, peer: Option<DomId>) -> Result<Client, String> {
        let mut got = Client::default();
        // Boot and a warm-up of 3 s at worst, the round trips, then each
        // stream at 2 s a MiB at worst (the guest gives up on a stalled
        // one itself, after 120 s).
        let limit = Duration::from_secs(30 + 4 * self.mib);
        let deadline = Instant::now() + limit;
        let mut checked_at = None;
        loop {
            let now = Instant::now();
            if got.checked() {
                let at = *checked_at.get_or_insert(now);
                if got.frames.is_some() || now >= at + LINE_GRACE {
                    return Ok(got);
                }
            }
            if now >= deadline {
                return match got.checks.iter().any(Option::is_some) {
                    true => Ok(got),
                    false => Err(format!(
                        "the client guest reported nothing in {} s",
                        limit.as_secs()
                    )),
                };
            }
            let step = deadline.min(now + LINE_GRACE) - now;
            if let Ok(event) = self.events.recv_timeout(step) {
                got.note(event, client, peer)?;
            }
        }
    }

    /// Destroys guest `domid` and returns what its vif's backend did: the
    /// host model's counts read just before, Domain-0's from its report
    /// and log as the device goes.
    fn remove(&self, domid: DomId) -> Result<Removed, String> {
        let local = self
            .machine
            .host_model_stats(domid)
            .into_iter()
            .find(|s| s.vdev.as_str() == "eth0");
        self.machine.destroy(domid).map_err(|e| e.to_string())?;
        if let Some(stats) = local {
            return Ok(Removed {
                stats,
                delivered: None,
            });
        }
        let mut deadline = Instant::now() + REMOVAL_TIMEOUT;
        let (mut stats, mut delivered) = (None, None);
        loop {
            let now = Instant::now();
            if let Some(stats) = stats.filter(|_| delivered.is_some() || now >= deadline) {
                return Ok(Removed { stats, delivered });
            }
            if now >= deadline {
                return Err(format!("Domain-0 did not report the vif of domain {domid}"));
            }
            match self.events.recv_timeout(deadline - now) {
                Ok(Event::Console { domid: DOM0, line }) => {
                    delivered = delivered.or(parse::dom0_frames_received(&line, "eth0", domid));
                }
                Ok(Event::Report { domid: DOM0, bytes }) => {
                    if let Some(Report::BackendStats(s)) = Report::decode(&bytes) {
                        if s.domid == domid && s.vdev.as_str() == "eth0" && stats.is_none() {
                            stats = Some(s);
                            // Its line comes first; give a late one a moment.
                            deadline = deadline.min(Instant::now() + LINE_GRACE);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// The counts of a run whose client saw `frames`, from its backends'
/// (`removed`, client first), its taps' frames and its uplink's (`uplink`,
/// of which `uplink_rx` Domain-0 wrote).
fn counters(
    placement: Placement,
    frames: f64,
    removed: &[Removed],
    taps: f64,
    uplink: f64,
    uplink_rx: f64,
) -> PathCounters {
    let sum = |f: fn(&BackendStats) -> u64| removed.iter().map(|r| f(&r.stats) as f64).sum::<f64>();
    let common = PathCounters {
        frames,
        kicks: sum(|s| s.notifies),
        polled: sum(|s| s.polled),
        guest_interrupts: sum(|s| s.interrupts),
        ..PathCounters::default()
    };
    match placement {
        Placement::Host => PathCounters {
            backend_wakeups: sum(|s| s.wakeups),
            doorbells: Some(sum(|s| s.submits)),
            host_frames: taps,
            copies: Some(taps),
            ..common
        },
        Placement::ServiceVm => {
            // Domain-0's wake-ups and interrupts are its own over each
            // device's life: the last removed lived through the others.
            let last = removed.last().map(|r| r.stats).unwrap_or_default();
            let delivered: Option<f64> = removed.iter().map(|r| r.delivered).sum();
            PathCounters {
                dom0_interrupts: Some(last.backend_interrupts as f64),
                backend_wakeups: last.wakeups as f64,
                host_frames: uplink,
                copies: delivered.map(|d| d + uplink_rx),
                ..common
            }
        }
    }
}
