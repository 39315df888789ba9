//! Event-channel ping-pong with Dom0: bind the control channel, then time
//! round trips DomU -> Dom0 -> DomU with the TSC.

use alloc::vec::Vec;
use guest_runtime::{control, event, evtchn, hypercall, println, time, BootInfo};
use protocol::domain::ShutdownReason;
use protocol::report::Report;

/// How long to wait for one answer before giving up.
const ANSWER_TIMEOUT_NS: u64 = 1_000_000_000;

/// Runs the workload: `count` round trips, then power off.
pub fn run(boot: &BootInfo, count: u32) -> ! {
    let port = match evtchn::bind_interdomain(boot.control_domid, boot.control_port) {
        Ok(port) => port,
        Err(errno) => {
            println!(
                "frontends: cannot bind Dom0's port {}: {}",
                boot.control_port,
                errno.name()
            );
            hypercall::shutdown(ShutdownReason::Crash, b"control channel bind failed")
        }
    };
    println!(
        "frontends: bound local port {port} to domain {} port {}",
        boot.control_domid, boot.control_port
    );
    let mut samples = Vec::with_capacity(count as usize);
    for round in 0..count {
        let start = time::rdtsc();
        if let Err(errno) = evtchn::send(port) {
            println!("frontends: send failed: {}", errno.name());
            hypercall::shutdown(ShutdownReason::Crash, b"send failed")
        }
        let deadline = start + time::ns_to_ticks(ANSWER_TIMEOUT_NS);
        loop {
            let events = event::wait_until(deadline.min(crate::net::before_sleep()));
            if events.control() {
                control::obey("frontends");
            }
            if events.has_port(port) {
                break;
            }
            if time::rdtsc() >= deadline {
                println!("frontends: no answer to round trip {round}");
                hypercall::shutdown(ShutdownReason::Crash, b"event channel answer timed out")
            }
        }
        samples.push(time::ticks_to_ns(time::rdtsc() - start));
        control::set_progress(round as u64 + 1);
    }
    let summary = crate::stats::summarize(&mut samples);
    println!(
        "frontends: {} round trips: median {} ns, p99 {} ns, min {} ns, max {} ns",
        summary.samples, summary.median_ns, summary.p99_ns, summary.min_ns, summary.max_ns
    );
    let _ = hypercall::report(&Report::EvtchnPingPong(summary));
    hypercall::shutdown(ShutdownReason::Poweroff, b"")
}
