//! Pause, unpause and destroy, and what destroy gives back.
//! One test per concern; resource counting runs alone in `teardown.rs`.

use hyp::Error;
use protocol::domain::DomainState;
use std::time::Duration;
use tests::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn pause_stops_progress_and_unpause_resumes_it() {
    let (hv, events) = with_dom0();
    let id = hv.create_domain(guest("spinner", "workload=spin")).unwrap();
    wait_console(&events, id, "workload spin", T).expect("guest up");
    let domain = hv.domain(id).unwrap();
    let before = domain.progress();
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        domain.progress() > before,
        "the spinning guest makes progress"
    );

    hv.pause(id).unwrap();
    assert_eq!(domain.state(), DomainState::Paused);
    let frozen = domain.progress();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(domain.progress(), frozen, "no progress while paused");
    let cpu_paused = domain.cpu_time();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        domain.cpu_time() - cpu_paused < Duration::from_millis(20),
        "a paused domain uses no CPU"
    );

    hv.unpause(id).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(domain.progress() > frozen, "progress resumes after unpause");
    assert_eq!(domain.state(), DomainState::Running);
    assert!(
        matches!(hv.unpause(id), Err(Error::NotPaused(d)) if d == id),
        "unpause of a running domain is refused"
    );

    hv.destroy(id).unwrap();
    assert!(hv.domain(id).is_none());
    assert!(matches!(hv.pause(id), Err(Error::NoSuchDomain(d)) if d == id));
}

#[test]
fn idle_guest_is_blocked_and_uses_little_cpu() {
    let (hv, events) = with_dom0();
    let id = hv.create_domain(guest("sleeper", "workload=idle")).unwrap();
    wait_console(&events, id, "workload idle", T).expect("guest up");
    std::thread::sleep(Duration::from_millis(50));
    let domain = hv.domain(id).unwrap();
    assert_eq!(domain.state(), DomainState::Blocked);
    let cpu = domain.cpu_time();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        domain.cpu_time() - cpu < Duration::from_millis(20),
        "a halted guest burns no CPU"
    );
}

#[test]
fn destroying_a_bound_guest_frees_its_ports_in_dom0() {
    let (hv, events) = with_dom0();
    let baseline = hv.open_ports(0);
    let id = hv
        .create_domain(guest("bound", "workload=pingpong count=1000000"))
        .unwrap();
    assert!(wait_for(&events, T, |e| matches!(e, hyp::Event::Console { domid, line } if *domid == id && line.contains("bound local port"))).is_some());
    assert_eq!(hv.open_ports(0), baseline + 1);
    hv.destroy(id).unwrap();
    assert_eq!(
        hv.open_ports(0),
        baseline,
        "Dom0's end of the channel is closed with the guest"
    );
    assert!(hv.destroy(0).is_ok(), "Dom0 may go once it is alone");
}

#[test]
fn dom0_cannot_be_destroyed_under_running_guests() {
    let (hv, events) = with_dom0();
    let id = hv.create_domain(guest("tenant", "workload=idle")).unwrap();
    wait_console(&events, id, "workload idle", T).expect("guest up");
    assert!(matches!(hv.destroy(0), Err(Error::Dom0HasGuests)));
    assert!(!hv.domain(0).unwrap().state().is_final());
}

#[test]
fn a_held_domain_runs_once_released_and_keeps_the_users_pause() {
    let (hv, _events) = with_dom0();
    let id = hv
        .create_domain_held(guest("held", "workload=spin"))
        .unwrap();
    let domain = hv.domain(id).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(domain.progress(), 0, "a held domain does not run");
    assert_eq!(domain.state(), DomainState::Paused);
    assert!(
        matches!(hv.unpause(id), Err(Error::NotPaused(_))),
        "unpause does not release the toolstack's hold"
    );
    hv.pause(id).unwrap();
    hv.release_domain(id).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(domain.progress(), 0, "the user's pause outlasts the hold");
    assert!(matches!(hv.release_domain(id), Err(Error::NotHeld(_))));
    hv.unpause(id).unwrap();
    let deadline = std::time::Instant::now() + T;
    while domain.progress() == 0 {
        assert!(std::time::Instant::now() < deadline, "the guest runs");
        std::thread::sleep(Duration::from_millis(5));
    }
}
