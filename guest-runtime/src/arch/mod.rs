//! x86-64 specifics: entry, descriptor tables, local APIC, per-CPU data.
//!
//! Everything in this module except [`percpu`] runs in ring 0, where this
//! machine emulates every instruction. The rules that follow: do the least
//! possible, never touch SSE (the emulator stops the VM on `xorps`), and
//! keep interrupt stubs to a handful of instructions.

pub mod apic;
pub mod entry;
pub mod gdt;
pub mod idt;
pub mod percpu;

/// Writes a model-specific register (ring 0 only).
///
/// # Safety
/// The caller runs in ring 0 and `msr` accepts `value`.
#[inline(always)]
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees ring 0 and a valid MSR write.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") msr, in("eax") value as u32,
            in("edx") (value >> 32) as u32, options(nostack, preserves_flags));
    }
}

/// Reads a model-specific register (ring 0 only).
///
/// # Safety
/// The caller runs in ring 0 and `msr` exists.
#[inline(always)]
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller guarantees ring 0 and an existing MSR.
    unsafe {
        core::arch::asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi,
            options(nostack, preserves_flags));
    }
    (hi as u64) << 32 | lo as u64
}

/// The privilege level the CPU runs at now (0 or 3).
pub fn current_ring() -> u16 {
    let cs: u16;
    // SAFETY: reading CS has no side effects.
    unsafe { core::arch::asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack)) };
    cs & 3
}
