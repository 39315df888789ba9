//! `xl demo`: the guided tour.
//!
//! Runs the core embedded in this process, boots Dom0 (the service VM)
//! and a guest, shows their console lines, lets the guest time event-
//! channel round trips to Dom0; then boots a guest with a raw disk image
//! and a console served by Dom0's backends, which writes, flushes, reads
//! back and verifies the whole disk and runs a short block benchmark;
//! shuts everything down and reports what happened.

use hyp::{DomainConfig, Event};
use hypd::{DeviceConfig, GuestConfig, Machine};
use protocol::boot::ControlRequest;
use protocol::domain::{DomId, DomainState, DOM0};
use protocol::report::Report;
use serde::Serialize;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// How long any one step of the demo may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `xl demo`.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Print one JSON document on stdout (console lines go to stderr).
    pub json: bool,
    /// Event-channel round trips the guest times.
    pub round_trips: u32,
}

/// One domain in the summary.
#[derive(Debug, Serialize)]
pub struct DomainSummary {
    /// Domain id.
    pub domid: DomId,
    /// Name.
    pub name: String,
    /// True once the kernel wrote its first console line.
    pub booted: bool,
    /// Milliseconds from create to the first console line.
    pub boot_ms: Option<f64>,
    /// `poweroff`, `reboot`, `crash`, or null if it never shut down.
    pub shutdown_reason: Option<String>,
    /// CPU time its vCPUs used, in milliseconds.
    pub cpu_ms: f64,
    /// Exits to the core's user space.
    pub user_exits: u64,
}

/// Event-channel figures measured by the guest.
#[derive(Debug, Serialize)]
pub struct EvtchnSummary {
    /// Round trips timed.
    pub round_trips: u32,
    /// Median round trip, µs.
    pub median_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Fastest, µs.
    pub min_us: f64,
    /// Slowest, µs.
    pub max_us: f64,
    /// Exits to the core's user space by the guest during the whole run
    /// (hypercalls included): far fewer than round trips, because
    /// notifications stay inside KVM.
    pub guest_user_exits: u64,
}

/// One block benchmark run, as the guest measured it.
#[derive(Debug, Serialize)]
pub struct BenchFigure {
    /// What ran (`randread-4k-qd1`, ...).
    pub workload: String,
    /// Requests completed.
    pub ops: u64,
    /// Median latency, µs.
    pub median_us: f64,
    /// 99th-percentile latency, µs.
    pub p99_us: f64,
    /// Requests per second.
    pub iops: f64,
    /// Megabytes (10^6 bytes) per second.
    pub mb_s: f64,
    /// Device interrupts the guest took, per request.
    pub interrupts_per_op: f64,
    /// Queue notifications the guest made, per request.
    pub notifies_per_op: f64,
}

/// The disk part of the demo.
#[derive(Debug, Serialize)]
pub struct BlkSummary {
    /// Where the backends ran: `service-vm`.
    pub placement: String,
    /// True only if every byte read back matched what was written.
    pub verified: bool,
    /// Bytes written, flushed, read back and compared.
    pub bytes_verified: u64,
    /// The benchmark runs.
    pub bench: Vec<BenchFigure>,
    /// Register accesses the guest made that were forwarded to Dom0.
    pub ioreqs_forwarded: u64,
    /// Mean time of one forwarded access, exit to answer, in µs.
    pub ioreq_mean_us: f64,
    /// Exits of the disk guest to the core's user space (ioreqs included).
    pub guest_user_exits: u64,
    /// Lines the guest wrote to its virtio console (relayed by Dom0).
    pub console_lines: u64,
}

/// What `xl demo --json` prints.
#[derive(Debug, Serialize)]
pub struct DemoSummary {
    /// Dom0 and the guests.
    pub domains: Vec<DomainSummary>,
    /// The ping-pong result.
    pub evtchn: EvtchnSummary,
    /// The disk guest's results.
    pub blk: BlkSummary,
}

