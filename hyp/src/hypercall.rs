//! Hypercall dispatch (see [`protocol::hypercall`] for the ABI).
//!
//! Every argument comes from the guest and is checked here: buffers must
//! lie inside the caller's RAM, privileged operations are refused (and
//! counted) for every domain but Dom0, and unknown operations return
//! `ENOSYS`. Nothing a guest passes can panic the core.

use crate::domain::{Domain, Life};
use crate::events::Event;
use crate::state::Core;
use kvm_bindings::kvm_regs;
use protocol::domain::ShutdownReason;
use protocol::hypercall::{Errno, Op, MAX_CONSOLE_WRITE, MAX_REPORT, MAX_SHUTDOWN_MESSAGE};
use protocol::text::escape_controls;
use std::sync::atomic::Ordering;

/// Performs the hypercall in `regs` for vCPU `vcpu` of `domain`; returns
/// the value the guest's read receives.
pub(crate) fn dispatch(core: &Core, domain: &Domain, vcpu: u8, regs: &kvm_regs) -> i64 {
    domain.counters.hypercalls.fetch_add(1, Ordering::Relaxed);
    let Some(op) = Op::from_raw(regs.rdi) else {
        return Errno::NoSys as i64;
    };
    if op.is_privileged() && !domain.is_privileged() {
        domain
            .counters
            .privileged_denied
            .fetch_add(1, Ordering::Relaxed);
        if let Some(admitted) = domain.log_limit.admit() {
            tracing::warn!(
                domid = domain.id,
                "refused privileged hypercall {op:?} from an unprivileged domain{admitted}"
            );
        }
        return Errno::Perm as i64;
    }
    let (a1, a2, a3) = (regs.rsi, regs.rdx, regs.r10);
    match perform(core, domain, vcpu, op, a1, a2, a3) {
        Ok(value) => value as i64,
        Err(errno) => errno as i64,
    }
}

/// Performs one hypercall. Long because it is the hypercall table: one arm
/// per operation of [`protocol::hypercall::Op`], each checking its own
/// arguments, so the whole ABI reads as one list.
fn perform(
    core: &Core,
    domain: &Domain,
    vcpu: u8,
    op: Op,
    a1: u64,
    a2: u64,
    a3: u64,
) -> Result<u64, Errno> {
    let id = domain.id;
    match op {
        Op::ConsoleWrite => {
            if a2 > MAX_CONSOLE_WRITE {
                return Err(Errno::Inval);
            }
            let bytes = domain.ram.read(a1, a2).ok_or(Errno::Fault)?;
            core.console_output(domain, &bytes);
            Ok(a2)
        }
        Op::SchedYield => {
            std::thread::yield_now();
            Ok(0)
        }
        Op::SchedShutdown => {
            let reason = ShutdownReason::from_raw(a1).ok_or(Errno::Inval)?;
            let len = a3.min(MAX_SHUTDOWN_MESSAGE);
            let message = domain
                .ram
                .read(a2, len)
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            let message = message.filter(|m| !m.is_empty());
            let life = match reason {
                ShutdownReason::Crash => Life::Crashed,
                other => Life::Shutdown(other),
            };
            if let Some(admitted) = domain.log_limit.admit() {
                tracing::info!(
                    domid = id,
                    vcpu,
                    "domain shut down: {}{}{admitted}",
                    reason.name(),
                    message
                        .as_deref()
                        .map(|m| format!(": {}", escape_controls(m)))
                        .unwrap_or_default()
                );
            }
            core.finish_domain(domain, life, message);
            Ok(0)
        }
        Op::EvtchnAllocUnbound => {
            let remote = u16::try_from(a1).map_err(|_| Errno::Srch)?;
            core.evtchn().alloc_unbound(id, remote).map(u64::from)
        }
        Op::EvtchnBindInterdomain => {
            let remote = u16::try_from(a1).map_err(|_| Errno::Srch)?;
            let port = u32::try_from(a2).map_err(|_| Errno::Inval)?;
            core.evtchn()
                .bind_interdomain(id, remote, port)
                .map(u64::from)
        }
        Op::EvtchnClose => core
            .evtchn()
            .close(id, u32::try_from(a1).map_err(|_| Errno::Inval)?)
            .map(|_| 0),
        Op::EvtchnStatus => core
            .evtchn()
            .status(id, u32::try_from(a1).map_err(|_| Errno::Inval)?),
        Op::Report => {
            if a2 > MAX_REPORT {
                return Err(Errno::Inval);
            }
            let bytes = domain.ram.read(a1, a2).ok_or(Errno::Fault)?;
            core.events.publish(Event::Report { domid: id, bytes });
            Ok(0)
        }
        Op::ConsoleWriteFor => {
            let target = u16::try_from(a1).map_err(|_| Errno::Srch)?;
            if a3 > MAX_CONSOLE_WRITE {
                return Err(Errno::Inval);
            }
            let bytes = domain.ram.read(a2, a3).ok_or(Errno::Fault)?;
            let target = core.find(target).ok_or(Errno::Srch)?;
            core.console_output(&target, &bytes);
            Ok(a3)
        }
        Op::DomctlGetDomainInfo => {
            let target = u16::try_from(a1).map_err(|_| Errno::Srch)?;
            let info = core.domain_info(target).ok_or(Errno::Srch)?;
            if domain.ram.write_struct(a2, &info) {
                Ok(0)
            } else {
                Err(Errno::Fault)
            }
        }
    }
}

/// A doorbell write that KVM did not complete: `port` has no ioeventfd in
/// this domain. Leaves the outcome in the vCPU's `send_status`.
pub(crate) fn doorbell(core: &Core, domain: &Domain, vcpu: u8, port: u32) {
    let status = match core.evtchn().send_slow(domain.id, port) {
        Ok(()) => 0,
        Err(errno) => {
            tracing::debug!(domid = domain.id, "send on port {port}: {}", errno.name());
            errno as i32
        }
    };
    let offset = std::mem::offset_of!(protocol::boot::SharedInfo, vcpu)
        + vcpu as usize * std::mem::size_of::<protocol::boot::VcpuInfo>()
        + std::mem::offset_of!(protocol::boot::VcpuInfo, send_status);
    domain.ram.write_u32(
        protocol::memory::SHARED_INFO_ADDR + offset as u64,
        status as u32,
    );
}
