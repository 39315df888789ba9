//! `hypd`'s control plane: the Unix socket `xl` talks to, the toolstack's
//! records of each domain, console buffers, lifecycle policy and the
//! message log. It drives the core and device setup only through
//! [`crate::Machine`]'s public operations, like any other embedder.

mod console;
mod daemon;
mod error;
mod handlers;
mod lifecycle;
pub mod log;
mod network;
mod records;
mod server;
mod socket;

use crate::devices::DeviceError;
use crate::Machine;
use daemon::Daemon;
use hyp::DomainConfig;
use std::path::PathBuf;
use std::sync::Arc;

pub use socket::{bind, default_socket_path, SocketError};

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The core or Domain-0 could not be had.
    #[error(transparent)]
    Machine(#[from] DeviceError),
    /// A thread of the daemon could not start.
    #[error("starting a thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// How `hypd` is to run.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// Where to listen.
    pub socket: PathBuf,
    /// The Domain-0 kernel image.
    pub dom0_kernel: Vec<u8>,
    /// Domain-0's RAM in MiB.
    pub dom0_memory_mib: u64,
    /// RAM kept for the host, in MiB (domains get the rest).
    pub host_reserve_mib: u64,
    /// Who submits Domain-0's disk I/O ([`crate::DoorbellMode`]).
    pub doorbell: crate::DoorbellMode,
}

/// Boots Domain-0, then serves `xl` on the socket until Domain-0 stops.
pub fn run(
    listener: std::os::unix::net::UnixListener,
    options: DaemonOptions,
    log: log::MessageLog,
) -> Result<(), RunError> {
    let machine = Machine::new()?;
    machine
        .core()
        .set_host_reserve_mib(options.host_reserve_mib);
    machine.set_doorbell_mode(options.doorbell);
    let events = machine.core().subscribe();
    let daemon = Arc::new(Daemon {
        machine,
        records: records::Records::default(),
        consoles: console::Consoles::default(),
        log,
    });
    daemon.machine.boot_dom0(DomainConfig::new(
        "Domain-0",
        options.dom0_kernel,
        options.dom0_memory_mib,
    ))?;
    daemon.records.add_dom0();
    tracing::info!("hypd listening on {}", options.socket.display());
    let watcher = {
        let daemon = Arc::clone(&daemon);
        std::thread::Builder::new()
            .name("lifecycle".into())
            .spawn(move || lifecycle::watch(&daemon, events))?
    };
    let accept = {
        let daemon = Arc::clone(&daemon);
        std::thread::Builder::new()
            .name("accept".into())
            .spawn(move || server::accept(&listener, &daemon))?
    };
    // The lifecycle watcher returns when Domain-0 has stopped.
    let _ = watcher.join();
    drop(accept);
    let _ = std::fs::remove_file(&options.socket);
    tracing::info!("Domain-0 stopped; hypd exits");
    Ok(())
}