/// Errors that stop the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The core refused an operation.
    #[error(transparent)]
    Core(#[from] hyp::Error),
    /// Device setup (or the core below it) refused an operation.
    #[error(transparent)]
    Machine(#[from] hypd::DeviceError),
    /// A step did not finish in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// A domain ended in a way the demo did not expect.
    #[error("{0}")]
    Unexpected(String),
}

struct Tour {
    machine: Machine,
    events: Receiver<Event>,
    json: bool,
}

impl Tour {
    /// Takes events until `done` says stop, printing console lines.
    fn follow(
        &self,
        what: &'static str,
        mut done: impl FnMut(&Event) -> bool,
    ) -> Result<(), DemoError> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or(DemoError::Timeout(what))?;
            let event = self
                .events
                .recv_timeout(left)
                .map_err(|_| DemoError::Timeout(what))?;
            if let Event::Console { domid, line } = &event {
                if self.json {
                    eprintln!("[d{domid}] {line}");
                } else {
                    println!("[d{domid}] {line}");
                }
            }
            if done(&event) {
                return Ok(());
            }
        }
    }

    fn summary(&self, domid: DomId, state: DomainState) -> DomainSummary {
        let domain = self.machine.core().domain(domid);
        let shutdown_reason = match state {
            DomainState::Shutdown(reason) => Some(reason.name().to_string()),
            DomainState::Crashed => Some("crash".to_string()),
            _ => None,
        };
        DomainSummary {
            domid,
            name: domain.as_ref().map(|d| d.name()).unwrap_or_default(),
            booted: domain
                .as_ref()
                .is_some_and(|d| d.time_to_first_output().is_some()),
            boot_ms: domain
                .as_ref()
                .and_then(|d| d.time_to_first_output())
                .map(|t| t.as_secs_f64() * 1e3),
            shutdown_reason,
            cpu_ms: domain
                .as_ref()
                .map_or(0.0, |d| d.cpu_time().as_secs_f64() * 1e3),
            user_exits: domain.as_ref().map_or(0, |d| {
                d.counters
                    .user_exits
                    .load(std::sync::atomic::Ordering::Relaxed)
            }),
        }
    }
}

fn is_final_state(event: &Event, of: DomId) -> Option<DomainState> {
    match event {
        Event::State { domid, state, .. } if *domid == of && state.is_final() => Some(*state),
        _ => None,
    }
}

/// Runs the demo and returns its summary. Long because it is the tour's
/// script, step by step, in the order the user sees it.
pub fn run(options: &DemoOptions) -> Result<DemoSummary, DemoError> {
    let machine = Machine::new()?;
    let events = machine.core().subscribe();
    let tour = Tour {
        machine,
        events,
        json: options.json,
    };
    let say = |text: String| {
        if options.json {
            eprintln!("{text}")
        } else {
            println!("{text}")
        }
    };

    say("xl demo: booting Domain-0 (the service VM)".into());
    tour.machine.boot_dom0(DomainConfig::new(
        "Domain-0",
        kernels::SERVICE_VM.to_vec(),
        64,
    ))?;
    tour.follow("Domain-0 to boot", |e| {
        matches!(e, Event::Console { domid: DOM0, .. })
    })?;

    say(format!(
        "xl demo: booting a guest that times {} event-channel round trips to Domain-0",
        options.round_trips
    ));
    let guest = tour.machine.create(GuestConfig::new(DomainConfig {
        cmdline: format!("workload=pingpong count={}", options.round_trips),
        ..DomainConfig::new("guest", kernels::FRONTENDS.to_vec(), 32)
    }))?;
    let mut report = None;
    let mut guest_state = None;
    tour.follow("the guest to finish", |e| {
        if let Event::Report { domid, bytes } = e {
            if *domid == guest {
                report = Report::decode(bytes);
            }
        }
        guest_state = guest_state.or(is_final_state(e, guest));
        guest_state.is_some()
    })?;
    let guest_state = guest_state.expect("follow returned on a final state");
    let guest_summary = tour.summary(guest, guest_state);
    let Some(Report::EvtchnPingPong(latency)) = report else {
        let why = tour
            .machine
            .core()
            .domain(guest)
            .and_then(|d| d.message())
            .unwrap_or_default();
        return Err(DemoError::Unexpected(format!(
            "the guest ended ({guest_state:?}) without a ping-pong result {why}"
        )));
    };
    tour.machine.destroy(guest)?;

    let (blk, disk_summary) = disk_tour(&tour, &say)?;

    say("xl demo: shutting Domain-0 down".into());
    tour.machine
        .core()
        .request_shutdown(DOM0, ControlRequest::Poweroff)?;
    let mut dom0_state = None;
    tour.follow("Domain-0 to shut down", |e| {
        dom0_state = dom0_state.or(is_final_state(e, DOM0));
        dom0_state.is_some()
    })?;
    let dom0_summary = tour.summary(DOM0, dom0_state.expect("final state"));
    tour.machine.destroy(DOM0)?;

    let us = |ns: u64| ns as f64 / 1e3;
    let evtchn = EvtchnSummary {
        round_trips: latency.samples,
        median_us: us(latency.median_ns),
        p99_us: us(latency.p99_ns),
        min_us: us(latency.min_ns),
        max_us: us(latency.max_ns),
        guest_user_exits: guest_summary.user_exits,
    };
    Ok(DemoSummary {
        domains: vec![dom0_summary, guest_summary, disk_summary],
        evtchn,
        blk,
    })
}

