//! Guest RAM: a memfd mapped with `vm-memory`, so that another mapping
//! (a foreign window in Dom0) can share it by file descriptor.

use crate::error::{Error, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// A `repr(C)` protocol struct made only of integer and byte-array fields,
/// with its padding spelled out as fields: every byte is initialised, so it
/// can be copied into guest RAM as bytes.
///
/// # Safety
/// Implement only for types that are so laid out.
pub unsafe trait Plain: Copy {}

// SAFETY: each is `repr(C)` in `protocol`, with only integer and byte-array
// fields and explicit padding fields (its doc comments give the layout).
unsafe impl Plain for protocol::boot::BootInfo {}
// SAFETY: as above.
unsafe impl Plain for protocol::device::BackendEvent {}
// SAFETY: as above.
unsafe impl Plain for protocol::device::GuestDevice {}
// SAFETY: as above.
unsafe impl Plain for protocol::ioreq::IoReq {}
// SAFETY: as above (its size is checked at compile time in `protocol`).
unsafe impl Plain for protocol::hwqueue::QueueLayout {}
// SAFETY: as above.
unsafe impl Plain for protocol::hypercall::DomainInfo {}

/// One domain's RAM, guest-physical `0..size`.
pub struct GuestRam {
    memory: GuestMemoryMmap,
    file: File,
    size: u64,
}

impl GuestRam {
    /// Creates `size` bytes of zeroed RAM backed by a new memfd.
    pub fn new(name: &str, size: u64) -> Result<Self> {
        let fd = nix::sys::memfd::memfd_create(
            format!("hyp-ram-{name}").as_str(),
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .map_err(|e| Error::Memory(format!("memfd_create: {e}")))?;
        let file = File::from(fd);
        file.set_len(size)
            .map_err(|e| Error::Memory(format!("sizing memfd to {size} bytes: {e}")))?;
        let mapping_file = file.try_clone()?;
        let memory = GuestMemoryMmap::from_ranges_with_files([(
            GuestAddress(0),
            size as usize,
            Some(FileOffset::new(mapping_file, 0)),
        )])
        .map_err(|e| Error::Memory(format!("mapping {size} bytes: {e}")))?;
        Ok(Self { memory, file, size })
    }

    /// The `vm-memory` mapping of the RAM; a clone keeps the mapping alive
    /// (the host model's backends hold one while they serve the domain).
    pub fn memory(&self) -> GuestMemoryMmap {
        self.memory.clone()
    }

    /// Bytes of RAM.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The memfd behind the RAM.
    pub fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }

    /// Host address of guest-physical 0 (for `KVM_SET_USER_MEMORY_REGION`).
    pub fn host_address(&self) -> u64 {
        let region = self
            .memory
            .iter()
            .next()
            .expect("GuestRam has exactly one region");
        region.as_ptr() as u64
    }

    /// True if `[addr, addr + len)` lies inside RAM.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr.checked_add(len).is_some_and(|end| end <= self.size)
    }

    /// Reads `len` bytes at `addr`, or `None` if any byte is outside RAM.
    pub fn read(&self, addr: u64, len: u64) -> Option<Vec<u8>> {
        if !self.contains(addr, len) {
            return None;
        }
        let mut bytes = vec![0; len as usize];
        self.memory
            .read_slice(&mut bytes, GuestAddress(addr))
            .ok()?;
        Some(bytes)
    }

    /// Writes `bytes` at `addr`; false if any byte is outside RAM.
    pub fn write(&self, addr: u64, bytes: &[u8]) -> bool {
        self.contains(addr, bytes.len() as u64)
            && self.memory.write_slice(bytes, GuestAddress(addr)).is_ok()
    }

    /// Reads a little-endian `u64` at `addr`.
    pub fn read_u64(&self, addr: u64) -> Option<u64> {
        self.memory.read_obj::<u64>(GuestAddress(addr)).ok()
    }

    /// Reads a little-endian `u32` at `addr`.
    pub fn read_u32(&self, addr: u64) -> Option<u32> {
        self.memory.read_obj::<u32>(GuestAddress(addr)).ok()
    }

    /// Writes a protocol struct at `addr`, byte for byte; false if any byte
    /// is outside RAM.
    pub fn write_struct<T: Plain>(&self, addr: u64, value: &T) -> bool {
        // SAFETY: `Plain` types have every byte initialised (see the trait).
        let bytes = unsafe {
            std::slice::from_raw_parts(value as *const T as *const u8, std::mem::size_of::<T>())
        };
        self.write(addr, bytes)
    }

    /// Writes a little-endian `u32` at `addr`.
    pub fn write_u32(&self, addr: u64, value: u32) -> bool {
        self.memory.write_obj(value, GuestAddress(addr)).is_ok()
    }

    /// Fills `[addr, addr + len)` with zeroes; false if outside RAM.
    pub fn zero(&self, addr: u64, len: u64) -> bool {
        if !self.contains(addr, len) {
            return false;
        }
        const CHUNK: usize = 64 * 1024;
        let zeroes = [0u8; CHUNK];
        let mut done = 0;
        while done < len {
            let step = (len - done).min(CHUNK as u64) as usize;
            if self
                .memory
                .write_slice(&zeroes[..step], GuestAddress(addr + done))
                .is_err()
            {
                return false;
            }
            done += step as u64;
        }
        true
    }
}
