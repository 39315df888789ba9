//! Checks a guest makes of the core's rules, each reported to the
//! toolstack as a [`Report::Check`]: privileged hypercalls are refused,
//! event channels to missing domains and sends on closed ports fail.

use guest_runtime::{evtchn, hypercall, println, BootInfo};
use protocol::domain::ShutdownReason;
use protocol::hypercall::Errno;
use protocol::report::{heapless_name::Name, Report};

/// A domain id no domain has.
const MISSING_DOMAIN: u16 = 0x7000;

fn check(name: &str, result: Result<u64, Errno>, expected: Errno) {
    let value = match result {
        Ok(v) => v as i64,
        Err(e) => e as i64,
    };
    let passed = result == Err(expected);
    println!(
        "frontends: check {name}: got {value}, expected {} -> {}",
        expected.name(),
        if passed { "ok" } else { "FAILED" }
    );
    let _ = hypercall::report(&Report::Check {
        name: Name::new(name),
        passed,
        value,
    });
}

/// Runs the checks, reports each, and powers off.
pub fn run(boot: &BootInfo) -> ! {
    check(
        "privileged-hypercall",
        hypercall::domain_info(0).map(|_| 0),
        Errno::Perm,
    );
    check(
        "alloc-unbound-missing-domain",
        evtchn::alloc_unbound(MISSING_DOMAIN).map(u64::from),
        Errno::Srch,
    );
    check(
        "bind-missing-domain",
        evtchn::bind_interdomain(MISSING_DOMAIN, 1).map(u64::from),
        Errno::Srch,
    );
    check(
        "send-never-opened-port",
        evtchn::send(77).map(|_| 0),
        Errno::Inval,
    );
    check(
        "send-invalid-port",
        evtchn::send(100_000).map(|_| 0),
        Errno::Inval,
    );
    match evtchn::bind_interdomain(boot.control_domid, boot.control_port) {
        Ok(port) => {
            let closed = evtchn::close(port);
            println!("frontends: bound then closed port {port}: {closed:?}");
            check(
                "send-closed-port",
                evtchn::send(port).map(|_| 0),
                Errno::Inval,
            );
            check(
                "close-closed-port",
                evtchn::close(port).map(|_| 0),
                Errno::Inval,
            );
        }
        Err(errno) => println!("frontends: bind failed: {}", errno.name()),
    }
    hypercall::shutdown(ShutdownReason::Poweroff, b"")
}
