//! `xl`: the command users drive the hypervisor with, named and shaped like
//! Xen's.

use clap::{Parser, Subcommand};
use protocol::control::{Request, Response, Trigger};
use std::path::PathBuf;
use std::process::ExitCode;
use toolstack::client::{daemon_running, Client, ClientError};
use toolstack::commands::{self, format};
use toolstack::{bench, demo, trace};

/// The toolstack of a split-privilege hypervisor on KVM, with Xen's xl commands.
#[derive(Parser)]
#[command(name = "xl", version)]
struct Cli {
    /// hypd's control socket [default: $HYPD_SOCKET, /run/hypd.sock for root].
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// How long to wait for hypd's reply, in seconds (not for `shutdown -w`
    /// or `console`).
    #[arg(long, global = true, default_value_t = 60)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a domain from an xl.cfg file.
    Create {
        /// Attach to the console after creating.
        #[arg(short = 'c')]
        console: bool,
        /// Leave the domain paused.
        #[arg(short = 'p')]
        paused: bool,
        /// Dry run: parse and print the configuration as JSON.
        #[arg(short = 'n')]
        dry_run: bool,
        /// Quiet.
        #[arg(short = 'q')]
        quiet: bool,
        /// The xl.cfg file.
        file: PathBuf,
        /// KEY=VALUE settings that override the file.
        overrides: Vec<String>,
    },
    /// List domains.
    List {
        /// Detailed JSON.
        #[arg(short = 'l')]
        long: bool,
        /// Add UUID and reason code.
        #[arg(short = 'v')]
        verbose: bool,
        /// Domains (all when none).
        domains: Vec<String>,
    },
    /// Destroy a domain at once.
    Destroy {
        /// The domain (name or id).
        domain: String,
    },
    /// Ask a domain to shut down.
    Shutdown {
        /// Wait for the domain to finish shutting down.
        #[arg(short = 'w')]
        wait: bool,
        /// All guests.
        #[arg(short = 'a')]
        all: bool,
        /// The domain (name or id).
        domain: Option<String>,
    },
    /// Ask a domain to reboot.
    Reboot {
        /// The domain (name or id).
        domain: String,
    },
    /// Send a domain an event: `nmi` (the kernel crashes, as Linux does
    /// with panic_on_unrecovered_nmi) or `reset` (it stops as crashed).
    /// Domain-0 restarts after either, under its running guests.
    Trigger {
        /// The domain (name or id).
        domain: String,
        /// nmi or reset (Xen's init, power, sleep and s3resume are not
        /// supported).
        trigger: String,
        /// The vCPU (an NMI always goes to vCPU 0).
        vcpu: Option<u8>,
    },
    /// Stop a domain's vCPUs.
    Pause {
        /// The domain (name or id).
        domain: String,
    },
    /// Resume a paused domain.
    Unpause {
        /// The domain (name or id).
        domain: String,
    },
    /// Attach to a domain's console (detach with Ctrl-]).
    Console {
        /// The domain (name or id).
        domain: String,
    },
    /// Host and hypervisor information.
    Info,
    /// The hypervisor's message log.
    Dmesg {
        /// Clear the log after printing it.
        #[arg(short = 'c')]
        clear: bool,
    },
    /// Domains' uptimes.
    Uptime {
        /// Domains (all when none).
        domains: Vec<String>,
    },
    /// The id of a domain named NAME.
    Domid {
        /// The name.
        name: String,
    },
    /// The name of domain ID.
    Domname {
        /// The id.
        id: u16,
    },
    /// Rename a domain.
    Rename {
        /// The domain (name or id).
        domain: String,
        /// Its new name.
        name: String,
    },
    /// List a domain's disks.
    BlockList {
        /// The domain (name or id).
        domain: String,
    },
    /// Give a running guest a disk.
    BlockAttach {
        /// The domain (name or id).
        domain: String,
        /// The disk specification (as in xl.cfg's `disk`), possibly in parts.
        #[arg(required = true)]
        spec: Vec<String>,
    },
    /// Take a disk away from a running guest.
    BlockDetach {
        /// The domain (name or id).
        domain: String,
        /// The virtual device (`xvdb`).
        vdev: String,
    },
    /// List a domain's network interfaces.
    NetworkList {
        /// The domains (names or ids).
        #[arg(required = true)]
        domains: Vec<String>,
    },
    /// Give a running guest a network interface.
    NetworkAttach {
        /// The domain (name or id).
        domain: String,
        /// The vif specification (as in xl.cfg's `vif`: `key=value`, one
        /// per argument or comma-joined); none gives every default.
        spec: Vec<String>,
    },
    /// Take a network interface away from a running guest.
    NetworkDetach {
        /// The domain (name or id).
        domain: String,
        /// The vif's device id or its MAC address.
        vif: String,
    },
    /// List vCPUs.
    VcpuList {
        /// Domains (all when none).
        domains: Vec<String>,
    },
    /// Trace a running guest's next requests on one disk through every
    /// party (guest, backend, core, host kernel): the median request's
    /// journey step by step, and every step's timing.
    Trace {
        /// The domain (name or id).
        domain: String,
        /// The virtual device (`xvdb`) [default: the guest's first disk].
        #[arg(long, value_name = "VDEV")]
        device: Option<String>,
        /// How many requests to trace (1 to 2000).
        #[arg(long, default_value_t = 1000)]
        requests: u32,
        /// Print the analysis as JSON.
        #[arg(long)]
        json: bool,
        /// Write the median request as swim lanes to an SVG file.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// How long to wait for the requests, in seconds (xl waits that
        /// long and a margin for hypd's reply).
        #[arg(long, value_name = "SECONDS", default_value_t = 10)]
        timeout: u64,
    },
    /// Boot Domain-0 and a guest in this process, time event-channel round
    /// trips between them, shut both down and report.
    Demo {
        /// Print a JSON summary on stdout (console output goes to stderr).
        #[arg(long)]
        json: bool,
        /// Number of event-channel round trips to time.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        round_trips: u32,
    },
    /// Measure block I/O and networking natively, through the host model
    /// and through the service VM, interleaved over rounds; print tables
    /// (or JSON) and optionally write a plot.
    Bench {
        /// Print a JSON summary on stdout (progress goes to stderr).
        #[arg(long)]
        json: bool,
        /// Write an SVG plot of latency distributions and throughput.
        #[arg(long, value_name = "FILE")]
        plot: Option<std::path::PathBuf>,
        /// Short runs and few rounds: done in well under a minute.
        #[arg(long)]
        quick: bool,
        /// Rounds of every workload in every placement.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=50))]
        rounds: Option<u64>,
        /// Length of each run in milliseconds.
        #[arg(long, value_parser = clap::value_parser!(u64).range(10..=60_000))]
        run_ms: Option<u64>,
        /// Directory for the disk image (its filesystem sets the cost of a flush).
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
        /// Only these workloads (comma-separated, e.g. randread-4k-qd1,net-ping;
        /// `block` and `net` name each group: net-ping, net-tcp-rr, net-tcp-rx,
        /// net-tcp-tx).
        #[arg(long, value_delimiter = ',')]
        workloads: Vec<String>,
        /// Pings and 1-byte TCP round trips per network run [default: 1000; 200 with --quick].
        #[arg(long, value_parser = clap::value_parser!(u32).range(10..=100_000))]
        net_count: Option<u32>,
        /// MiB each network stream carries [default: 32; 4 with --quick].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
        net_mib: Option<u64>,
        /// After the rounds, trace one more run of each block workload in
        /// each guest placement and show its path step by step.
        #[arg(long)]
        trace: bool,
        /// Open the image with O_DIRECT in every placement (Xen's
        /// direct-io-safe, QEMU's cache=none): put it on a real disk with
        /// --dir, not tmpfs.
        #[arg(long)]
        direct: bool,
    },
    /// Xen commands this hypervisor does not support yet.
    #[command(external_subcommand)]
    Other(Vec<String>),
}

