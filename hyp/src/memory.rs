//! Guest RAM: a memfd mapped with `vm-memory`, so that another mapping
//! (a foreign window in Dom0, a host-model backend) can share it.

use protocol::plain::Plain;
use std::fs::File;
use std::sync::Arc;
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// Why guest RAM could not be made.
#[derive(Debug, thiserror::Error)]
#[error("guest memory: {what}: {source}")]
pub struct MemoryError {
    /// The step that failed.
    pub what: &'static str,
    /// Why.
    pub source: std::io::Error,
}

/// One domain's RAM, guest-physical `0..size`.
///
/// A clone is another handle on the same memory, and keeps it mapped: a
/// foreign window onto a guest, or a backend serving it, holds one for as
/// long as it may touch the guest's RAM, even after the guest is gone.
#[derive(Clone, Debug)]
pub struct GuestRam {
    memory: GuestMemoryMmap,
    _file: Arc<File>,
    size: u64,
}

impl GuestRam {
    /// Creates `size` bytes of zeroed RAM backed by a new memfd.
    pub fn new(name: &str, size: u64) -> Result<Self, MemoryError> {
        let failed = |what| move |source| MemoryError { what, source };
        let fd = nix::sys::memfd::memfd_create(
            format!("hyp-ram-{name}").as_str(),
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .map_err(|e| failed("memfd_create")(e.into()))?;
        let file = File::from(fd);
        file.set_len(size).map_err(failed("sizing the memfd"))?;
        let mapping_file = file.try_clone().map_err(failed("duplicating the memfd"))?;
        let memory = GuestMemoryMmap::from_ranges_with_files([(
            GuestAddress(0),
            size as usize,
            Some(FileOffset::new(mapping_file, 0)),
        )])
        .map_err(|e| failed("mapping the memfd")(std::io::Error::other(e)))?;
        Ok(Self {
            memory,
            _file: Arc::new(file),
            size,
        })
    }

    /// The `vm-memory` mapping of the RAM; a clone keeps the mapping alive.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.memory
    }

    /// Bytes of RAM.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Host address of guest-physical 0 (for `KVM_SET_USER_MEMORY_REGION`,
    /// and for whatever else must name guest memory by host address).
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
        self.write(addr, value.as_bytes())
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
