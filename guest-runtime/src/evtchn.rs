//! Event channels: Xen's operations on top of the hypercalls and the
//! doorbell (see [`protocol::evtchn`]).

use crate::hypercall::{check, raw, shared_info};
use protocol::domain::DomId;
use protocol::evtchn::PortStatus;
use protocol::hypercall::{Errno, Op};
use protocol::memory::DOORBELL_ADDR;

/// Allocates a port that domain `remote` may bind to.
pub fn alloc_unbound(remote: DomId) -> Result<u32, Errno> {
    check(raw(Op::EvtchnAllocUnbound, remote as u64, 0, 0, 0)).map(|port| port as u32)
}

/// Connects a new local port to `remote_port` of domain `remote`.
pub fn bind_interdomain(remote: DomId, remote_port: u32) -> Result<u32, Errno> {
    check(raw(
        Op::EvtchnBindInterdomain,
        remote as u64,
        remote_port as u64,
        0,
        0,
    ))
    .map(|port| port as u32)
}

/// Closes a local port.
pub fn close(port: u32) -> Result<(), Errno> {
    check(raw(Op::EvtchnClose, port as u64, 0, 0, 0)).map(|_| ())
}

/// What a port is connected to: its status, the remote domain and port.
pub fn status(port: u32) -> Result<(PortStatus, DomId, u32), Errno> {
    let raw_status = check(raw(Op::EvtchnStatus, port as u64, 0, 0, 0))?;
    PortStatus::unpack(raw_status).ok_or(Errno::Inval)
}

/// Notifies the remote end of `port`.
///
/// For a bound port this is one store that KVM turns into an interrupt in
/// the remote domain; for any other port the store exits to the core,
/// which leaves the error in this vCPU's `send_status`.
pub fn send(port: u32) -> Result<(), Errno> {
    let status = &shared_info().vcpu[crate::arch::percpu::cpu_index()].send_status;
    let status = status as *const i32 as *mut i32;
    // SAFETY: `status` is this vCPU's field of the shared page; the
    // doorbell is MMIO that either KVM or the core completes.
    unsafe {
        status.write_volatile(0);
        (DOORBELL_ADDR as *mut u32).write_volatile(port);
        match status.read_volatile() {
            0 => Ok(()),
            err => Err(Errno::from_raw(err as i64).unwrap_or(Errno::Inval)),
        }
    }
}
