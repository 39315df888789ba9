//! Interrupt descriptor tables, one per vCPU, and the interrupt stubs.
//!
//! Three kinds of vector:
//!
//! * **exceptions** (0-31) end the domain: the stub records the frame and
//!   calls [`exception_handler`], which reports a crash by hypercall;
//! * **interrupts** (0x20-0xFE: timer, control, event-channel ports): the
//!   stub sets the vector's bit in this vCPU's [`crate::event::PENDING`] bitmap, EOIs the
//!   x2APIC and returns: three instructions of work in emulated ring 0;
//! * the **wait gate**: ring 3 executes the `ud2` at `guest_wait`; the
//!   #UD handler recognises that address and, if nothing is pending,
//!   optionally arms the TSC-deadline timer, then does `sti; hlt`. (On this
//!   machine's PVM neither `int n` nor `syscall` from ring 3 reaches ring 0,
//!   but exceptions do.)
//!
//! Every vector runs on an IST stack (see [`super::gdt::ist`]).

use super::gdt::{ist, KERNEL_CS};
use core::ptr::addr_of_mut;
use protocol::domain::MAX_VCPUS;

/// Spurious-interrupt vector programmed into the x2APIC.
pub const SPURIOUS_VECTOR: u8 = 0xFF;

core::arch::global_asm!(
    ".section .text.ring0.stubs, \"ax\"",
    // Interrupt stubs: note the vector, then EOI and return.
    ".macro IRQ_STUBS cpu",
    ".set vec, 0x20",
    ".rept 224",
    ".balign 16",
    "lock bts qword ptr [rip + {pending} + \\cpu * 64 + (vec / 64) * 8], (vec % 64)",
    "jmp guest_irq_common",
    ".set vec, vec + 1",
    ".endr",
    ".endm",
    // The wait gate: the #UD handler of each vCPU. A `ud2` at
    // `guest_wait` (and only there) means "sleep unless something is
    // pending"; any other #UD is a crash like every exception.
    ".macro WAIT_GATE cpu",
    "push rax",
    "lea rax, [rip + guest_wait]",
    "cmp rax, qword ptr [rsp + 8]", // the faulting RIP
    "jne 3f",
    "push rcx",
    "push rdx",
    "mov rax, qword ptr [rip + {pending} + \\cpu * 64]",
    "or rax, qword ptr [rip + {pending} + \\cpu * 64 + 8]",
    "or rax, qword ptr [rip + {pending} + \\cpu * 64 + 16]",
    "or rax, qword ptr [rip + {pending} + \\cpu * 64 + 24]",
    "jnz 1f",
    "test rdi, rdi",
    "jz 2f",
    "mov ecx, 0x6E0", // IA32_TSC_DEADLINE
    "mov eax, edi",
    "mov rdx, rdi",
    "shr rdx, 32",
    "wrmsr",
    "2:",
    "sti",
    "hlt",
    "cli",
    "1:",
    "pop rdx",
    "pop rcx",
    "pop rax",
    "add qword ptr [rsp], 2", // resume after the ud2
    "iretq",
    "3:",
    "pop rax",
    "push 0",
    "push 6",
    "jmp guest_exception_common",
    ".endm",
    ".macro EXC vec, has_error",
    ".balign 16",
    ".if \\has_error == 0",
    "push 0",
    ".endif",
    "push \\vec",
    "jmp guest_exception_common",
    ".endm",
    "",
    ".global guest_irq_stubs0",
    "guest_irq_stubs0:",
    "IRQ_STUBS 0",
    ".global guest_irq_stubs1",
    "guest_irq_stubs1:",
    "IRQ_STUBS 1",
    ".global guest_wait_gate0",
    "guest_wait_gate0:",
    "WAIT_GATE 0",
    ".global guest_wait_gate1",
    "guest_wait_gate1:",
    "WAIT_GATE 1",
    "guest_irq_common:",
    "push rax",
    "push rcx",
    "push rdx",
    "mov ecx, 0x80B", // x2APIC EOI
    "xor eax, eax",
    "xor edx, edx",
    "wrmsr",
    "pop rdx",
    "pop rcx",
    "pop rax",
    ".global guest_spurious",
    "guest_spurious:",
    "iretq",
    // Ring 3 calls this with the deadline in rdi; every register survives.
    ".global guest_wait",
    "guest_wait:",
    "ud2",
    "ret",
    ".global guest_exception_stubs",
    ".balign 16",
    "guest_exception_stubs:",
    "EXC 0, 0", "EXC 1, 0", "EXC 2, 0", "EXC 3, 0", "EXC 4, 0", "EXC 5, 0", "EXC 6, 0", "EXC 7, 0",
    "EXC 8, 1", "EXC 9, 0", "EXC 10, 1", "EXC 11, 1", "EXC 12, 1", "EXC 13, 1", "EXC 14, 1", "EXC 15, 0",
    "EXC 16, 0", "EXC 17, 1", "EXC 18, 0", "EXC 19, 0", "EXC 20, 0", "EXC 21, 1", "EXC 22, 0", "EXC 23, 0",
    "EXC 24, 0", "EXC 25, 0", "EXC 26, 0", "EXC 27, 0", "EXC 28, 0", "EXC 29, 1", "EXC 30, 1", "EXC 31, 0",
    "guest_exception_common:",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {handler}",
    "ud2",
    pending = sym crate::event::PENDING,
    handler = sym super::super::panic::exception_handler,
);

