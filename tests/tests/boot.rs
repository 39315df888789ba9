//! Both kernels boot on KVM; the guest runs with one, two, four and 32
//! vCPUs (more than the host's CPUs).

use hyp::{ConfigError, Error, Event};
use protocol::domain::{DomainState, ShutdownReason};
use protocol::report::Report;
use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn dom0_boots_privileged_and_answers_a_guest() {
    let (hv, events) = with_dom0();
    let line = wait_console(&events, 0, "Domain-0 up", T).expect("Dom0 console line");
    assert!(line.contains("privileged=true"), "{line}");
    assert_eq!(hv.domain(0).unwrap().name(), "Domain-0");
    let id = hv
        .create_domain(guest("pinger", "workload=pingpong count=200"))
        .unwrap();
    assert_eq!(id, 1, "the first guest is domain 1");
    let reports = reports_until_final(&events, id, T);
    assert_eq!(
        hv.domain(id).unwrap().state(),
        DomainState::Shutdown(ShutdownReason::Poweroff)
    );
    match reports.as_slice() {
        [Report::EvtchnPingPong(summary)] => {
            assert_eq!(summary.samples, 200);
            assert!(
                summary.min_ns > 0
                    && summary.min_ns <= summary.median_ns
                    && summary.median_ns <= summary.p99_ns
            );
        }
        other => panic!("expected one ping-pong report, got {other:?}"),
    }
    // Notifications stayed in KVM: the guest exited to the core only for
    // its few hypercalls, not once per round trip.
    let exits = hv
        .domain(id)
        .unwrap()
        .counters
        .user_exits
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(exits < 20, "{exits} user exits for 200 round trips");
    assert!(hv.domain(id).unwrap().time_to_first_output().is_some());
}

#[test]
fn guest_with_two_vcpus_boots_and_pings() {
    let (hv, events) = with_dom0();
    let mut config = guest("two-vcpus", "workload=pingpong count=50");
    config.vcpus = 2;
    let id = hv.create_domain(config).unwrap();
    let reports = reports_until_final(&events, id, T);
    assert_eq!(
        hv.domain(id).unwrap().state(),
        DomainState::Shutdown(ShutdownReason::Poweroff)
    );
    assert_eq!(reports.len(), 1);
    assert_eq!(hv.domain(id).unwrap().vcpus(), 2);
}

#[test]
fn more_vcpus_than_host_cpus_boot_and_each_reports_in() {
    let (hv, events) = with_dom0();
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for vcpus in [4u8, protocol::domain::MAX_VCPUS as u8] {
        assert!(usize::from(vcpus) > host_cpus, "overcommitted on this host");
        let mut config = guest(&format!("vcpus-{vcpus}"), "workload=vcpus");
        config.vcpus = vcpus;
        let id = hv.create_domain(config).unwrap();
        assert_eq!(hv.domain(id).unwrap().vcpus(), vcpus);
        let reports = reports_until_final(&events, id, T);
        assert_eq!(passed_checks(&reports), ["vcpus-online"], "{reports:?}");
        assert!(reports.iter().any(|r| matches!(
            r,
            Report::Check { value, .. } if *value == i64::from(vcpus)
        )));
        assert_eq!(
            hv.domain(id).unwrap().state(),
            DomainState::Shutdown(ShutdownReason::Poweroff)
        );
        hv.destroy(id).unwrap();
    }
}

#[test]
fn shutdown_and_reboot_requests_reach_the_guest() {
    use protocol::boot::ControlRequest;
    let (hv, events) = with_dom0();
    for (request, reason) in [
        (ControlRequest::Poweroff, ShutdownReason::Poweroff),
        (ControlRequest::Reboot, ShutdownReason::Reboot),
    ] {
        let name = format!("idle-{}", reason.name());
        let id = hv.create_domain(guest(&name, "workload=idle")).unwrap();
        wait_console(&events, id, "workload idle", T).expect("guest up");
        hv.request_shutdown(id, request).unwrap();
        assert_eq!(hv.wait_final(id, T), Some(DomainState::Shutdown(reason)));
        hv.destroy(id).unwrap();
    }
    hv.request_shutdown(0, ControlRequest::Poweroff).unwrap();
    assert_eq!(
        hv.wait_final(0, T),
        Some(DomainState::Shutdown(ShutdownReason::Poweroff))
    );
    assert!(wait_for(
        &events,
        T,
        |e| matches!(e, Event::Console { domid: 0, line } if line.contains("shutting down"))
    )
    .is_some());
}

#[test]
fn a_guest_needs_dom0_and_dom0_is_unique() {
    let hv = hyp::Hypervisor::new().unwrap();
    let err = hv.create_domain(guest("orphan", "")).unwrap_err();
    assert!(matches!(err, Error::NoDom0), "{err}");
    hv.create_dom0(service_vm()).unwrap();
    let err = hv.create_dom0(service_vm()).unwrap_err();
    assert!(matches!(err, Error::Dom0Exists), "{err}");
    let err = hv.create_domain(guest("Domain-0", "")).unwrap_err();
    assert!(
        matches!(&err, Error::NameTaken(name) if name == "Domain-0"),
        "{err}"
    );
    let mut config = guest("greedy", "");
    config.vcpus = 33;
    let err = hv.create_domain(config).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config(ConfigError::Vcpus { vcpus: 33, max: 32 })
        ),
        "{err}"
    );
    assert_eq!(hv.domains().len(), 1);
}
