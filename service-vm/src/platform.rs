//! [`backends::Platform`] for one device of one guest: guest memory
//! through Dom0's foreign window, interrupts through an event channel,
//! block I/O through the device's hardware queue, console output through
//! the privileged `console_write_for` hypercall, and frames from another
//! guest's memory copied once, window to window
//! ([`Platform::copy_from`]: Xen's grant copy).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU16, Ordering};
use protocol::hypercall::Errno;

use backends::{HostIo, Interrupt, MemError, Platform, Submission};
use guest_runtime::{evtchn, hypercall, println, trace};
use protocol::domain::DomId;
use protocol::hwqueue::errno::EIO;
use protocol::hypercall::MAX_CONSOLE_WRITE;
use protocol::trace::{Party, Step};
use protocol::virtio::saved::SavedDevice;

use crate::hwqueue::HwQueue;
use crate::window::Window;

/// Copies `len` bytes with one `rep movsb`. Being an `asm!` block, the copy
/// is opaque to the compiler, so a guest changing the bytes meanwhile is
/// not a data race in Rust's model (the backends read guest memory as a
/// hostile guest may be writing it).
///
/// # Safety
///
/// `src` must be valid for `len` bytes of reads and `dst` for `len` bytes
/// of writes, and the two ranges must not overlap unless both lie in guest
/// memory (no Rust object there: the instruction moves the bytes one after
/// the other whatever the ranges, and a guest that overlaps its own
/// buffers only garbles its own frame).
unsafe fn copy_bytes(dst: *mut u8, src: *const u8, len: usize) {
    // SAFETY: per the contract; the direction flag is clear (the ABI).
    unsafe {
        core::arch::asm!("rep movsb", inout("rcx") len => _, inout("rdi") dst => _,
            inout("rsi") src => _, options(nostack, preserves_flags));
    }
}

/// Where a device's trace records go: Domain-0's ring, named by the guest
/// and the device's window page.
#[derive(Clone, Copy, Debug)]
pub struct Tracer {
    domid: DomId,
    device: u32,
}

impl Tracer {
    /// Records `step` of request `request` with `detail`, if tracing.
    #[inline(always)]
    pub fn emit(self, step: Step, request: u32, detail: u32) {
        trace::emit(
            Party::Dom0,
            step,
            self.domid,
            request,
            [self.device, detail],
        );
    }
}

/// What one device's backend may use.
#[derive(Debug)]
pub struct GuestPlatform {
    domid: DomId,
    /// The device's window page in the guest (trace records' device).
    device: u32,
    window: Window,
    irq_port: u32,
    hw: Option<HwQueue>,
    /// The device's state page in the reserved RAM, where it outlives
    /// this Domain-0.
    saved: Option<&'static SavedDevice>,
    console: Vec<u8>,
    irq_failed: bool,
    console_failed: bool,
}

impl GuestPlatform {
    /// A platform for the device of guest `domid` whose window is at
    /// guest-physical `mmio_base`, whose RAM is `window` and whose
    /// interrupt is a send on Dom0 port `irq_port`; `hw` is its hardware
    /// queue (block devices) and `saved` its state page.
    pub fn new(
        domid: DomId,
        mmio_base: u64,
        window: Window,
        irq_port: u32,
        hw: Option<HwQueue>,
        saved: Option<&'static SavedDevice>,
    ) -> Self {
        Self {
            domid,
            device: (mmio_base >> 12) as u32,
            window,
            irq_port,
            hw,
            saved,
            console: Vec::new(),
            irq_failed: false,
            console_failed: false,
        }
    }

    /// Where the device's trace records go.
    pub fn tracer(&self) -> Tracer {
        Tracer {
            domid: self.domid,
            device: self.device,
        }
    }

    /// The device's hardware queue, if it has one.
    pub fn hw(&mut self) -> Option<&mut HwQueue> {
        self.hw.as_mut()
    }

    /// The device's hardware queue, if it has one (shared).
    pub fn hw_ref(&self) -> Option<&HwQueue> {
        self.hw.as_ref()
    }

