//! The local x2APIC: interrupt delivery, EOI and the TSC-deadline timer.

use super::{rdmsr, wrmsr};
use protocol::evtchn::TIMER_VECTOR;

const IA32_APIC_BASE: u32 = 0x1B;
const X2APIC_TPR: u32 = 0x808;
const X2APIC_SVR: u32 = 0x80F;
const X2APIC_LVT_TIMER: u32 = 0x832;
const APIC_ENABLE: u64 = 1 << 11;
const X2APIC_ENABLE: u64 = 1 << 10;
const TSC_DEADLINE_MODE: u64 = 0b10 << 17;

/// Switches this vCPU's local APIC to x2APIC mode, accepts every priority,
/// and points the timer at [`TIMER_VECTOR`] in TSC-deadline mode (the wait
/// gate arms it).
///
/// # Safety
/// Ring 0, once per vCPU.
#[link_section = ".text.ring0"]
pub unsafe fn init() {
    // SAFETY: ring 0 per the contract; these MSRs exist with an in-kernel
    // local APIC that advertises x2APIC and TSC deadline.
    unsafe {
        let base = rdmsr(IA32_APIC_BASE);
        wrmsr(IA32_APIC_BASE, base | APIC_ENABLE | X2APIC_ENABLE);
        wrmsr(X2APIC_SVR, 0x100 | super::idt::SPURIOUS_VECTOR as u64);
        wrmsr(X2APIC_TPR, 0);
        wrmsr(X2APIC_LVT_TIMER, TIMER_VECTOR as u64 | TSC_DEADLINE_MODE);
    }
}
