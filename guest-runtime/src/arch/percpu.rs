//! Per-vCPU data, reachable from ring 3 through the FS segment base.

use protocol::domain::MAX_VCPUS;

/// Data private to one vCPU. Ring 0 points FS at it; ring 3 reads it with
/// an `fs:`-relative load.
#[repr(C)]
pub struct PerCpu {
    /// This vCPU's index (0 is the boot vCPU).
    pub index: u64,
}

/// One [`PerCpu`] per vCPU.
pub(crate) static mut PERCPU: [PerCpu; MAX_VCPUS] = [const { PerCpu { index: 0 } }; MAX_VCPUS];

/// The index of the vCPU running this code (works in ring 0 and ring 3).
#[inline(always)]
pub fn cpu_index() -> usize {
    let index: u64;
    // SAFETY: FS points at this vCPU's PerCpu from the first ring-0
    // instructions on; `index` is its first field.
    unsafe {
        core::arch::asm!("mov {0}, qword ptr fs:[0]", out(reg) index, options(nostack, readonly, preserves_flags))
    };
    index as usize
}
