//! `hypd`: the core and its device setup as a daemon. Boots Domain-0,
//! then serves `xl` on a Unix socket until Domain-0 stops.

use clap::Parser;
use hypd::control::{self, log::MessageLog, DaemonOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The core of the hypervisor, as a daemon.
#[derive(Parser)]
#[command(name = "hypd", version)]
struct Options {
    /// Stay in the foreground and log to the terminal.
    #[arg(long, short = 'F')]
    foreground: bool,
    /// Control socket path [default: $HYPD_SOCKET, /run/hypd.sock for root].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Log file when running in the background.
    #[arg(long, default_value = "/var/log/hypd.log")]
    log_file: PathBuf,
    /// Domain-0 kernel [default: the service VM built with this binary].
    #[arg(long)]
    dom0_kernel: Option<PathBuf>,
    /// Domain-0 memory in MiB.
    #[arg(long, default_value_t = 64)]
    dom0_memory: u64,
    /// RAM kept for the host, in MiB: a create that would leave less is
    /// refused (every domain is counted at its full size).
    #[arg(long, default_value_t = hyp::host_memory::DEFAULT_HOST_RESERVE_MIB)]
    host_reserve_mib: u64,
    /// Who submits Domain-0's disk I/O when it rings a hardware queue:
    /// `exit` (Domain-0's own vCPU thread, on the exit of its write),
    /// `thread` (a doorbell thread woken by an ioeventfd) or `sqpoll` (a
    /// kernel thread polling the queues, woken when it sleeps).
    #[arg(long, default_value = "exit", value_parser = parse_doorbell)]
    doorbell: hypd::DoorbellMode,
}

fn parse_doorbell(name: &str) -> Result<hypd::DoorbellMode, String> {
    hypd::DoorbellMode::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = hypd::DoorbellMode::ALL.iter().map(|m| m.name()).collect();
        format!("unknown doorbell '{name}' (known: {})", known.join(", "))
    })
}

fn main() -> ExitCode {
    let options = Options::parse();
    let socket = options
        .socket
        .clone()
        .unwrap_or_else(control::default_socket_path);
    let dom0_kernel = match &options.dom0_kernel {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("hypd: Domain-0 kernel {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => kernels::SERVICE_VM.to_vec(),
    };
    // Bind before going to the background, so a live daemon or a bad path
    // is reported to whoever started us.
    let listener = match control::bind(&socket) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("hypd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let log_file = if options.foreground {
        None
    } else {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&options.log_file)
        {
            Ok(file) => Some(file),
            Err(e) => {
                eprintln!("hypd: log file {}: {e}", options.log_file.display());
                return ExitCode::FAILURE;
            }
        }
    };
    if !options.foreground {
        // No threads exist yet, so forking is safe.
        if let Err(e) = nix::unistd::daemon(false, false) {
            eprintln!("hypd: cannot go to the background: {e}");
            return ExitCode::FAILURE;
        }
    }
    let messages = MessageLog::default();
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("HYPD_LOG").unwrap_or_else(|_| "info".into());
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(messages.clone());
    match log_file {
        Some(file) => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(file)
                    .with_ansi(false),
            )
            .init(),
        None => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .init(),
    }
    let daemon = DaemonOptions {
        socket,
        dom0_kernel,
        dom0_memory_mib: options.dom0_memory,
        host_reserve_mib: options.host_reserve_mib,
        doorbell: options.doorbell,
    };
    match control::run(listener, daemon, messages) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("hypd: {e}");
            eprintln!("hypd: {e}");
            ExitCode::FAILURE
        }
    }
}
