//! Tests, with a [`Platform`] backed by vm-memory's `GuestMemoryMmap` (the
//! same memory virtio-queue's reference implementation reads) and an
//! in-memory disk.

mod blk;
mod bridge;
mod console;
mod driver;
mod hostile;
mod mmio;
mod net;
mod polling;
mod reference;
mod resume;
mod switch;

use std::sync::atomic::Ordering;
use std::vec::Vec;

use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::platform::{GuestBuf, HostIo, Interrupt, IoKind, IoResult, MemError, Platform};
use crate::Submission;
use protocol::virtio::saved::SavedDevice;

/// Low RAM of the test guest.
pub const LOW_RAM: u64 = 0x100_0000;
/// Second RAM region: virtio-queue's mock puts indirect tables here.
pub const HIGH_RAM_BASE: u64 = 0x3000_0000;
/// Size of the second RAM region.
pub const HIGH_RAM: u64 = 0x10_0000;

/// Guest memory with a hole between the two regions.
pub fn guest_memory() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[
        (GuestAddress(0), LOW_RAM as usize),
        (GuestAddress(HIGH_RAM_BASE), HIGH_RAM as usize),
    ])
    .expect("guest memory")
}

/// A host I/O the platform saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    pub kind: IoKind,
    pub offset: u64,
    pub buffers: Vec<GuestBuf>,
    pub tag: u64,
}

/// A test platform: guest memory, a disk in a `Vec`, and logs of what the
/// device did.
pub struct TestPlatform {
    pub mem: GuestMemoryMmap,
    pub disk: Vec<u8>,
    /// The disk as of the last flush.
    pub durable: Vec<u8>,
    pub interrupts: Vec<Interrupt>,
    pub console: Vec<u8>,
    pub submitted: Vec<Submitted>,
    /// Hold I/O until [`TestPlatform::run_pending`] instead of doing it in
    /// `submit`.
    pub deferred: bool,
    pub pending: Vec<Submitted>,
    /// Fail every I/O with this errno.
    pub fail_with: Option<i32>,
    /// Where the device saves its state, if it does.
    pub saved: Option<std::boxed::Box<SavedDevice>>,
}

impl TestPlatform {
    pub fn new(disk_bytes: usize) -> Self {
        Self {
            mem: guest_memory(),
            disk: std::vec![0; disk_bytes],
            durable: std::vec![0; disk_bytes],
            interrupts: Vec::new(),
            console: Vec::new(),
            submitted: Vec::new(),
            deferred: false,
            pending: Vec::new(),
            fail_with: None,
            saved: None,
        }
    }

    fn perform(&mut self, io: &Submitted) -> IoResult {
        if let Some(errno) = self.fail_with {
            return Err(errno);
        }
        let mut offset = io.offset as usize;
        let mut done = 0u64;
        for b in &io.buffers {
            let len = b.len as usize;
            let range = offset..offset + len;
            match io.kind {
                IoKind::Read => {
                    let src = self.disk.get(range).ok_or(5)?;
                    self.mem
                        .write_slice(src, GuestAddress(b.gpa))
                        .map_err(|_| 14)?;
                }
                IoKind::Write => {
                    let dst = self.disk.get_mut(range).ok_or(5)?;
                    self.mem
                        .read_slice(dst, GuestAddress(b.gpa))
                        .map_err(|_| 14)?;
                }
                IoKind::Flush => {}
            }
            offset += len;
            done += b.len as u64;
        }
        if io.kind == IoKind::Flush {
            self.durable = self.disk.clone();
        }
        Ok(done)
    }

    /// Performs the held I/O; returns `(tag, result)` for each, in order.
    pub fn run_pending(&mut self) -> Vec<(u64, IoResult)> {
        let pending = std::mem::take(&mut self.pending);
        pending
            .iter()
            .map(|io| (io.tag, self.perform(io)))
            .collect()
    }
}

impl Platform for TestPlatform {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.mem
            .read_slice(buf, GuestAddress(gpa))
            .map_err(|_| MemError {
                gpa,
                len: buf.len() as u64,
            })
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemError> {
        self.mem
            .write_slice(data, GuestAddress(gpa))
            .map_err(|_| MemError {
                gpa,
                len: data.len() as u64,
            })
    }

    fn contains(&self, gpa: u64, len: u64) -> bool {
        if gpa.checked_add(len).is_none() {
            return false;
        }
        if len == 0 {
            return GuestMemoryBackend::address_in_range(&self.mem, GuestAddress(gpa));
        }
        GuestMemoryBackend::check_range(&self.mem, GuestAddress(gpa), len as usize)
    }

    fn read_u16(&self, gpa: u64) -> Result<u16, MemError> {
        self.mem
            .load::<u16>(GuestAddress(gpa), Ordering::Acquire)
            .map(u16::from_le)
            .map_err(|_| MemError { gpa, len: 2 })
    }

    fn write_u16(&mut self, gpa: u64, value: u16) -> Result<(), MemError> {
        self.mem
            .store(value.to_le(), GuestAddress(gpa), Ordering::Release)
            .map_err(|_| MemError { gpa, len: 2 })
    }

    fn notify_guest(&mut self, cause: Interrupt) {
        self.interrupts.push(cause);
    }

    fn submit(&mut self, io: &HostIo<'_>) -> Submission {
        let s = Submitted {
            kind: io.kind,
            offset: io.offset,
            buffers: io.buffers.to_vec(),
            tag: io.tag,
        };
        self.submitted.push(s.clone());
        if self.deferred {
            self.pending.push(s);
            Submission::Pending
        } else {
            Submission::Done(self.perform(&s))
        }
    }

    fn console_output(&mut self, bytes: &[u8]) {
        self.console.extend_from_slice(bytes);
    }

    fn saved(&self) -> Option<&SavedDevice> {
        self.saved.as_deref()
    }
}

/// A small deterministic generator for test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}
