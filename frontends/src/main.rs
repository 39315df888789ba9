//! The guest kernel (DomU).
//!
//! It runs the workload named on its command line (`workload=NAME`; see
//! [`cmdline`] for every key). Without one, a guest with a block device
//! runs `disk`, any other `pingpong`. Some workloads misbehave on purpose,
//! so that tests can check that the core and Domain-0 contain them.
//!
//! | workload | what it does |
//! |---|---|
//! | `pingpong` | event-channel round trips with Domain-0 ([`pingpong`]) |
//! | `disk` | pattern write/verify over the disk, then the block benchmark ([`disk`], [`bench`]) |
//! | `durable` | rounds of writes, each flushed and then announced ([`durable`]) |
//! | `readonly`, `outofrange` | the block device's refusals ([`blkcheck`]) |
//! | `hostile` | attacks on the block device's ring ([`hostile`]) |
//! | `selftest` | the core's rules ([`selftest`]) |
//! | `flood` | refused hypercalls and console lines, as fast as it can |
//! | `forge` | crashes with a message that tries to forge a log line |
//! | `vcpus` | every vCPU reports in ([`vcpus`]) |
//! | `net` | ping, TCP round trips and streams toward `peer=`, then serves ([`netbench`]) |
//! | `netspoof` | frames with a forged source MAC, a forged source IP and ARP claims on `peer=`'s address, then pings, then serves ([`netspoof`]) |
//! | `netflood` | broadcasts full-size frames as fast as it can, `count=` of them or until shut down ([`netflood`]) |
//! | `nethostile` | attacks on the network device's transmit ring, then serves ([`hostile::net`]) |
//! | `tracehostile` | garbles its own trace ring while it reads its disk ([`hostile::trace`]) |
//! | `panic`, `fault`, `spin`, `idle` | misbehave, or just run (`idle` serves the network until shut down) |
//!
//! The virtio drivers are in [`virtio`]. A guest with network devices
//! brings them up before its workload and serves ARP, ICMP echo, TCP and
//! UDP echo (port 7), TCP discard (9) and HTTP (80) on each, whatever the
//! workload, from wherever it waits ([`net`]); a workload that ends by
//! powering off still does. `idle` (and every network workload once it
//! is done) also takes in devices attached and detached ([`hotplug`]).
#![no_std]
#![no_main]

extern crate alloc;

mod bench;
mod blkcheck;
mod cmdline;
mod disk;
mod dma;
mod durable;
mod hostile;
mod hotplug;
mod net;
mod netbench;
mod netflood;
mod netspoof;
mod out;
mod pattern;
mod pingpong;
mod selftest;
mod stats;
mod trace;
mod vcpus;
mod virtio;

use guest_runtime::{control, event, println, BootInfo};
use protocol::device::kind;
use protocol::domain::ShutdownReason;

guest_runtime::entry!(main);

fn main(boot: &'static BootInfo) -> ! {
    let args = cmdline::Args::parse(boot.cmdline());
    let workload = args.workload.unwrap_or(match virtio::find(kind::BLOCK) {
        Some(_) => "disk",
        None => "pingpong",
    });
    println!("frontends: domain {} up, workload {workload}", boot.domid);
    net::init(boot, &args);
    match workload {
        "pingpong" => pingpong::run(boot, args.count.unwrap_or(1000)),
        "disk" => disk::run(&args),
        "durable" => durable::run(&args),
        "readonly" => blkcheck::readonly(&args),
        "outofrange" => blkcheck::outofrange(&args),
        "hostile" => hostile::run(boot, &args),
        "panic" => panic!("guest panicked on purpose (workload=panic)"),
        "fault" => {
            // SAFETY: deliberately touches unmapped memory to show that a
            // page fault ends only this domain.
            unsafe { (0x1_0000_0000_0000u64 as *const u64).read_volatile() };
            unreachable!("a non-canonical address read cannot succeed")
        }
        "selftest" => selftest::run(boot),
        "spin" => spin(),
        "flood" => flood(args.count.unwrap_or(20_000)),
        // A crash message that tries to forge a log line and drive the
        // terminal of whoever reads the log.
        "forge" => guest_runtime::hypercall::shutdown(
            ShutdownReason::Crash,
            b"oops\n(    0.000001) INFO  destroyed domain Domain-0\x1b[2J",
        ),
        "idle" => idle(&args),
        "vcpus" => vcpus::run(boot),
        "net" => netbench::run(&args),
        "netspoof" => netspoof::run(&args),
        "netflood" => netflood::run(&args),
        "nethostile" => hostile::net::run(boot, &args),
        "tracehostile" => hostile::trace::run(&args),
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
        if count.is_multiple_of(4096) {
            if event::poll().control() {
                control::obey("frontends");
            }
            net::poll();
        }
    }
}

/// A guest trying to flood the host: `count` times, a privileged
/// hypercall it is refused and a long console line. The host must log a
/// few lines about it and keep the console bounded.
fn flood(count: u32) -> ! {
    for i in 0..count {
        let _ = guest_runtime::hypercall::domain_info(0);
        println!("frontends: flood {i:08} xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    }
    println!("frontends: flood done");
    guest_runtime::hypercall::shutdown(ShutdownReason::Poweroff, b"")
}

/// Sleeps until asked to shut down, serving the network meanwhile and
/// taking in devices attached and detached.
fn idle(args: &cmdline::Args) -> ! {
    let mut hotplug = hotplug::Hotplug::new();
    loop {
        if !net::serve_once() && event::wait_until(0).control() {
            control::obey("frontends");
        }
        hotplug.check(args);
    }
}
