//! What the core hands a kernel at boot, and the page they share after.
//!
//! Each vCPU enters the kernel's ELF entry point directly in 64-bit long
//! mode (paging on, identity map of the low 4 GiB with 2 MiB pages, every
//! page user-accessible, SSE enabled), with:
//!
//! * `rdi` = [`crate::memory::BOOT_INFO_ADDR`],
//! * `rsi` = the vCPU index (0 for the boot vCPU),
//! * interrupts disabled, no stack (the kernel picks its own).
//!
//! All structures are `#[repr(C)]` and fixed-size so both sides agree on
//! every byte.

use crate::domain::{DomId, MAX_VCPUS, NAME_MAX};

/// Value of [`BootInfo::magic`]: "HYPBOOT1" in ASCII.
pub const BOOT_MAGIC: u64 = u64::from_le_bytes(*b"HYPBOOT1");

/// Version of the boot protocol described here. Version 2: a guest finds
/// its devices in [`SharedInfo::devices`] (the boot info no longer lists
/// them). Version 3: up to 32 vCPUs, so [`SharedInfo`]'s per-vCPU array
/// grew. Version 4: a device carries an IPv4 address (network devices), and
/// the boot info the domain's name. Version 5: the boot info
/// places the domain's trace ring ([`BootInfo::trace_ring`]).
pub const BOOT_VERSION: u32 = 5;

/// Longest kernel command line, in bytes.
pub const CMDLINE_MAX: usize = 512;

/// [`BootInfo::flags`] bit: this domain is privileged (it is Dom0).
pub const FLAG_PRIVILEGED: u32 = 1;

/// The boot-information page, written by the core before the first vCPU
/// runs (Xen's `start_info`).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct BootInfo {
    /// Always [`BOOT_MAGIC`].
    pub magic: u64,
    /// Always [`BOOT_VERSION`].
    pub version: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// This domain's id.
    pub domid: DomId,
    /// Number of vCPUs the domain has (each enters the kernel).
    pub vcpus: u16,
    /// Length of the command line in [`BootInfo::cmdline`].
    pub cmdline_len: u32,
    /// Bytes of RAM, starting at guest-physical 0.
    pub ram_bytes: u64,
    /// First byte after the loaded kernel image (its `.bss` included),
    /// rounded up to a page: free RAM starts here.
    pub kernel_end: u64,
    /// Time-stamp-counter frequency in kHz, for the kernel's clock.
    pub tsc_khz: u64,
    /// The domain the control channel goes to (Dom0 for a guest).
    pub control_domid: DomId,
    /// Padding.
    pub _pad: u16,
    /// A port that [`BootInfo::control_domid`] allocated unbound for this
    /// domain: bind it with `evtchn_bind_interdomain` to talk to Dom0.
    /// Zero when there is none (Dom0 itself).
    pub control_port: u32,
    /// The kernel command line (UTF-8, not NUL-terminated).
    pub cmdline: [u8; CMDLINE_MAX],
    /// Dom0 only: RAM from here to `ram_bytes` belongs to the core (backend
    /// ring, ioreq pages, hardware-queue rings, foreign-window page
    /// tables); the kernel must not use it. For a guest, the start of its
    /// trace ring.
    pub reserved_start: u64,
    /// Dom0 only: Dom0-physical address of the [`crate::device::BackendRing`].
    pub backend_ring: u64,
    /// Length of the name in [`BootInfo::name`].
    pub name_len: u32,
    /// Padding.
    pub _pad2: u32,
    /// The domain's name at creation (UTF-8, not NUL-terminated), as a Xen
    /// guest reads it from xenstore's `name`.
    pub name: [u8; NAME_MAX],
    /// Guest-physical address of the domain's [`crate::trace::TraceRing`]
    /// (the top of its RAM, which the kernel must not use otherwise).
    pub trace_ring: u64,
    /// Its length in bytes.
    pub trace_ring_bytes: u64,
}

impl BootInfo {
    /// The command line as text; empty if it is not valid UTF-8.
    pub fn cmdline(&self) -> &str {
        let len = (self.cmdline_len as usize).min(CMDLINE_MAX);
        core::str::from_utf8(&self.cmdline[..len]).unwrap_or("")
    }

    /// The domain's name at creation; empty if it is not valid UTF-8.
    pub fn name(&self) -> &str {
        let len = (self.name_len as usize).min(NAME_MAX);
        core::str::from_utf8(&self.name[..len]).unwrap_or("")
    }

    /// True if this domain is the privileged service VM.
    pub fn is_privileged(&self) -> bool {
        self.flags & FLAG_PRIVILEGED != 0
    }
}

/// A request the core puts in [`SharedInfo::control_request`] before it
/// raises [`crate::evtchn::CONTROL_VECTOR`] (Xen's `control/shutdown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ControlRequest {
    /// Nothing asked.
    None = 0,
    /// Shut down cleanly and power off (`xl shutdown`).
    Poweroff = 1,
    /// Shut down cleanly and ask to be restarted (`xl reboot`).
    Reboot = 2,
}

impl ControlRequest {
    /// Decodes the field's value.
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            1 => Self::Poweroff,
            2 => Self::Reboot,
            _ => Self::None,
        }
    }
}

/// Per-vCPU part of [`SharedInfo`].
#[derive(Debug)]
#[repr(C)]
pub struct VcpuInfo {
    /// Outcome of the last doorbell write that exited to the core: 0, or a
    /// negative [`crate::hypercall::Errno`] for a send on a port that is
    /// not open. Sends on bound ports never touch it, so a guest clears it
    /// before ringing and reads it after.
    pub send_status: i32,
    /// Padding.
    pub _pad: u32,
}

/// The page both the core and the guest write (Xen's `shared_info`).
#[derive(Debug)]
#[repr(C)]
pub struct SharedInfo {
    /// Per-vCPU fields.
    pub vcpu: [VcpuInfo; MAX_VCPUS],
    /// A [`ControlRequest`] the core left for the guest.
    pub control_request: u32,
    /// Padding.
    pub _pad: u32,
    /// A counter the guest advances while it makes progress; the core
    /// reports it (a heartbeat, read by tests and `xl list -l`).
    pub progress: u64,
    /// Bumped by the toolstack's device setup (in `hypd`) each time it
    /// writes [`SharedInfo::devices`]: once before the guest first runs,
    /// then on every `xl block-attach` and `xl block-detach`, after which
    /// it raises [`crate::evtchn::CONTROL_VECTOR`]. The core itself never
    /// writes the device table (as Xen's hypervisor leaves a guest's
    /// devices to xenstore).
    pub devices_generation: u32,
    /// The last generation the guest has taken in: it writes it after it
    /// has stopped using every device no longer listed. Device setup waits
    /// (bounded) for this before it takes a device away.
    pub devices_ack: u32,
    /// Number of entries in [`SharedInfo::devices`].
    pub device_count: u32,
    /// Padding.
    pub _pad2: u32,
    /// The guest's current devices: each a virtio-mmio window and the port
    /// its interrupts arrive on.
    pub devices: [crate::device::GuestDevice; crate::device::MAX_DEVICES],
}

const _: () = assert!(core::mem::size_of::<SharedInfo>() <= crate::memory::PAGE_SIZE as usize);
