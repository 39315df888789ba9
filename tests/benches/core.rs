//! Figures of the core, measured on this machine:
//!
//! * boot time of each kernel: `create` to its first console line;
//! * event-channel round trip guest -> Dom0 -> guest (timed by the guest);
//! * memory the core spends per domain beyond guest RAM.
//!
//! Run: `cargo bench -p tests --bench core`. Medians over several runs;
//! figures on this machine drift up to 2x between runs, so compare ratios
//! within one run.

use hyp::Hypervisor;
use protocol::report::Report;
use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(60);

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// (private anonymous + file-backed) resident KiB, and shared-memory KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("read status");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:") + field("RssFile:"), field("RssShmem:"))
}

fn main() {
    let runs = 9;
    let mut dom0_boot = Vec::new();
    let mut guest_boot = Vec::new();
    let mut rtt_median = Vec::new();
    let mut rtt_p99 = Vec::new();
    for run in 0..runs {
        let hv = Hypervisor::new().expect("open /dev/kvm");
        let events = hv.subscribe();
        hv.create_dom0(service_vm()).expect("Dom0");
        wait_console(&events, 0, "Domain-0 up", T).expect("Dom0 up");
        dom0_boot.push(
            hv.domain(0)
                .unwrap()
                .time_to_first_output()
                .unwrap()
                .as_secs_f64()
                * 1e3,
        );
        let id = hv
            .create_domain(guest(
                &format!("bench{run}"),
                "workload=pingpong count=2000",
            ))
            .expect("guest");
        let reports = reports_until_final(&events, id, T);
        guest_boot.push(
            hv.domain(id)
                .unwrap()
                .time_to_first_output()
                .unwrap()
                .as_secs_f64()
                * 1e3,
        );
        if let [Report::EvtchnPingPong(s)] = reports.as_slice() {
            rtt_median.push(s.median_ns as f64 / 1e3);
            rtt_p99.push(s.p99_ns as f64 / 1e3);
        }
    }
    println!("boot, create -> first console line ({runs} runs, median):");
    println!(
        "  service-vm (Dom0, 64 MiB): {:.1} ms",
        median(&mut dom0_boot)
    );
    println!(
        "  frontends (guest, 32 MiB): {:.1} ms",
        median(&mut guest_boot)
    );
    println!("event-channel round trip guest -> Dom0 -> guest ({runs} runs x 2000, median of per-run figures):");
    println!(
        "  median {:.1} µs, p99 {:.1} µs",
        median(&mut rtt_median),
        median(&mut rtt_p99)
    );

    let hv = Hypervisor::new().expect("open /dev/kvm");
    let events = hv.subscribe();
    hv.create_dom0(service_vm()).expect("Dom0");
    wait_console(&events, 0, "Domain-0 up", T).expect("Dom0 up");
    let guests = 8;
    let (private_before, shared_before) = rss_kib();
    for i in 0..guests {
        let id = hv
            .create_domain(guest(&format!("idle{i}"), "workload=idle"))
            .expect("guest");
        wait_console(&events, id, "workload idle", T).expect("guest up");
    }
    std::thread::sleep(Duration::from_millis(100));
    let (private_after, shared_after) = rss_kib();
    println!("core memory per domain ({guests} idle 32 MiB guests):");
    println!(
        "  hypd private RSS: {:.0} KiB per domain (guest RAM excluded: it is shared memfd memory)",
        (private_after - private_before) as f64 / guests as f64
    );
    println!(
        "  guest RAM resident: {:.0} KiB per domain (pages the guest and loader touched)",
        (shared_after - shared_before) as f64 / guests as f64
    );
}
