//! A vCPU thread: runs `KVM_RUN` and handles the exits that reach user
//! space (hypercalls, doorbells for unbound ports, accesses to MMIO ranges
//! a handler serves ([`crate::mmio`]), fatal conditions).
//!
//! Steady-state event-channel traffic never comes here: KVM completes
//! doorbell writes to bound ports itself, and a halted vCPU sleeps inside
//! `KVM_RUN` until an interrupt arrives.

use crate::domain::{Domain, Life};
use crate::hypercall;
use crate::mmio::MmioAccess;
use crate::state::Core;
use kvm_ioctls::{VcpuExit, VcpuFd};
use protocol::memory::{DOORBELL_ADDR, HYPERCALL_ADDR};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Why a vCPU loop ended.
enum Stop {
    /// The domain reached a final state; nothing to add.
    Finished,
    /// This vCPU hit a fatal condition: crash the domain with this reason.
    Crash(String),
}

/// The body of vCPU thread `index` of `domain`.
pub(crate) fn run(core: Arc<Core>, domain: Arc<Domain>, mut vcpu: VcpuFd, index: u8) {
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

/// Waits while the domain is paused or held; false once it must stop.
fn may_run(domain: &Domain) -> bool {
    let mut status = domain.status();
    let mut parked = false;
    while (status.paused || status.held) && status.life == Life::Alive {
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

fn run_loop(core: &Core, domain: &Domain, vcpu: &mut VcpuFd, index: u8) -> Stop {
    loop {
        if !may_run(domain) {
            return Stop::Finished;
        }
        if index == 0 && domain.nmi_pending.swap(false, Ordering::SeqCst) {
            if let Err(e) = vcpu.nmi() {
                return Stop::Crash(format!("KVM_NMI failed: {e}"));
            }
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
            VcpuExit::MmioRead(addr, data) => match domain.mmio.find(addr) {
                Some((handler, base)) => {
                    let len = data.len().min(8);
                    let access = access(index, addr, base, len);
                    let value = handler.read(&access);
                    data[..len].copy_from_slice(&value.to_le_bytes()[..len]);
                }
                None => {
                    unassigned(domain, "read of", addr);
                    data.fill(0xFF);
                }
            },
            VcpuExit::MmioWrite(addr, data) => match domain.mmio.find(addr) {
                Some((handler, base)) => {
                    let len = data.len().min(8);
                    let mut bytes = [0u8; 8];
                    bytes[..len].copy_from_slice(&data[..len]);
                    let access = access(index, addr, base, len);
                    handler.write(&access, u64::from_le_bytes(bytes));
                }
                None => unassigned(domain, "write to", addr),
            },
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

/// A trapped access of `len` bytes at `addr`, in the range at `base`.
fn access(vcpu: u8, addr: u64, base: u64, len: usize) -> MmioAccess {
    MmioAccess {
        vcpu,
        addr,
        offset: addr - base,
        size: len as u8,
    }
}

/// Counts an access to an MMIO address nothing is behind.
fn unassigned(domain: &Domain, what: &str, addr: u64) {
    domain
        .counters
        .unassigned_mmio
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(domid = domain.id, "{what} unassigned MMIO {addr:#x}");
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
