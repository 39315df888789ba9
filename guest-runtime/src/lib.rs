//! The runtime both guest kernels stand on (in the spirit of Xen's Mini-OS).
//!
//! Read it in this order:
//!
//! 1. [`arch::entry`]: `_start`, where the core drops each vCPU in 64-bit
//!    mode, and the switch to ring 3;
//! 2. [`arch::gdt`], [`arch::idt`], [`arch::apic`]: the ring-0 setup, kept
//!    tiny because this machine emulates guest ring 0 (about 1 µs per
//!    instruction) while ring 3 runs natively;
//! 3. [`event`]: how ring 3 waits (`sti; hlt` in a two-instruction ring-0
//!    gate) and collects what the interrupt stubs noted;
//! 4. [`hypercall`], [`evtchn`], [`console`], [`time`], [`heap`], [`panic`], [`trace`].
//!
//! A kernel provides `fn main(&'static BootInfo)` and names it with
//! [`entry!`]; the runtime calls it on vCPU 0, in ring 3, with the heap
//! ready. Other vCPUs idle.
#![no_std]
#![deny(missing_docs)]

extern crate alloc;

pub mod arch;
pub mod console;
pub mod control;
pub mod event;
pub mod evtchn;
pub mod heap;
pub mod hypercall;
mod mem;
pub mod panic;
pub mod time;
pub mod trace;

pub use protocol;
pub use protocol::boot::BootInfo;

/// Names the kernel's main function: `entry!(main)` with
/// `fn main(boot: &'static BootInfo) -> !`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// Called by the runtime on vCPU 0, in ring 3.
        #[no_mangle]
        pub extern "Rust" fn __guest_main(boot: &'static $crate::BootInfo) -> ! {
            $main(boot)
        }
    };
}
