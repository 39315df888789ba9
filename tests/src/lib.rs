//! Helpers shared by the integration tests, which boot real domains under
//! KVM.

use hyp::{DomainConfig, Event, Hypervisor};
use protocol::domain::DomId;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A configuration for the standard guest kernel.
pub fn guest(name: &str, cmdline: &str) -> DomainConfig {
    DomainConfig {
        name: name.into(),
        kernel: kernels::FRONTENDS.to_vec(),
        memory_mib: 32,
        vcpus: 1,
        cmdline: cmdline.into(),
        start_paused: false,
    }
}

/// A configuration for the service VM kernel.
pub fn service_vm() -> DomainConfig {
    DomainConfig {
        name: "Domain-0".into(),
        kernel: kernels::SERVICE_VM.to_vec(),
        memory_mib: 64,
        vcpus: 1,
        cmdline: String::new(),
        start_paused: false,
    }
}

/// Waits up to `timeout` for an event matching `pred`; returns it.
pub fn wait_for(
    events: &Receiver<Event>,
    timeout: Duration,
    mut pred: impl FnMut(&Event) -> bool,
) -> Option<Event> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match events.recv_timeout(left) {
            Ok(event) if pred(&event) => return Some(event),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Waits for a console line of `domid` containing `text`.
pub fn wait_console(
    events: &Receiver<Event>,
    domid: DomId,
    text: &str,
    timeout: Duration,
) -> Option<String> {
    match wait_for(
        events,
        timeout,
        |e| matches!(e, Event::Console { domid: d, line } if *d == domid && line.contains(text)),
    ) {
        Some(Event::Console { line, .. }) => Some(line),
        _ => None,
    }
}

/// A hypervisor with Dom0 booted.
pub fn with_dom0() -> (Hypervisor, Receiver<Event>) {
    let hv = Hypervisor::new().expect("open /dev/kvm");
    let events = hv.subscribe();
    hv.create_dom0(service_vm()).expect("boot Dom0");
    (hv, events)
}