/// Size of the demo's disk image.
const DISK_BYTES: u64 = 16 << 20;

/// Boots a guest with a disk image (made here, in a temporary directory)
/// and a console, both served by Dom0; collects its verification and
/// benchmark reports. One function, like [`run`], because it is the tour's
/// script: its steps read in the order the user sees them.
fn disk_tour(tour: &Tour, say: &dyn Fn(String)) -> Result<(BlkSummary, DomainSummary), DemoError> {
    let dir = std::env::temp_dir().join(format!("xl-demo-{}", std::process::id()));
    let image = dir.join("disk.img");
    let made = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::File::create(&image))
        .and_then(|f| f.set_len(DISK_BYTES));
    made.map_err(|e| DemoError::Unexpected(format!("making {}: {e}", image.display())))?;
    say(format!(
        "xl demo: booting a guest with a {} MiB raw disk ({}) and a console, both served by Domain-0",
        DISK_BYTES >> 20,
        image.display()
    ));
    let created = tour.machine.create(GuestConfig {
        devices: DeviceConfig::disk_and_console(&image, false),
        ..GuestConfig::new(DomainConfig {
            cmdline: "workload=disk".into(),
            ..DomainConfig::new("disk-guest", kernels::FRONTENDS.to_vec(), 64)
        })
    });
    let guest = match created {
        Ok(guest) => guest,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.into());
        }
    };
    let mut reports = Vec::new();
    let mut state = None;
    let mut console_lines = 0;
    let followed = tour.follow("the disk guest to finish", |e| {
        match e {
            Event::Report { domid, bytes } if *domid == guest => {
                reports.extend(Report::decode(bytes))
            }
            Event::Console { domid, .. } if *domid == guest => console_lines += 1,
            _ => {}
        }
        state = state.or(is_final_state(e, guest));
        state.is_some()
    });
    let _ = std::fs::remove_dir_all(&dir);
    followed?;
    let summary = tour.summary(guest, state.expect("final state"));
    // Read what the domain knows, and let go of it, before it is destroyed.
    let (ioreqs, exits, ioreq_ns, why) = {
        let domain = tour.machine.core().domain(guest);
        let counter = |f: fn(&hyp::domain::Counters) -> &std::sync::atomic::AtomicU64| {
            domain.as_ref().map_or(0, |d| {
                f(&d.counters).load(std::sync::atomic::Ordering::Relaxed)
            })
        };
        let why = domain
            .as_ref()
            .and_then(|d| d.message())
            .unwrap_or_default();
        (
            counter(|c| &c.ioreqs),
            counter(|c| &c.user_exits),
            counter(|c| &c.ioreq_ns),
            why,
        )
    };
    tour.machine.destroy(guest)?;
    let mut blk = BlkSummary {
        placement: "service-vm".into(),
        verified: false,
        bytes_verified: 0,
        bench: Vec::new(),
        ioreqs_forwarded: ioreqs,
        ioreq_mean_us: if ioreqs == 0 {
            0.0
        } else {
            ioreq_ns as f64 / ioreqs as f64 / 1e3
        },
        guest_user_exits: exits,
        console_lines,
    };
    for report in reports {
        match report {
            Report::DiskVerify {
                bytes,
                mismatches,
                ok,
            } => {
                blk.verified = ok && mismatches == 0;
                blk.bytes_verified = if blk.verified { bytes } else { 0 };
            }
            Report::BlockBench(run) => blk.bench.push(figure(&run)),
            _ => {}
        }
    }
    if !blk.verified {
        return Err(DemoError::Unexpected(format!(
            "the disk guest's data did not verify {why}"
        )));
    }
    Ok((blk, summary))
}