    /// Hands the console bytes gathered since the last call to the core.
    pub fn flush_console(&mut self) {
        if self.console.is_empty() {
            return;
        }
        if let Err(errno) = hypercall::console_write_for(self.domid, &self.console) {
            // ESRCH: the guest is already gone (destroyed while its last
            // output waited here); its REMOVED event is on its way.
            if !self.console_failed && errno != Errno::Srch {
                println!(
                    "service-vm: console output of domain {} refused: {}",
                    self.domid,
                    errno.name()
                );
                self.console_failed = true;
            }
        }
        self.console.clear();
    }

    /// The Dom0 pointer to `len` bytes at `gpa`, or the error to return.
    fn host(&self, gpa: u64, len: usize) -> Result<*mut u8, MemError> {
        self.window
            .dom0_addr(gpa, len as u64)
            .map(|addr| addr as *mut u8)
            .ok_or(MemError {
                gpa,
                len: len as u64,
            })
    }
}

impl Platform for GuestPlatform {
    #[inline(always)]
    fn trace(&self, step: Step, request: u32, detail: u32) {
        self.tracer().emit(step, request, detail);
    }

    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let src = self.host(gpa, buf.len())?;
        // SAFETY: the range lies inside the foreign window, which the core
        // mapped for as long as the device exists; `buf` is Dom0's own
        // memory, outside every window.
        unsafe { copy_bytes(buf.as_mut_ptr(), src, buf.len()) };
        Ok(())
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemError> {
        let dst = self.host(gpa, data.len())?;
        // SAFETY: as in `read`, with the roles swapped.
        unsafe { copy_bytes(dst, data.as_ptr(), data.len()) };
        Ok(())
    }

    fn contains(&self, gpa: u64, len: u64) -> bool {
        self.window.contains(gpa, len)
    }

    fn read_u16(&self, gpa: u64) -> Result<u16, MemError> {
        let p = self.host(gpa, 2)?;
        if !gpa.is_multiple_of(2) {
            let mut b = [0u8; 2];
            self.read(gpa, &mut b)?;
            return Ok(u16::from_le_bytes(b));
        }
        // SAFETY: two aligned bytes inside the mapped window; the guest
        // writes ring indices with aligned 16-bit stores.
        Ok(unsafe { AtomicU16::from_ptr(p as *mut u16) }.load(Ordering::Acquire))
    }

    fn write_u16(&mut self, gpa: u64, value: u16) -> Result<(), MemError> {
        let p = self.host(gpa, 2)?;
        if !gpa.is_multiple_of(2) {
            return self.write(gpa, &value.to_le_bytes());
        }
        // SAFETY: as in `read_u16`.
        unsafe { AtomicU16::from_ptr(p as *mut u16) }.store(value, Ordering::Release);
        Ok(())
    }

    fn copy_from(&mut self, gpa: u64, src: &Self, src_gpa: u64, len: u64) -> Result<(), MemError> {
        let refused = |gpa| MemError { gpa, len };
        let dst = self.window.dom0_addr(gpa, len).ok_or(refused(gpa))?;
        let from = src.window.dom0_addr(src_gpa, len).ok_or(refused(src_gpa))?;
        // SAFETY: both ranges lie inside foreign windows the core mapped
        // for as long as their devices exist (checked just above), guest
        // memory with no Rust object in it; a range of `len` bytes inside
        // a window of at most 1 GiB fits a `usize`.
        unsafe { copy_bytes(dst as *mut u8, from as *const u8, len as usize) };
        Ok(())
    }

    fn notify_guest(&mut self, _cause: Interrupt) {
        if let Err(errno) = evtchn::send(self.irq_port) {
            if !self.irq_failed {
                println!(
                    "service-vm: interrupt to domain {} on port {} failed: {}",
                    self.domid,
                    self.irq_port,
                    errno.name()
                );
                self.irq_failed = true;
            }
        }
    }

    fn submit(&mut self, io: &HostIo<'_>) -> Submission {
        match self.hw.as_mut() {
            Some(hw) => hw.submit(&self.window, io),
            None => Submission::Done(Err(EIO)),
        }
    }

    fn console_output(&mut self, bytes: &[u8]) {
        self.console.extend_from_slice(bytes);
        if self.console.len() as u64 >= MAX_CONSOLE_WRITE {
            self.flush_console();
        }
    }

    fn saved(&self) -> Option<&SavedDevice> {
        self.saved
    }
}
