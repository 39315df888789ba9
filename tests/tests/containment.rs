//! A guest that crashes, faults or breaks the rules ends alone: the core
//! and the other domains keep running.

use protocol::domain::DomainState;
use protocol::report::Report;
use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(30);

/// Dom0 still answers a fresh guest's ping-pong.
fn dom0_still_answers(
    hv: &hyp::Hypervisor,
    events: &std::sync::mpsc::Receiver<hyp::Event>,
    name: &str,
) {
    let id = hv
        .create_domain(guest(name, "workload=pingpong count=20"))
        .unwrap();
    let reports = reports_until_final(events, id, T);
    assert!(
        matches!(reports.as_slice(), [Report::EvtchnPingPong(s)] if s.samples == 20),
        "{reports:?}"
    );
}

#[test]
fn guest_panic_crashes_only_that_guest_with_its_message() {
    let (hv, events) = with_dom0();
    let id = hv
        .create_domain(guest("panicker", "workload=panic"))
        .unwrap();
    assert_eq!(hv.wait_final(id, T), Some(DomainState::Crashed));
    let message = hv.domain(id).unwrap().message().unwrap();
    assert!(message.contains("guest panicked on purpose"), "{message}");
    assert!(
        message.contains("panicked at src/main.rs:"),
        "location missing: {message}"
    );
    assert!(!hv.domain(0).unwrap().state().is_final());
    dom0_still_answers(&hv, &events, "after-panic");
}

#[test]
fn guest_page_fault_is_reported_as_a_crash() {
    let (hv, events) = with_dom0();
    let id = hv
        .create_domain(guest("faulter", "workload=fault"))
        .unwrap();
    assert_eq!(hv.wait_final(id, T), Some(DomainState::Crashed));
    let message = hv.domain(id).unwrap().message().unwrap();
    assert!(
        message.contains("CPU exception") && message.contains("in ring 3"),
        "{message}"
    );
    dom0_still_answers(&hv, &events, "after-fault");
}

#[test]
fn triple_fault_crashes_the_guest() {
    let (hv, events) = with_dom0();
    // `ud2` with no IDT loaded: #UD, then #DF, then a triple fault.
    let mut config = guest("triple", "");
    config.kernel = tiny_elf(&[0x0F, 0x0B], protocol::memory::KERNEL_BASE, 0x1000);
    let id = hv.create_domain(config).unwrap();
    assert_eq!(hv.wait_final(id, T), Some(DomainState::Crashed));
    let message = hv.domain(id).unwrap().message().unwrap();
    assert!(message.contains("triple fault"), "{message}");
    dom0_still_answers(&hv, &events, "after-triple-fault");
}

#[test]
fn guest_checks_of_the_rules_all_pass() {
    let (hv, events) = with_dom0();
    let id = hv
        .create_domain(guest("rules", "workload=selftest"))
        .unwrap();
    let reports = reports_until_final(&events, id, T);
    let names: Vec<&str> = reports
        .iter()
        .map(|r| match r {
            Report::Check {
                name,
                passed,
                value,
            } => {
                assert!(passed, "check {} failed with {value}", name.as_str());
                name.as_str()
            }
            other => panic!("unexpected report {other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "privileged-hypercall",
            "alloc-unbound-missing-domain",
            "bind-missing-domain",
            "send-never-opened-port",
            "send-invalid-port",
            "send-closed-port",
            "close-closed-port"
        ]
    );
    let domain = hv.domain(id).unwrap();
    assert_eq!(
        domain
            .counters
            .privileged_denied
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        domain.state(),
        DomainState::Shutdown(protocol::domain::ShutdownReason::Poweroff)
    );
    dom0_still_answers(&hv, &events, "after-selftest");
}
