//! Opening a disk image, once, for either placement (the checks are
//! [`crate::files::open_disk`]'s).

use super::DeviceError;
use crate::files;
use std::fs::File;
use std::path::Path;

/// A disk image, open for the guest.
#[derive(Debug)]
pub struct DiskImage {
    /// The open file (read-write unless `readonly`).
    pub file: File,
    /// Its size in bytes: whole 512-byte sectors.
    pub bytes: u64,
    /// The guest may not write.
    pub readonly: bool,
    /// The file's identity (device, inode), whatever path reached it.
    pub identity: (u64, u64),
}

impl DiskImage {
    /// Opens the image at `path`, writable unless `readonly`, for direct
    /// I/O if `direct` (xl.cfg's `direct-io-safe`).
    pub fn open(path: &Path, readonly: bool, direct: bool) -> Result<Self, DeviceError> {
        let opened = files::open_disk(path, !readonly, direct)?;
        Ok(Self {
            file: opened.file,
            bytes: opened.bytes,
            readonly,
            identity: opened.identity,
        })
    }
}
