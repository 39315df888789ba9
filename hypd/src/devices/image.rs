//! Opening a disk image, once, for either placement.

use super::DeviceError;
use std::fs::{File, OpenOptions};
use std::path::Path;

/// A disk image, open for the guest.
#[derive(Debug)]
pub struct DiskImage {
    /// The open file (read-write unless `readonly`).
    pub file: File,
    /// Its size in bytes.
    pub bytes: u64,
    /// The guest may not write.
    pub readonly: bool,
}

impl DiskImage {
    /// Opens the image at `path`, writable unless `readonly`; the error
    /// names the image.
    pub fn open(path: &Path, readonly: bool) -> Result<Self, DeviceError> {
        let failed = |source| DeviceError::Image {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(!readonly)
            .open(path)
            .map_err(failed)?;
        let bytes = file.metadata().map_err(failed)?.len();
        Ok(Self {
            file,
            bytes,
            readonly,
        })
    }
}
