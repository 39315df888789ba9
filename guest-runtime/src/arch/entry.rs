//! Where each vCPU starts, and the drop from ring 0 to ring 3.
//!
//! The core enters `_start` in long mode with `rdi` = boot info and `rsi` =
//! vCPU index. `_start` takes the vCPU's boot stack and calls
//! [`ring0_main`], which sets up this vCPU (per-CPU pointer, GDT/TSS, IDT,
//! x2APIC) and `iretq`s to [`ring3_main`]. From then on the vCPU runs in
//! ring 3 and only enters ring 0 through interrupts and the wait gate.

use super::gdt::{USER_CS, USER_DS};
use super::percpu::PERCPU;
use core::ptr::addr_of_mut;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use protocol::boot::BootInfo;
use protocol::domain::MAX_VCPUS;

const BOOT_STACK_SIZE: usize = 16 * 1024;
/// vCPU 0 runs the kernel's main loop on this stack.
const MAIN_STACK_SIZE: usize = 256 * 1024;
/// The other vCPUs only wait for events: a small stack each, so that a
/// kernel built for [`MAX_VCPUS`] stays small.
const AP_STACK_SIZE: usize = 32 * 1024;
const IA32_FS_BASE: u32 = 0xC000_0100;
/// RFLAGS for ring 3: interrupts on, reserved bit 1 set.
const USER_RFLAGS: u64 = 0x202;

#[repr(C, align(16))]
struct Stack<const N: usize>([u8; N]);

static mut BOOT_STACKS: [Stack<BOOT_STACK_SIZE>; MAX_VCPUS] =
    [const { Stack([0; BOOT_STACK_SIZE]) }; MAX_VCPUS];
static mut MAIN_STACK: Stack<MAIN_STACK_SIZE> = Stack([0; MAIN_STACK_SIZE]);
static mut AP_STACKS: [Stack<AP_STACK_SIZE>; MAX_VCPUS - 1] =
    [const { Stack([0; AP_STACK_SIZE]) }; MAX_VCPUS - 1];

/// Set by vCPU 0 once the heap and clock are ready for the others.
static BOOT_CPU_READY: AtomicBool = AtomicBool::new(false);

/// Bit `i` is set once vCPU `i` has set itself up and reached ring 3.
static ONLINE: AtomicU32 = AtomicU32::new(0);
const _: () = assert!(MAX_VCPUS <= 32, "ONLINE has a bit per vCPU");

/// The vCPUs that have come up so far: bit `i` for vCPU `i`.
pub fn online_vcpus() -> u32 {
    ONLINE.load(Ordering::Acquire)
}

core::arch::global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    "cli",
    "lea rsp, [rip + {stacks}]",
    "lea rax, [rsi + 1]",
    "shl rax, 14", // * BOOT_STACK_SIZE
    "add rsp, rax",
    "call {main}",
    "ud2",
    stacks = sym BOOT_STACKS,
    main = sym ring0_main,
);

/// Ring-0 setup of one vCPU; never returns.
#[link_section = ".text.ring0"]
unsafe extern "C" fn ring0_main(boot: *const BootInfo, cpu: usize) -> ! {
    if cpu >= MAX_VCPUS {
        crate::panic::ring0_fatal(b"vCPU index out of range");
    }
    // SAFETY: ring 0 at boot; each vCPU sets up only its own state.
    unsafe {
        let percpu = addr_of_mut!(PERCPU[cpu]);
        addr_of_mut!((*percpu).index).write_volatile(cpu as u64);
        // A null FS selector survives the drop to ring 3 unchanged.
        core::arch::asm!("mov fs, {0:x}", in(reg) 0u16, options(nostack, preserves_flags));
        super::wrmsr(IA32_FS_BASE, percpu as u64);
        super::gdt::init(cpu);
        super::idt::init(cpu);
        super::apic::init();
        let stack_top = match cpu {
            0 => addr_of_mut!(MAIN_STACK) as u64 + MAIN_STACK_SIZE as u64,
            _ => addr_of_mut!(AP_STACKS[cpu - 1]) as u64 + AP_STACK_SIZE as u64,
        };
        core::arch::asm!(
            "push {ss}",
            "push {rsp}",
            "push {rflags}",
            "push {cs}",
            "push {rip}",
            "iretq",
            ss = in(reg) USER_DS as u64,
            rsp = in(reg) stack_top - 8,
            rflags = in(reg) USER_RFLAGS,
            cs = in(reg) USER_CS as u64,
            rip = in(reg) ring3_main as *const () as u64,
            in("rdi") boot,
            in("rsi") cpu,
            options(noreturn),
        );
    }
}

extern "Rust" {
    fn __guest_main(boot: &'static BootInfo) -> !;
}

/// First ring-3 code of each vCPU: vCPU 0 readies the heap and clock and
/// runs the kernel's main; the others wait for it and then idle.
extern "C" fn ring3_main(boot: *const BootInfo, cpu: usize) -> ! {
    // SAFETY: the core placed a BootInfo at this address before entry, and
    // nothing writes it afterwards.
    let boot: &'static BootInfo = unsafe { &*boot };
    ONLINE.fetch_or(1 << cpu, Ordering::Release);
    if cpu == 0 {
        // A core speaking another boot protocol (a kernel built against an
        // older `protocol`, say) would have this kernel misread its devices:
        // stop at once, saying why.
        if boot.magic != protocol::boot::BOOT_MAGIC || boot.version != protocol::boot::BOOT_VERSION
        {
            crate::hypercall::shutdown(
                protocol::domain::ShutdownReason::Crash,
                b"boot info: wrong magic or version for this kernel's boot protocol",
            );
        }
        crate::time::init(boot);
        crate::trace::init(boot);
        crate::heap::init(boot);
        BOOT_CPU_READY.store(true, Ordering::Release);
        // A control request the core sent before this vCPU's local APIC was
        // enabled lost its interrupt; the request itself is in the shared
        // page, so raise it again.
        if crate::control::pending() {
            crate::event::raise(protocol::evtchn::CONTROL_VECTOR);
        }
        // SAFETY: `entry!` defines this function in the kernel.
        unsafe { __guest_main(boot) }
    }
    while !BOOT_CPU_READY.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    loop {
        crate::event::wait_until(0);
    }
}
