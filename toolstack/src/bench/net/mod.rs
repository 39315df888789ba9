//! The network part of `xl bench`: ping round trips, 1-byte TCP round
//! trips and a TCP stream each way ([`NET_WORKLOADS`]), on five paths
//! ([`sample::Path`]):
//!
//! * `native`: two host network stacks joined by a veth pair, no VM
//!   ([`native`] says why that is the fair baseline);
//! * `host`: two host-model guests, through their taps and the Linux
//!   bridge;
//! * `service-vm`: two service-VM guests, through Domain-0's switch (the
//!   frames never reach the host);
//! * `host-to-host` and `service-vm-to-host`: one guest of each placement
//!   and a server on the host's side of the bridge.
//!
//! Everything runs in network namespaces of the benchmark's own
//! ([`ns`]): [`NetEnv::new`] moves the process into a fresh one before
//! the core exists, makes the bridge there and gives it the host's
//! address; the native pair gets two more. The host's own interfaces are
//! never touched, and all of it goes with the process. Each guest run is
//! a client guest (`workload=net`) and, guest to guest, a serving peer of
//! the same placement ([`guest`]); the host side's servers are threads of
//! this process ([`server`]). Paths interleave over rounds, the first
//! path of each round moving on by one so that none always runs first.

mod guest;
mod http;
mod native;
mod ns;
mod parse;
pub mod plot;
mod sample;
mod server;
mod summary;

use hyp::Event;
use hypd::Machine;
use std::sync::mpsc::Receiver;

use guest::{Guests, BRIDGE, HOST_IP, PREFIX_LEN};
use native::Native;
use sample::Path;
use server::Server;
use summary::NetSamples;

pub use sample::{NetSelection, NetWorkload, NET_WORKLOADS};
pub use summary::{print, NetSummary};

/// The namespaces, the bridge and the servers, for every round.
pub struct NetEnv {
    /// The native pair.
    native: Native,
    /// The server on the bridge's host address.
    _host_server: Server,
}

impl NetEnv {
    /// Moves this process's main thread (and every thread it starts
    /// later) into a network namespace of its own, makes the bridge the
    /// guests join with the host's address on it, starts the host's
    /// server there and sets the native pair up. Call it on the main
    /// thread before the machine exists.
    pub fn new() -> Result<Self, String> {
        ns::unshare_net()?;
        hypd::devices::tap::ensure_bridge(BRIDGE).map_err(|e| e.to_string())?;
        ns::ip(&[
            "addr",
            "add",
            &format!("{HOST_IP}/{PREFIX_LEN}"),
            "dev",
            BRIDGE,
        ])?;
        let host_server = Server::start(HOST_IP)?;
        Ok(Self {
            native: Native::new()?,
            _host_server: host_server,
        })
    }

    /// Runs `rounds` rounds of every path on `machine` (`count` pings and
    /// round trips, streams of `mib` MiB) and summarizes the measurements
    /// `selected` (with their index in [`NET_WORKLOADS`]); `say` tells
    /// the progress.
    pub fn run(
        &self,
        machine: &Machine,
        events: &Receiver<Event>,
        (rounds, count, mib): (usize, u32, u64),
        selected: &[(usize, NetWorkload)],
        say: &dyn Fn(String),
    ) -> NetSummary {
        let mut guests = Guests::new(machine, events, count, mib);
        let mut samples: NetSamples = Default::default();
        for round in 0..rounds {
            say(format!("xl bench: network round {} of {rounds}", round + 1));
            for k in 0..Path::ALL.len() {
                let at = (round + k) % Path::ALL.len();
                let run = match Path::ALL[at] {
                    Path::Native => self.native.run(count, mib << 20),
                    path => guests.run(path),
                };
                samples[at].push(run);
            }
        }
        summary::summarize(selected, &samples, count, mib)
    }
}
