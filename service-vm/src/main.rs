//! The service VM kernel (Dom0).
//!
//! Dom0 is the privileged domain that will host the device backends. Its
//! main loop, in ring 3, waits for interrupts and serves them:
//!
//! * an event on an interdomain port is answered by a notification back
//!   on the same port (the control channel each guest binds at boot);
//! * a control request from the core (`xl shutdown`) shuts Dom0 down.
#![no_std]
#![no_main]

use guest_runtime::{control, event, evtchn, hypercall, println, BootInfo};
use protocol::evtchn::{PortStatus, NR_PORTS};

guest_runtime::entry!(main);

fn main(boot: &'static BootInfo) -> ! {
    println!(
        "service-vm: Domain-0 up: {} MiB, {} vCPU(s), TSC {} kHz, privileged={}",
        boot.ram_bytes >> 20,
        boot.vcpus,
        boot.tsc_khz,
        boot.is_privileged()
    );
    let mut known = [false; NR_PORTS as usize];
    let mut served: u64 = 0;
    loop {
        let events = event::wait_until(0);
        if events.control() {
            println!("service-vm: answered {served} notifications");
            control::obey("service-vm");
        }
        for port in events.ports() {
            if !core::mem::replace(&mut known[port as usize], true) {
                introduce(port);
            }
            if let Err(errno) = evtchn::send(port) {
                println!("service-vm: echo on port {port} failed: {}", errno.name());
            }
            served += 1;
            control::set_progress(served);
        }
    }
}

/// Logs who is on the other end of a port the first time it fires.
fn introduce(port: u32) {
    match evtchn::status(port) {
        Ok((PortStatus::Interdomain, remote, remote_port)) => {
            match hypercall::domain_info(remote) {
                Ok(info) => println!(
                "service-vm: port {port} <-> domain {remote} port {remote_port} ({} MiB, {} vCPU)",
                info.ram_bytes >> 20,
                info.vcpus
            ),
                Err(errno) => println!(
                    "service-vm: port {port} <-> domain {remote}: info: {}",
                    errno.name()
                ),
            }
        }
        Ok((status, remote, _)) => {
            println!("service-vm: event on port {port} ({status:?}, domain {remote})")
        }
        Err(errno) => println!("service-vm: status of port {port}: {}", errno.name()),
    }
}
