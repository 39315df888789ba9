//! Hypercalls: an 8-byte read of the hypercall page (see
//! [`protocol::hypercall`] for the ABI).

use protocol::boot::SharedInfo;
use protocol::domain::{DomId, ShutdownReason};
use protocol::hypercall::{DomainInfo, Errno, Op};
use protocol::memory::{HYPERCALL_ADDR, SHARED_INFO_ADDR};
use protocol::report::Report;

/// Issues hypercall `op` with up to four arguments and returns the raw
/// result (negative: an [`Errno`]).
pub fn raw(op: Op, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    let result: i64;
    // SAFETY: the hypercall page is MMIO with no RAM behind it; the read
    // exits to the core, which fills `rax`. Memory the arguments point at
    // is only read or written by the core while this vCPU is stopped.
    unsafe {
        core::arch::asm!(
            "mov rax, qword ptr [{page}]",
            page = in(reg) HYPERCALL_ADDR,
            out("rax") result,
            in("rdi") op as u64,
            in("rsi") a1,
            in("rdx") a2,
            in("r10") a3,
            in("r8") a4,
            options(nostack),
        );
    }
    result
}

/// Turns a raw result into `Ok(value)` or the error it names.
pub fn check(result: i64) -> Result<u64, Errno> {
    if result >= 0 {
        Ok(result as u64)
    } else {
        Err(Errno::from_raw(result).unwrap_or(Errno::Inval))
    }
}

/// Appends bytes to this domain's console.
pub fn console_write(bytes: &[u8]) {
    for chunk in bytes.chunks(protocol::hypercall::MAX_CONSOLE_WRITE as usize) {
        raw(
            Op::ConsoleWrite,
            chunk.as_ptr() as u64,
            chunk.len() as u64,
            0,
            0,
        );
    }
}

/// Privileged: appends bytes to domain `domid`'s console (Dom0's console
/// backend relaying a guest's output).
pub fn console_write_for(domid: protocol::domain::DomId, bytes: &[u8]) -> Result<(), Errno> {
    for chunk in bytes.chunks(protocol::hypercall::MAX_CONSOLE_WRITE as usize) {
        check(raw(
            Op::ConsoleWriteFor,
            domid as u64,
            chunk.as_ptr() as u64,
            chunk.len() as u64,
            0,
        ))?;
    }
    Ok(())
}

/// Gives the host CPU away for a moment.
pub fn sched_yield() {
    raw(Op::SchedYield, 0, 0, 0, 0);
}

/// Stops this domain with `reason` and a message (shown for a crash).
pub fn shutdown(reason: ShutdownReason, message: &[u8]) -> ! {
    raw(
        Op::SchedShutdown,
        reason as u64,
        message.as_ptr() as u64,
        message.len() as u64,
        0,
    );
    // The core stops every vCPU of a domain that shut down; if it ever
    // returns, sleep forever.
    loop {
        crate::event::wait_until(0);
    }
}

/// Hands a workload result to the toolstack.
pub fn report(report: &Report) -> Result<(), Errno> {
    let mut buf = [0u8; 512];
    let bytes = report.encode(&mut buf).ok_or(Errno::NoSpc)?;
    check(raw(
        Op::Report,
        bytes.as_ptr() as u64,
        bytes.len() as u64,
        0,
        0,
    ))
    .map(|_| ())
}

/// Privileged: reads the core's view of domain `domid`.
pub fn domain_info(domid: DomId) -> Result<DomainInfo, Errno> {
    let mut info = DomainInfo::default();
    check(raw(
        Op::DomctlGetDomainInfo,
        domid as u64,
        &mut info as *mut DomainInfo as u64,
        0,
        0,
    ))?;
    Ok(info)
}

/// The page this domain shares with the core.
pub fn shared_info() -> &'static SharedInfo {
    // SAFETY: the core maps a SharedInfo at this address in every domain;
    // the fields both sides write are read and written with volatile or
    // atomic accesses.
    unsafe { &*(SHARED_INFO_ADDR as *const SharedInfo) }
}
