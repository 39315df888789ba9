//! `xl demo`: the guided tour.
//!
//! Runs the core embedded in this process, boots Dom0 (the service VM)
//! and one guest, shows their console lines, lets the guest time event-
//! channel round trips to Dom0, shuts both down and reports what happened.

use hyp::{DomainConfig, Event, Hypervisor};
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

/// What `xl demo --json` prints.
#[derive(Debug, Serialize)]
pub struct DemoSummary {
    /// Dom0 and the guest.
    pub domains: Vec<DomainSummary>,
    /// The ping-pong result.
    pub evtchn: EvtchnSummary,
}

/// Errors that stop the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The core refused an operation.
    #[error(transparent)]
    Core(#[from] hyp::Error),
    /// A step did not finish in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// A domain ended in a way the demo did not expect.
    #[error("{0}")]
    Unexpected(String),
}

struct Tour {
    hv: Hypervisor,
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
        let domain = self.hv.domain(domid);
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

/// Runs the demo and returns its summary.
pub fn run(options: &DemoOptions) -> Result<DemoSummary, DemoError> {
    let hv = Hypervisor::new()?;
    let events = hv.subscribe();
    let tour = Tour {
        hv,
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
    tour.hv.create_dom0(DomainConfig {
        name: "Domain-0".into(),
        kernel: kernels::SERVICE_VM.to_vec(),
        memory_mib: 64,
        vcpus: 1,
        cmdline: String::new(),
        start_paused: false,
        devices: Vec::new(),
    })?;
    tour.follow("Domain-0 to boot", |e| {
        matches!(e, Event::Console { domid: DOM0, .. })
    })?;

    say(format!(
        "xl demo: booting a guest that times {} event-channel round trips to Domain-0",
        options.round_trips
    ));
    let guest = tour.hv.create_domain(DomainConfig {
        name: "guest".into(),
        kernel: kernels::FRONTENDS.to_vec(),
        memory_mib: 32,
        vcpus: 1,
        cmdline: format!("workload=pingpong count={}", options.round_trips),
        start_paused: false,
        devices: Vec::new(),
    })?;
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
            .hv
            .domain(guest)
            .and_then(|d| d.message())
            .unwrap_or_default();
        return Err(DemoError::Unexpected(format!(
            "the guest ended ({guest_state:?}) without a ping-pong result {why}"
        )));
    };
    tour.hv.destroy(guest)?;

    say("xl demo: shutting Domain-0 down".into());
    tour.hv.request_shutdown(DOM0, ControlRequest::Poweroff)?;
    let mut dom0_state = None;
    tour.follow("Domain-0 to shut down", |e| {
        dom0_state = dom0_state.or(is_final_state(e, DOM0));
        dom0_state.is_some()
    })?;
    let dom0_summary = tour.summary(DOM0, dom0_state.expect("final state"));
    tour.hv.destroy(DOM0)?;

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
        domains: vec![dom0_summary, guest_summary],
        evtchn,
    })
}

/// True if every domain booted and powered off cleanly.
pub fn succeeded(summary: &DemoSummary) -> bool {
    summary
        .domains
        .iter()
        .all(|d| d.booted && d.shutdown_reason.as_deref() == Some("poweroff"))
        && summary.evtchn.round_trips > 0
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
}
