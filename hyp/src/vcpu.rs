//! A vCPU thread: runs `KVM_RUN` and handles the exits that reach user
//! space (hypercalls, doorbells for unbound ports, fatal conditions).
//!
//! Steady-state event-channel traffic never comes here: KVM completes
//! doorbell writes to bound ports itself, and a halted vCPU sleeps inside
//! `KVM_RUN` until an interrupt arrives.

use crate::domain::{Domain, Life};
use crate::hypercall;
use crate::hypervisor::Inner;
use kvm_ioctls::{VcpuExit, VcpuFd};
use protocol::memory::{DOORBELL_ADDR, HYPERCALL_ADDR};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Once};

/// The signal that kicks a vCPU thread out of `KVM_RUN`.
pub(crate) fn kick_signal() -> i32 {
    libc::SIGRTMIN() + 2
}

/// Installs a handler for the kick signal that does nothing, so the signal
/// only interrupts `KVM_RUN` (with `EINTR`) and never kills the process.
pub(crate) fn install_kick_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        extern "C" fn on_kick(_: libc::c_int) {}
        // SAFETY: a zeroed sigaction with a handler that touches nothing is
        // valid; no SA_RESTART, so KVM_RUN returns EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_kick as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(kick_signal(), &action, std::ptr::null_mut());
        }
    });
}

/// Why a vCPU loop ended.
enum Stop {
    /// The domain reached a final state; nothing to add.
    Finished,
    /// This vCPU hit a fatal condition: crash the domain with this reason.
    Crash(String),
}

/// The body of vCPU thread `index` of `domain`.
pub(crate) fn run(core: Arc<Inner>, domain: Arc<Domain>, mut vcpu: VcpuFd, index: u8) {
    let name = domain.name();
    let stop = run_loop(&core, &domain, &mut vcpu, index);
    if let Stop::Crash(reason) = stop {
        tracing::error!(domid = domain.id, "domain {name} crashed: {reason}");
        core.finish_domain(&domain, Life::Crashed, Some(reason));
    }
    // SAFETY: clock_gettime on this thread's CPU clock writes only `now`.
    let cpu_ns = unsafe {
        let mut now: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now);
        now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
    };
    domain.cpu_ns_retired.fetch_add(cpu_ns, Ordering::Relaxed);
}

/// Waits while the domain is paused; false once it must stop.
fn may_run(domain: &Domain) -> bool {
    let mut status = domain.status();
    let mut parked = false;
    while status.paused && status.life == Life::Alive {
        if !parked {
            status.parked += 1;
            parked = true;
            domain.status_changed.notify_all();
        }
        status = domain
            .status_changed
            .wait(status)
            .expect("domain status lock");
    }
    if parked {
        status.parked -= 1;
    }
    status.life == Life::Alive
}

fn run_loop(core: &Inner, domain: &Domain, vcpu: &mut VcpuFd, index: u8) -> Stop {
    loop {
        if !may_run(domain) {
            return Stop::Finished;
        }
        let exit = match vcpu.run() {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
            Err(e) => return Stop::Crash(format!("KVM_RUN failed on vCPU {index}: {e}")),
        };
        domain.counters.user_exits.fetch_add(1, Ordering::Relaxed);
        match exit {
            VcpuExit::MmioRead(HYPERCALL_ADDR, _) => {
                let regs = match vcpu.get_regs() {
                    Ok(regs) => regs,
                    Err(e) => return Stop::Crash(format!("KVM_GET_REGS: {e}")),
                };
                let result = hypercall::dispatch(core, domain, index, &regs);
                if let Some(VcpuExit::MmioRead(_, data)) = pending_read(vcpu) {
                    let bytes = result.to_le_bytes();
                    let len = data.len().min(8);
                    data[..len].copy_from_slice(&bytes[..len]);
                }
            }
            VcpuExit::MmioWrite(DOORBELL_ADDR, data) => {
                let port = data.iter().rev().fold(0u32, |acc, &b| acc << 8 | b as u32);
                domain
                    .counters
                    .doorbell_exits
                    .fetch_add(1, Ordering::Relaxed);
                hypercall::doorbell(core, domain, index, port);
            }
            VcpuExit::MmioRead(addr, data) if domain.io.get().is_some_and(|io| io.owns(addr)) => {
                let io = domain.io.get().expect("checked by the guard");
                io.read(domain, index, addr, data);
            }
            VcpuExit::MmioWrite(addr, data) if domain.io.get().is_some_and(|io| io.owns(addr)) => {
                let io = domain.io.get().expect("checked by the guard");
                io.write(domain, index, addr, data);
            }
            VcpuExit::MmioRead(addr, data) => {
                domain
                    .counters
                    .unassigned_mmio
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(domid = domain.id, "read of unassigned MMIO {addr:#x}");
                data.fill(0xFF);
            }
            VcpuExit::MmioWrite(addr, _) => {
                domain
                    .counters
                    .unassigned_mmio
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(domid = domain.id, "write to unassigned MMIO {addr:#x}");
            }
            VcpuExit::Hlt | VcpuExit::Intr => {}
            VcpuExit::Shutdown => return Stop::Crash(format!("triple fault on vCPU {index}")),
            VcpuExit::InternalError => {
                // SAFETY: for KVM_EXIT_INTERNAL_ERROR the `internal` member of
                // the exit union is the one KVM filled in.
                let suberror = unsafe { vcpu.get_kvm_run().__bindgen_anon_1.internal.suberror };
                let rip = vcpu.get_regs().map(|r| r.rip).unwrap_or(0);
                return Stop::Crash(format!(
                    "KVM internal error (suberror {suberror}) on vCPU {index} at rip {rip:#x}"
                ));
            }
            VcpuExit::FailEntry(reason, cpu) => {
                return Stop::Crash(format!(
                    "VM entry failed (reason {reason:#x}, host cpu {cpu})"
                ));
            }
            other => return Stop::Crash(format!("unhandled exit {other:?} on vCPU {index}")),
        }
    }
}

/// The MMIO read exit that is still pending on `vcpu`, to complete it.
fn pending_read(vcpu: &mut VcpuFd) -> Option<VcpuExit<'_>> {
    let run = vcpu.get_kvm_run();
    if run.exit_reason != kvm_bindings::KVM_EXIT_MMIO {
        return None;
    }
    // SAFETY: exit_reason is KVM_EXIT_MMIO, so `mmio` is the live member.
    let mmio = unsafe { &mut run.__bindgen_anon_1.mmio };
    let len = (mmio.len as usize).min(mmio.data.len());
    (mmio.is_write == 0).then(|| VcpuExit::MmioRead(mmio.phys_addr, &mut mmio.data[..len]))
}
