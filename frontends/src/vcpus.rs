//! `workload=vcpus`: every vCPU reports in. Each vCPU sets its bit in the
//! runtime's online mask once it has set itself up (GDT, IDT, TSS, local
//! APIC) and reached ring 3; this waits up to five seconds for all of the
//! domain's vCPUs, names each one, and reports the count as a check.

use guest_runtime::arch::entry::online_vcpus;
use guest_runtime::{time, BootInfo};
use protocol::domain::ShutdownReason;

use crate::out::Out;
use crate::outln;

/// How long the other vCPUs have to come up.
const WAIT_NS: u64 = 5_000_000_000;

/// Runs the workload.
pub fn run(boot: &BootInfo) -> ! {
    let mut out = Out::open();
    let want = u32::from(boot.vcpus);
    let all = if want >= 32 {
        u32::MAX
    } else {
        (1 << want) - 1
    };
    let deadline = time::rdtsc() + time::ns_to_ticks(WAIT_NS);
    while online_vcpus() & all != all && time::rdtsc() < deadline {
        // Sleep a millisecond at a time: the others need the host's CPUs.
        let ms = time::rdtsc() + time::ns_to_ticks(1_000_000);
        guest_runtime::event::wait_until(ms.min(crate::net::before_sleep()));
    }
    let online = online_vcpus() & all;
    for vcpu in 0..want {
        let state = if online & (1 << vcpu) != 0 {
            "online"
        } else {
            "MISSING"
        };
        outln!(out, "vcpus: vCPU {vcpu} of {want} {state}");
    }
    let count = online.count_ones();
    out.check(
        "vcpus-online",
        count == want,
        i64::from(count),
        format_args!("{count} of {want} vCPUs reported in"),
    );
    out.finish(ShutdownReason::Poweroff, b"")
}
