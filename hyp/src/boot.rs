//! The state a kernel starts in: identity page tables, a boot GDT, the
//! boot-info page, and each vCPU's registers in 64-bit long mode.
//!
//! See [`protocol::boot`] for the contract this implements.

use crate::error::{kvm, Result};
use crate::memory::GuestRam;
use kvm_bindings::{kvm_mp_state, kvm_regs, kvm_segment, CpuId, KVM_MP_STATE_RUNNABLE};
use kvm_ioctls::VcpuFd;
use protocol::boot::BootInfo;
use protocol::memory::{BOOT_GDT_ADDR, BOOT_INFO_ADDR, PDPT_ADDR, PD_ADDR, PML4_ADDR};

/// CR0: PE, MP, ET, NE, WP, PG.
const CR0: u64 = 0x8001_0033;
/// CR4: PAE, OSFXSR, OSXMMEXCPT (SSE usable).
const CR4: u64 = 0x620;
/// EFER: LME, LMA, NXE.
const EFER: u64 = 0xD00;
/// Page-table entry bits: present, writable, user.
const PTE_PRESENT_RW_USER: u64 = 0x7;
/// Page-directory entry bit for a 2 MiB page.
const PDE_LARGE: u64 = 0x80;
const CODE_SELECTOR: u16 = 0x08;
const DATA_SELECTOR: u16 = 0x10;
const TSS_SELECTOR: u16 = 0x28;

/// Writes the page tables (identity map of the low 4 GiB, 2 MiB pages,
/// user-accessible) and the boot GDT into `ram`.
pub fn write_tables(ram: &GuestRam) -> bool {
    let mut ok = ram.write(PML4_ADDR, &(PDPT_ADDR | PTE_PRESENT_RW_USER).to_le_bytes());
    for gib in 0..4u64 {
        let pd = PD_ADDR + gib * 0x1000;
        ok &= ram.write(
            PDPT_ADDR + gib * 8,
            &(pd | PTE_PRESENT_RW_USER).to_le_bytes(),
        );
        let entries: Vec<u8> = (0..512u64)
            .flat_map(|i| {
                (((gib << 30) + (i << 21)) | PTE_PRESENT_RW_USER | PDE_LARGE).to_le_bytes()
            })
            .collect();
        ok &= ram.write(pd, &entries);
    }
    let gdt: [u64; 4] = [0, 0x00AF_9A00_0000_FFFF, 0x00CF_9200_0000_FFFF, 0];
    let gdt_bytes: Vec<u8> = gdt.iter().flat_map(|d| d.to_le_bytes()).collect();
    ok & ram.write(BOOT_GDT_ADDR, &gdt_bytes)
}

/// Writes the boot-info page.
pub fn write_boot_info(ram: &GuestRam, info: &BootInfo) -> bool {
    ram.write_struct(BOOT_INFO_ADDR, info)
}

fn segment(selector: u16, type_: u8, long: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xFFFF_FFFF,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db: u8::from(!long),
        s: 1,
        l: u8::from(long),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Puts vCPU `index` at `entry` in 64-bit mode with the boot-protocol
/// registers, and gives it the CPUID it is to see.
pub fn setup_vcpu(vcpu: &VcpuFd, index: u8, entry: u64, cpuid: &CpuId) -> Result<()> {
    let mut cpuid = cpuid.clone();
    for leaf in cpuid.as_mut_slice() {
        match leaf.function {
            1 => {
                // x2APIC and TSC-deadline timer; initial APIC id = index.
                leaf.ecx |= 1 << 21 | 1 << 24;
                leaf.ebx = (leaf.ebx & 0x00FF_FFFF) | (index as u32) << 24;
            }
            0xB | 0x1F => leaf.edx = index as u32,
            _ => {}
        }
    }
    vcpu.set_cpuid2(&cpuid).map_err(kvm("KVM_SET_CPUID2"))?;

    let mut sregs = vcpu.get_sregs().map_err(kvm("KVM_GET_SREGS"))?;
    sregs.cr0 = CR0;
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 = CR4;
    sregs.efer = EFER;
    sregs.cs = segment(CODE_SELECTOR, 0xB, true);
    let data = segment(DATA_SELECTOR, 0x3, false);
    (sregs.ds, sregs.es, sregs.ss, sregs.fs, sregs.gs) = (data, data, data, data, data);
    sregs.gdt.base = BOOT_GDT_ADDR;
    sregs.gdt.limit = 4 * 8 - 1;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    // A busy 64-bit TSS: KVM insists on a valid TR in long mode.
    sregs.tr = kvm_segment {
        base: 0,
        limit: 0x67,
        selector: TSS_SELECTOR,
        type_: 0xB,
        s: 0,
        db: 0,
        l: 0,
        g: 0,
        ..data
    };
    vcpu.set_sregs(&sregs).map_err(kvm("KVM_SET_SREGS"))?;

    let regs = kvm_regs {
        rip: entry,
        rdi: BOOT_INFO_ADDR,
        rsi: index as u64,
        rflags: 0x2,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(kvm("KVM_SET_REGS"))?;
    if index > 0 {
        // Secondary vCPUs start directly too, not waiting for INIT/SIPI.
        vcpu.set_mp_state(kvm_mp_state {
            mp_state: KVM_MP_STATE_RUNNABLE,
        })
        .map_err(kvm("KVM_SET_MP_STATE"))?;
    }
    Ok(())
}
