//! Guest RAM: a memfd mapped with `vm-memory`, so that another mapping
//! (a foreign window in Dom0, a host-model backend) can share it.

use nix::fcntl::FallocateFlags;
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
    file: Arc<File>,
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
            file: Arc::new(file),
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

    /// Fills `[addr, addr + len)` with zeroes; false if outside RAM. Whole
    /// pages are punched out of the memfd rather than written, so zeroing
    /// a kernel's `.bss` does not make it resident: the guest gets fresh
    /// zero pages as it touches them.
    pub fn zero(&self, addr: u64, len: u64) -> bool {
        if !self.contains(addr, len) {
            return false;
        }
        let page = protocol::memory::PAGE_SIZE;
        let end = addr + len;
        let first_page = addr.next_multiple_of(page).min(end);
        let last_page = (end / page * page).max(first_page);
        let punched = last_page > first_page
            && nix::fcntl::fallocate(
                &*self.file,
                FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
                first_page as i64,
                (last_page - first_page) as i64,
            )
            .is_ok();
        if punched {
            self.write_zeroes(addr, first_page - addr)
                && self.write_zeroes(last_page, end - last_page)
        } else {
            self.write_zeroes(addr, len)
        }
    }

    /// Writes zeroes over `[addr, addr + len)` (inside RAM).
    fn write_zeroes(&self, addr: u64, len: u64) -> bool {
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

#[cfg(test)]
mod tests {
    use super::GuestRam;

    #[test]
    fn zeroing_clears_exactly_the_range_and_leaves_whole_pages_unbacked() {
        let ram = GuestRam::new("zero-test", 4 * 4096).unwrap();
        assert!(ram.write(0, &[0xAB; 4 * 4096]));
        // From the middle of page 0 to the middle of page 3.
        assert!(ram.zero(100, 3 * 4096));
        // Pages 1 and 2 hold no memory any more (until read or written): a
        // hole starts at page 1, and data again only at page 3.
        use nix::unistd::{lseek, Whence};
        assert_eq!(lseek(&*ram.file, 4096, Whence::SeekHole).unwrap(), 4096);
        assert_eq!(lseek(&*ram.file, 4096, Whence::SeekData).unwrap(), 3 * 4096);
        let bytes = ram.read(0, 4 * 4096).unwrap();
        assert!(bytes[..100].iter().all(|&b| b == 0xAB));
        assert!(bytes[100..100 + 3 * 4096].iter().all(|&b| b == 0));
        assert!(bytes[100 + 3 * 4096..].iter().all(|&b| b == 0xAB));
        // Inside one page, and outside RAM.
        assert!(ram.zero(4 * 4096 - 10, 5));
        assert_eq!(
            ram.read(4 * 4096 - 11, 7).unwrap(),
            [0xAB, 0, 0, 0, 0, 0, 0xAB]
        );
        assert!(!ram.zero(4 * 4096 - 1, 2));
    }
}
