//! Global descriptor table and one task-state segment per vCPU.
//!
//! Selectors: `0x08` kernel code, `0x10` kernel data, `0x1B` user data,
//! `0x23` user code, `0x28 + 16 * cpu` the vCPU's TSS. The TSS holds the
//! interrupt stacks (IST): every vector switches to one, because the
//! precompiled `core` library uses the red zone below RSP.

use core::ptr::addr_of_mut;
use protocol::domain::MAX_VCPUS;

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data selector.
pub const KERNEL_DS: u16 = 0x10;
/// User data selector (RPL 3).
pub const USER_DS: u16 = 0x18 | 3;
/// User code selector (RPL 3).
pub const USER_CS: u16 = 0x20 | 3;
const TSS_BASE_SELECTOR: u16 = 0x28;

/// Interrupt-stack slots, numbered as the IDT's IST field counts them.
pub mod ist {
    /// CPU exceptions (which end the domain).
    pub const EXCEPTION: u8 = 1;
    /// External interrupts: timer, event channels, control.
    pub const INTERRUPT: u8 = 2;
    /// Double fault, NMI and machine check.
    pub const CRITICAL: u8 = 3;
}

const IST_STACK_SIZE: usize = 16 * 1024;
const IST_SLOTS: usize = 3;

#[repr(C, align(16))]
struct IstStacks([[u8; IST_STACK_SIZE]; IST_SLOTS]);

static mut IST_STACKS: [IstStacks; MAX_VCPUS] =
    [const { IstStacks([[0; IST_STACK_SIZE]; IST_SLOTS]) }; MAX_VCPUS];

/// The 64-bit TSS (Intel SDM Vol. 3, 8.7) as 26 dwords: its 64-bit fields
/// sit at 4-byte offsets, so they are written as dword pairs.
#[repr(C, align(16))]
struct Tss([u32; 26]);

/// Dword index of IST slot 1 in the TSS (byte offset 36).
const TSS_IST1: usize = 9;
/// Dword holding the I/O map base in its high half (byte offset 100).
const TSS_IOMAP: usize = 25;
const TSS_SIZE: u64 = 104;

static mut TSS: [Tss; MAX_VCPUS] = [const { Tss([0; 26]) }; MAX_VCPUS];

const GDT_ENTRIES: usize = 5 + 2 * MAX_VCPUS;
static mut GDT: [u64; GDT_ENTRIES] = [0; GDT_ENTRIES];

#[repr(C, packed)]
pub(crate) struct DescriptorPointer {
    pub(crate) limit: u16,
    pub(crate) base: u64,
}

/// Builds this vCPU's TSS, loads the shared GDT and the TSS.
///
/// # Safety
/// Ring 0, once per vCPU, before interrupts are enabled.
#[link_section = ".text.ring0"]
pub unsafe fn init(cpu: usize) {
    // SAFETY: each vCPU touches only its own TSS and its own GDT slots;
    // the shared entries are written with identical values by every vCPU.
    // Volatile stores keep the compiler from vectorising (no SSE in ring 0).
    unsafe {
        let gdt = addr_of_mut!(GDT) as *mut u64;
        gdt.add(1).write_volatile(0x00AF_9A00_0000_FFFF); // kernel code, 64-bit
        gdt.add(2).write_volatile(0x00CF_9200_0000_FFFF); // kernel data
        gdt.add(3).write_volatile(0x00CF_F200_0000_FFFF); // user data, DPL 3
        gdt.add(4).write_volatile(0x00AF_FA00_0000_FFFF); // user code, 64-bit, DPL 3

        let tss = addr_of_mut!(TSS[cpu]) as *mut u32;
        let stacks = addr_of_mut!(IST_STACKS[cpu]) as u64;
        let mut slot = 0;
        while slot < IST_SLOTS {
            let top = stacks + ((slot + 1) * IST_STACK_SIZE) as u64;
            tss.add(TSS_IST1 + 2 * slot).write_volatile(top as u32);
            tss.add(TSS_IST1 + 2 * slot + 1)
                .write_volatile((top >> 32) as u32);
            slot += 1;
        }
        // No I/O permission bitmap: ring 3 may use no port.
        tss.add(TSS_IOMAP).write_volatile((TSS_SIZE as u32) << 16);
        let base = tss as u64;
        let limit = TSS_SIZE - 1;
        let index = 5 + 2 * cpu;
        // Available 64-bit TSS (type 9), present.
        let low = (limit & 0xFFFF)
            | (base & 0xFF_FFFF) << 16
            | 0x89 << 40
            | ((limit >> 16) & 0xF) << 48
            | ((base >> 24) & 0xFF) << 56;
        gdt.add(index).write_volatile(low);
        gdt.add(index + 1).write_volatile(base >> 32);

        let gdt_base = gdt as u64;
        let pointer = DescriptorPointer {
            limit: (GDT_ENTRIES * 8 - 1) as u16,
            base: gdt_base,
        };
        core::arch::asm!(
            "lgdt [{ptr}]",
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {ds:e}",
            "mov es, {ds:e}",
            "mov ss, {ds:e}",
            "ltr {tr:x}",
            ptr = in(reg) &pointer,
            cs = in(reg) KERNEL_CS as u64,
            ds = in(reg) KERNEL_DS as u32,
            tr = in(reg) TSS_BASE_SELECTOR + 16 * cpu as u16,
            tmp = out(reg) _,
        );
    }
}