extern "C" {
    static guest_irq_stubs0: u8;
    static guest_irq_stubs1: u8;
    static guest_wait_gate0: u8;
    static guest_wait_gate1: u8;
    static guest_spurious: u8;
    static guest_exception_stubs: u8;
}

const STUB_SIZE: u64 = 16;
/// The #UD vector, which doubles as the wait gate.
const INVALID_OPCODE: u64 = 6;
static mut IDT: [[u64; 512]; MAX_VCPUS] = [[0; 512]; MAX_VCPUS];

/// Builds and loads this vCPU's IDT.
///
/// # Safety
/// Ring 0, once per vCPU, after [`super::gdt::init`].
#[link_section = ".text.ring0"]
pub unsafe fn init(cpu: usize) {
    // SAFETY: the stub symbols are defined above; each vCPU writes only its
    // own table, with volatile stores (no SSE in ring 0).
    unsafe {
        let (irq, gate) = if cpu == 0 {
            (
                &raw const guest_irq_stubs0 as u64,
                &raw const guest_wait_gate0 as u64,
            )
        } else {
            (
                &raw const guest_irq_stubs1 as u64,
                &raw const guest_wait_gate1 as u64,
            )
        };
        let exceptions = &raw const guest_exception_stubs as u64;
        let table = addr_of_mut!(IDT[cpu]) as *mut u64;
        let mut vector: u64 = 0;
        while vector < 256 {
            let (handler, stack) = if vector == INVALID_OPCODE {
                (gate, ist::EXCEPTION)
            } else if vector < 32 {
                let stack = match vector {
                    2 | 8 | 18 => ist::CRITICAL,
                    _ => ist::EXCEPTION,
                };
                (exceptions + vector * STUB_SIZE, stack)
            } else if vector == SPURIOUS_VECTOR as u64 {
                (&raw const guest_spurious as u64, ist::INTERRUPT)
            } else {
                (irq + (vector - 32) * STUB_SIZE, ist::INTERRUPT)
            };
            let low = (handler & 0xFFFF)
                | (KERNEL_CS as u64) << 16
                | (stack as u64) << 32
                | 0x8E << 40 // present interrupt gate, DPL 0
                | ((handler >> 16) & 0xFFFF) << 48;
            table.add(2 * vector as usize).write_volatile(low);
            table
                .add(2 * vector as usize + 1)
                .write_volatile(handler >> 32);
            vector += 1;
        }
        let pointer = super::gdt::DescriptorPointer {
            limit: 256 * 16 - 1,
            base: table as u64,
        };
        core::arch::asm!("lidt [{0}]", in(reg) &pointer, options(readonly, nostack, preserves_flags));
    }
}
