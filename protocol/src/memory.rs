//! The guest-physical memory map.
//!
//! Every domain sees the same layout. RAM starts at guest-physical 0; the
//! core builds the boot structures in the first pages, loads the kernel at
//! [`KERNEL_BASE`], and leaves the rest for the kernel. The top of the low
//! 4 GiB is a hole with no RAM behind it: accesses there exit from the guest
//! (hypercalls) or are caught by KVM itself (doorbells).
//!
//! ```text
//! 0x0000_0000  unused (null guard page)
//! 0x0000_1000  page tables built by the core (PML4, PDPT, 4 page directories)
//! 0x0000_7000  BootInfo            (read-only by convention)
//! 0x0000_8000  SharedInfo          (written by both the core and the guest)
//! 0x0000_9000  boot GDT            (the kernel loads its own)
//! 0x0010_0000  kernel image, then free RAM up to the domain's memory size
//! 0xEFFF_F000  Dom0 only: hardware-queue submit page (MMIO: exits to the core)
//! 0xF000_0000  hypercall page      (MMIO: every access exits to the core)
//! 0xF000_1000  event-channel doorbell (MMIO: caught by KVM ioeventfds)
//! ```

/// Size of a page.
pub const PAGE_SIZE: u64 = 0x1000;

/// Guest-physical address of the top-level page table (PML4).
pub const PML4_ADDR: u64 = 0x1000;
/// Guest-physical address of the page-directory-pointer table.
pub const PDPT_ADDR: u64 = 0x2000;
/// Guest-physical address of the first of four page directories, which map
/// the low 4 GiB with 2 MiB pages.
pub const PD_ADDR: u64 = 0x3000;
/// Number of bytes the core identity-maps for the kernel (the low 4 GiB).
pub const IDENTITY_MAPPED_BYTES: u64 = 4 << 30;

/// Guest-physical address of the [`crate::boot::BootInfo`] page.
pub const BOOT_INFO_ADDR: u64 = 0x7000;
/// Guest-physical address of the [`crate::boot::SharedInfo`] page.
pub const SHARED_INFO_ADDR: u64 = 0x8000;
/// Guest-physical address of the GDT the core boots the kernel with.
pub const BOOT_GDT_ADDR: u64 = 0x9000;

/// Lowest address a kernel segment may be loaded at (1 MiB).
pub const KERNEL_BASE: u64 = 0x10_0000;

/// Smallest RAM a domain can have, in MiB.
pub const MIN_RAM_MIB: u64 = 4;
/// Largest RAM a domain can have, in MiB: RAM must end below [`MMIO_BASE`].
pub const MAX_RAM_MIB: u64 = MMIO_BASE >> 20;

/// Start of the MMIO hole: no RAM is ever placed at or above this address
/// in the low 4 GiB.
pub const MMIO_BASE: u64 = 0xE000_0000;

/// Guest-physical address of the hypercall page. An 8-byte read of it is a
/// hypercall; see [`crate::hypercall`].
pub const HYPERCALL_ADDR: u64 = 0xF000_0000;

/// Guest-physical address of Domain-0's hardware-queue submit register,
/// the doorbell of a queue lent in the *exit* mode: a 4-byte write of the
/// queue's port exits to the core's user space, whose vCPU thread submits
/// the queue's SQEs (`io_uring_enter`) before the write completes. The
/// last page of the device part of the MMIO hole; guests have nothing
/// there.
pub const QUEUE_SUBMIT_ADDR: u64 = 0xEFFF_F000;

/// Guest-physical address of the event-channel doorbell. A 4-byte write of
/// a port number to it is `send(port)`; see [`crate::evtchn`].
pub const DOORBELL_ADDR: u64 = 0xF000_1000;