fn figure(run: &protocol::report::BlockBench) -> BenchFigure {
    let seconds = run.elapsed_ns as f64 / 1e9;
    let per_op = |n: u64| {
        if run.ops == 0 {
            0.0
        } else {
            n as f64 / run.ops as f64
        }
    };
    BenchFigure {
        workload: run.workload.as_str().to_string(),
        ops: run.ops,
        median_us: run.latency.median_ns as f64 / 1e3,
        p99_us: run.latency.p99_ns as f64 / 1e3,
        iops: if seconds > 0.0 {
            run.ops as f64 / seconds
        } else {
            0.0
        },
        mb_s: if seconds > 0.0 {
            run.bytes as f64 / seconds / 1e6
        } else {
            0.0
        },
        interrupts_per_op: per_op(run.interrupts),
        notifies_per_op: per_op(run.notifies),
    }
}

/// True if every domain booted and powered off cleanly.
pub fn succeeded(summary: &DemoSummary) -> bool {
    summary
        .domains
        .iter()
        .all(|d| d.booted && d.shutdown_reason.as_deref() == Some("poweroff"))
        && summary.evtchn.round_trips > 0
        && summary.blk.verified
}

/// Prints the human-readable summary.
pub fn print(summary: &DemoSummary) {
    println!();
    println!(
        "{:<5} {:<12} {:>8} {:>10} {:>8} {:>10}",
        "ID", "Name", "Boot ms", "Shutdown", "CPU ms", "Exits"
    );
    for d in &summary.domains {
        println!(
            "{:<5} {:<12} {:>8} {:>10} {:>8.1} {:>10}",
            d.domid,
            d.name,
            d.boot_ms.map_or("-".into(), |ms| format!("{ms:.1}")),
            d.shutdown_reason.as_deref().unwrap_or("-"),
            d.cpu_ms,
            d.user_exits
        );
    }
    let e = &summary.evtchn;
    println!();
    println!(
        "event channel guest -> Domain-0 -> guest: {} round trips, median {:.1} µs, p99 {:.1} µs (min {:.1}, max {:.1})",
        e.round_trips, e.median_us, e.p99_us, e.min_us, e.max_us
    );
    println!(
        "the guest left KVM for hypd {} times in all: notifications never wake the core's user space",
        e.guest_user_exits
    );
    let b = &summary.blk;
    println!();
    println!(
        "disk through the service VM: {} bytes written, flushed, read back: {}",
        b.bytes_verified,
        if b.verified {
            "every byte matched"
        } else {
            "MISMATCH"
        }
    );
    println!(
        "{:<18} {:>7} {:>10} {:>10} {:>10} {:>9} {:>8} {:>8}",
        "workload", "ops", "median µs", "p99 µs", "IOPS", "MB/s", "irq/op", "kick/op"
    );
    for f in &b.bench {
        println!(
            "{:<18} {:>7} {:>10.1} {:>10.1} {:>10.0} {:>9.1} {:>8.2} {:>8.2}",
            f.workload,
            f.ops,
            f.median_us,
            f.p99_us,
            f.iops,
            f.mb_s,
            f.interrupts_per_op,
            f.notifies_per_op
        );
    }
    println!(
        "{} register accesses were forwarded to Domain-0 as ioreqs (device setup), {:.1} µs each on average; {} console lines came through the console backend",
        b.ioreqs_forwarded, b.ioreq_mean_us, b.console_lines
    );
}
