//! [`backends::Platform`] for one device served in the core's process:
//! guest memory through `vm-memory`, host I/O and the interrupt through
//! the device's io_uring ([`crate::uring::RingIo`]), console output into the
//! guest's console log.

use backends::{HostIo, Interrupt, MemError, Platform, Submission};
use hyp::{ConsoleSink, GuestRam};
use protocol::virtio::saved::SavedDevice;
use std::sync::atomic::Ordering;
use vm_memory::{Bytes, GuestAddress};

use crate::trace::Tracer;
use crate::uring::RingIo;
use protocol::trace::Step;

/// What one device's backend may use.
pub struct HostPlatform {
    /// Where the device's trace records go.
    pub tracer: Tracer,
    memory: GuestRam,
    ram_bytes: u64,
    console: ConsoleSink,
    /// Host I/O and interrupts waiting to go into the io_uring.
    pub io: RingIo,
    /// The device's saved state. Nothing here restarts, but the backends
    /// keep it up to date as they do in Domain-0, so the two placements
    /// run the same code and the benchmark compares paths, not work.
    saved: Box<SavedDevice>,
}

impl HostPlatform {
    /// A platform over the guest's `memory` of `ram_bytes`, tracing as
    /// `tracer`.
    pub fn new(
        tracer: Tracer,
        memory: GuestRam,
        ram_bytes: u64,
        console: ConsoleSink,
        io: RingIo,
    ) -> Self {
        Self {
            tracer,
            memory,
            ram_bytes,
            console,
            io,
            saved: Box::default(),
        }
    }

    /// `len` bytes at `gpa` as a checked range, or the error to return.
    fn range(&self, gpa: u64, len: usize) -> Result<GuestAddress, MemError> {
        if self.contains(gpa, len as u64) {
            Ok(GuestAddress(gpa))
        } else {
            Err(MemError {
                gpa,
                len: len as u64,
            })
        }
    }
}

impl Platform for HostPlatform {
    #[inline(always)]
    fn trace(&self, step: Step, request: u32, detail: u32) {
        self.tracer.emit(step, request, detail);
    }

    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let at = self.range(gpa, buf.len())?;
        // `vm-memory` copies with volatile accesses: the guest may be
        // changing the bytes meanwhile.
        self.memory
            .memory()
            .read_slice(buf, at)
            .map_err(|_| MemError {
                gpa,
                len: buf.len() as u64,
            })
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemError> {
        let at = self.range(gpa, data.len())?;
        self.memory
            .memory()
            .write_slice(data, at)
            .map_err(|_| MemError {
                gpa,
                len: data.len() as u64,
            })
    }

    fn contains(&self, gpa: u64, len: u64) -> bool {
        if len == 0 {
            return gpa < self.ram_bytes;
        }
        gpa.checked_add(len)
            .is_some_and(|end| end <= self.ram_bytes)
    }

    fn read_u16(&self, gpa: u64) -> Result<u16, MemError> {
        let at = self.range(gpa, 2)?;
        if !gpa.is_multiple_of(2) {
            let mut b = [0u8; 2];
            self.read(gpa, &mut b)?;
            return Ok(u16::from_le_bytes(b));
        }
        self.memory
            .memory()
            .load::<u16>(at, Ordering::Acquire)
            .map_err(|_| MemError { gpa, len: 2 })
    }

    fn write_u16(&mut self, gpa: u64, value: u16) -> Result<(), MemError> {
        let at = self.range(gpa, 2)?;
        if !gpa.is_multiple_of(2) {
            return self.write(gpa, &value.to_le_bytes());
        }
        self.memory
            .memory()
            .store(value, at, Ordering::Release)
            .map_err(|_| MemError { gpa, len: 2 })
    }

    fn notify_guest(&mut self, _cause: Interrupt) {
        self.io.raise_interrupt();
    }

    fn submit(&mut self, io: &HostIo<'_>) -> Submission {
        self.io.submit(io)
    }

    fn console_output(&mut self, bytes: &[u8]) {
        self.console.write(bytes);
    }

    fn saved(&self) -> Option<&SavedDevice> {
        Some(&self.saved)
    }
}
