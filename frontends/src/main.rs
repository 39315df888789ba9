//! The guest kernel (DomU).
//!
//! It binds the control channel Dom0 offered in the boot info, then runs
//! the workload named on its command line (`workload=NAME`, default
//! `pingpong`). Some workloads misbehave on purpose, so that tests can
//! check that the core contains them.
#![no_std]
#![no_main]

extern crate alloc;

mod cmdline;
mod pingpong;
mod selftest;

use guest_runtime::{control, event, println, BootInfo};
use protocol::domain::ShutdownReason;

guest_runtime::entry!(main);

fn main(boot: &'static BootInfo) -> ! {
    let args = cmdline::Args::parse(boot.cmdline());
    println!(
        "frontends: domain {} up, workload {}",
        boot.domid, args.workload
    );
    match args.workload {
        "pingpong" => pingpong::run(boot, args.count.unwrap_or(1000)),
        "panic" => panic!("guest panicked on purpose (workload=panic)"),
        "fault" => {
            // SAFETY: deliberately touches unmapped memory to show that a
            // page fault ends only this domain.
            unsafe { (0x1_0000_0000_0000u64 as *const u64).read_volatile() };
            unreachable!("a non-canonical address read cannot succeed")
        }
        "selftest" => selftest::run(boot),
        "spin" => spin(),
        "idle" => idle(),
        other => {
            println!("frontends: unknown workload '{other}'");
            guest_runtime::hypercall::shutdown(ShutdownReason::Crash, b"unknown workload")
        }
    }
}

/// Counts as fast as it can, publishing the count as the progress counter,
/// until asked to shut down.
fn spin() -> ! {
    let mut count: u64 = 0;
    loop {
        count += 1;
        control::set_progress(count);
        if count.is_multiple_of(4096) && event::poll().control() {
            control::obey("frontends");
        }
    }
}

/// Sleeps until asked to shut down.
fn idle() -> ! {
    loop {
        if event::wait_until(0).control() {
            control::obey("frontends");
        }
    }
}