/// Xen commands that exist in xl but not here yet, with the reason.
const NOT_YET: &[(&str, &str)] = &[
    (
        "block-list",
        "block devices arrive with the service-VM I/O path",
    ),
    (
        "block-attach",
        "block devices arrive with the service-VM I/O path",
    ),
    (
        "block-detach",
        "block devices arrive with the service-VM I/O path",
    ),
    ("mem-set", "memory ballooning is not implemented"),
    ("mem-max", "memory ballooning is not implemented"),
    ("vcpu-set", "vCPU hotplug is not implemented"),
    ("vcpu-pin", "vCPU pinning is not implemented"),
    ("save", "save/restore is not implemented"),
    ("restore", "save/restore is not implemented"),
    ("migrate", "migration is not implemented"),
    ("top", "use `xl list` and `xl vcpu-list`"),
];

fn socket(cli: &Option<PathBuf>) -> PathBuf {
    cli.clone()
        .unwrap_or_else(hypd::control::default_socket_path)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("XL_LOG")
                .unwrap_or_else(|_| "warn,console=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let socket = socket(&cli.socket);
    let timeout = std::time::Duration::from_secs(cli.timeout);
    match run(cli.command, &socket, timeout) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("xl: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one `xl` command. Long because it is the command table: one short
/// arm per command, kept in one place so every command's wiring (request,
/// reply, output format) reads side by side, as in Xen's `xl_cmdtable.c`.
fn run(
    command: Command,
    socket: &std::path::Path,
    timeout: std::time::Duration,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let connect = || Client::connect(socket).map(|c| c.with_reply_timeout(timeout));
    match command {
        Command::Create {
            console,
            paused,
            dry_run,
            quiet,
            file,
            overrides,
        } => {
            let parsed = commands::create::parse(&file, &overrides, quiet)?;
            let mut warnings = Vec::new();
            // With -c the domain starts paused and runs once the console is
            // attached, so its first lines are not lost (as Xen's xl does).
            let request =
                commands::create::request(&parsed.spec, paused || console, &mut warnings)?;
            warnings.iter().for_each(|w| eprintln!("warning: {w}"));
            if dry_run {
                // What hypd would refuse about the kernel, said now.
                let ram = parsed.spec.memory_mib.saturating_mul(1 << 20);
                hypd::files::open_kernel(&parsed.spec.kernel, ram)
                    .map_err(|e| format!("kernel {e}"))?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&parsed.spec).expect("spec serializes")
                );
                return Ok(ExitCode::SUCCESS);
            }
            let mut client = connect()?;
            let Response::Created(domid) = client.call(Request::Create(request))? else {
                return Err("unexpected reply from hypd".into());
            };
            if !quiet {
                eprintln!("Started domain {} (id={domid})", parsed.spec.name);
            }
            if console {
                commands::console::attach(connect()?, domid.to_string(), || {
                    if paused {
                        return Ok(());
                    }
                    commands::simple(&mut connect()?, Request::Unpause(domid.to_string()))
                })?;
            }
        }
        Command::List {
            long,
            verbose,
            domains,
        } => {
            let records = commands::records(&mut connect()?, domains)?;
            if long {
                println!("{}", commands::list_long(&records));
            } else {
                print!("{}", format::list(&records, verbose));
            }
        }
        Command::Destroy { domain } => commands::simple(&mut connect()?, Request::Destroy(domain))?,
        Command::Shutdown { wait, all, domain } => {
            let mut client = connect()?;
            let targets = match (all, domain) {
                (true, None) => commands::records(&mut client, Vec::new())?
                    .into_iter()
                    .filter(|r| r.domid != 0)
                    .map(|r| r.domid.to_string())
                    .collect(),
                (false, Some(domain)) => vec![domain],
                _ => return Err("give either a domain or -a".into()),
            };
            for domain in &targets {
                commands::simple(&mut client, Request::Shutdown(domain.clone()))?;
            }
            if wait {
                for domain in targets {
                    eprintln!("Waiting for domain {domain} to shut down");
                    commands::simple(&mut client, Request::Wait(domain))?;
                }
            }
        }
        Command::Reboot { domain } => commands::simple(&mut connect()?, Request::Reboot(domain))?,
        Command::Trigger {
            domain,
            trigger,
            vcpu,
        } => {
            let trigger = Trigger::from_name(&trigger)
                .ok_or_else(|| format!("trigger {trigger:?} is not supported (nmi or reset)"))?;
            if vcpu.is_some_and(|v| v != 0) {
                return Err("a trigger goes to vCPU 0".into());
            }
            commands::simple(&mut connect()?, Request::Trigger { domain, trigger })?
        }
        Command::Pause { domain } => commands::simple(&mut connect()?, Request::Pause(domain))?,
        Command::Unpause { domain } => commands::simple(&mut connect()?, Request::Unpause(domain))?,
        Command::Console { domain } => commands::console::attach(connect()?, domain, || Ok(()))?,
        Command::Info => match connect()?.call(Request::Info)? {
            Response::Info(pairs) => print!("{}", format::info(&pairs)),
            other => return Err(ClientError::unexpected(other).into()),
        },
        Command::Dmesg { clear } => match connect()?.call(Request::Dmesg { clear })? {
            Response::Dmesg(lines) => lines
                .iter()
                .for_each(|l| println!("{}", protocol::text::escape_controls(l))),
            other => return Err(ClientError::unexpected(other).into()),
        },
        Command::Uptime { domains } => print!(
            "{}",
            format::uptime(&commands::records(&mut connect()?, domains)?)
        ),
        Command::Domid { name } => {
            let record = commands::records(&mut connect()?, vec![name])?;
            println!("{}", record[0].domid);
        }
        Command::Domname { id } => {
            let record = commands::records(&mut connect()?, vec![id.to_string()])?;
            println!("{}", record[0].name);
        }
        Command::Rename { domain, name } => {
            commands::simple(&mut connect()?, Request::Rename { domain, name })?
        }
        Command::BlockList { domain } => match connect()?.call(Request::BlockList(domain))? {
            Response::Disks(disks) => print!("{}", format::disks(&disks)),
            other => return Err(ClientError::unexpected(other).into()),
        },
        Command::BlockAttach { domain, spec } => {
            let disk =
                toolstack::config::parse_disk_spec(&spec).map_err(|e| format!("disk spec: {e}"))?;
            let disk = protocol::control::DiskRequest {
                target: std::path::absolute(&disk.target)
                    .unwrap_or(disk.target)
                    .display()
                    .to_string(),
                vdev: disk.vdev,
                readonly: disk.access == toolstack::config::Access::ReadOnly,
                direct_io: disk.direct_io_safe,
            };
            commands::simple(&mut connect()?, Request::BlockAttach { domain, disk })?;
        }
        Command::BlockDetach { domain, vdev } => {
            commands::simple(&mut connect()?, Request::BlockDetach { domain, vdev })?;
        }
        Command::NetworkList { domains } => {
            let mut client = connect()?;
            let mut rows = Vec::new();
            for domain in domains {
                match client.call(Request::NetworkList(domain))? {
                    Response::Vifs(vifs) => rows.extend(vifs),
                    other => return Err(ClientError::unexpected(other).into()),
                }
            }
            print!("{}", format::vifs(&rows));
        }
        Command::NetworkAttach { domain, spec } => {
            let (vif, ignored) = toolstack::config::parse_vif_entry(&spec.join(","))
                .map_err(|e| format!("vif spec: {e}"))?;
            let mut warnings = ignored;
            let vif = commands::vif::request(&vif, 1, &mut warnings)?;
            warnings.iter().for_each(|w| eprintln!("warning: {w}"));
            commands::simple(&mut connect()?, Request::NetworkAttach { domain, vif })?;
        }
        Command::NetworkDetach { domain, vif } => {
            commands::simple(&mut connect()?, Request::NetworkDetach { domain, vif })?;
        }
        Command::VcpuList { domains } => match connect()?.call(Request::VcpuList(domains))? {
            Response::Vcpus(vcpus) => print!("{}", format::vcpus(&vcpus)),
            other => return Err(ClientError::unexpected(other).into()),
        },
        Command::Trace {
            domain,
            device,
            requests,
            json,
            svg,
            timeout: seconds,
        } => {
            let request = trace::request(domain, device, requests, seconds)?;
            let mut client =
                Client::connect(socket)?.with_reply_timeout(trace::reply_timeout(&request));
            let dump = match client.call(Request::Trace(request))? {
                Response::Trace(dump) => dump,
                other => return Err(ClientError::unexpected(other).into()),
            };
            let analysis = trace::analyse(&dump)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&analysis).expect("analysis serializes")
                );
            } else {
                print!("{analysis}");
            }
            if let Some(path) = svg {
                trace::write_svg(&analysis, &path)?;
                eprintln!("xl trace: picture written to {}", path.display());
            }
        }
        Command::Demo { json, round_trips } => return Ok(demo_command(json, round_trips, socket)),
        Command::Bench {
            json,
            plot,
            quick,
            rounds,
            run_ms,
            dir,
            workloads,
            net_count,
            net_mib,
            trace,
            direct,
        } => {
            let mut options = if quick {
                bench::BenchOptions::quick()
            } else {
                bench::BenchOptions::full()
            };
            options.rounds = rounds.map_or(options.rounds, |r| r as usize);
            options.run_ms = run_ms.unwrap_or(options.run_ms);
            options.dir = dir.unwrap_or(options.dir);
            options.workloads = workloads;
            options.net_count = net_count.unwrap_or(options.net_count);
            options.net_mib = net_mib.unwrap_or(options.net_mib);
            options.quiet = json;
            options.trace = trace;
            options.direct = direct;
            return Ok(bench_command(&options, json, plot.as_deref(), socket));
        }
        Command::Other(args) => {
            let name = args.first().map(String::as_str).unwrap_or("");
            let message = match NOT_YET.iter().find(|(command, _)| *command == name) {
                Some((_, why)) => format!("{name}: not supported: {why}"),
                None => format!("unknown command '{name}' (see `xl --help`)"),
            };
            return Err(message.into());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_command(
    options: &bench::BenchOptions,
    json: bool,
    plot: Option<&std::path::Path>,
    socket: &std::path::Path,
) -> ExitCode {
    if daemon_running(socket) {
        eprintln!(
            "xl bench: hypd is running on {}; the benchmark runs its own core and would share \
             the CPUs with it. Stop hypd first (`xl shutdown 0`).",
            socket.display()
        );
        return ExitCode::FAILURE;
    }
    let summary = match bench::run(options) {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("xl bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("summary serializes")
        );
    } else {
        bench::print(&summary);
    }
    if let Some(path) = plot {
        if let Err(e) = bench::write_plot(&summary, path) {
            eprintln!("xl bench: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!("xl bench: plot written to {}", path.display());
    }
    ExitCode::SUCCESS
}

fn demo_command(json: bool, round_trips: u32, socket: &std::path::Path) -> ExitCode {
    if daemon_running(socket) {
        eprintln!(
            "xl demo: hypd is running on {}, so this process will not start a second core.\n\
             Use it instead: `xl create examples/guest.cfg`, `xl list`, `xl console guest`, \
             `xl shutdown -w guest`; or stop hypd with `xl shutdown 0`.",
            socket.display()
        );
        return ExitCode::FAILURE;
    }
    let options = demo::DemoOptions { json, round_trips };
    match demo::run(&options) {
        Ok(summary) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&summary).expect("summary serializes")
                );
            } else {
                demo::print(&summary);
            }
            if demo::succeeded(&summary) {
                ExitCode::SUCCESS
            } else {
                eprintln!("xl demo: a domain did not boot or shut down cleanly");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("xl demo: {e}");
            ExitCode::FAILURE
        }
    }
}
