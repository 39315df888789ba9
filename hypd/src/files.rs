//! Opening the files a client names: kernels and disk images.
//!
//! The trust model: `hypd` runs as root and its socket is owner-only, so
//! whoever names a path could open that path themselves; following
//! symbolic links is therefore allowed (LVM volumes are links). What these
//! checks stop is mistakes that would take down the daemon or hide data:
//! a FIFO that blocks the opening thread for ever, a character device
//! (`/dev/zero`) that reads without end, a file whose size is not what a
//! disk or a kernel can be. Every check is made on the opened descriptor
//! (`fstat`), never on the path before opening it, so what is checked is
//! what is used.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What a path turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    Regular,
    /// A block device.
    Block,
}

/// Why a named file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It could not be opened or examined.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a kind of file this use takes.
    #[error("{path} is {found}, not {wanted}")]
    WrongKind {
        /// The path.
        path: PathBuf,
        /// What it is ("a FIFO", "a character device", ...).
        found: &'static str,
        /// What would do.
        wanted: &'static str,
    },
    /// It is too large (a kernel bigger than the domain's RAM).
    #[error("{path} is {bytes} bytes, more than the {limit} bytes {what}")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
        /// What the limit is.
        what: &'static str,
    },
    /// The filesystem would not open the image for direct I/O.
    #[error("{path} cannot be opened with O_DIRECT (direct-io-safe): {source}; its filesystem may not support direct I/O")]
    NoDirectIo {
        /// The image.
        path: PathBuf,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// It is empty, or its size is not whole 512-byte sectors.
    #[error("{path} is {bytes} bytes: a disk image must be a non-zero number of 512-byte sectors")]
    NotSectors {
        /// The path.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
}

/// A file opened for a domain, with what was checked about it.
#[derive(Debug)]
pub struct Opened {
    /// The open file (blocking).
    pub file: File,
    /// What it is.
    pub kind: FileKind,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its identity: device and inode, whatever path reached it.
    pub identity: (u64, u64),
}

/// What a file of `file_type` is, for messages.
fn describe(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Opens `path` (for writing too if `write`) without blocking on a FIFO
/// or a device, and checks that it is a regular file or, if `block_ok`, a
/// block device. `wanted` names what would do, for the error.
fn open(
    path: &Path,
    write: bool,
    block_ok: bool,
    wanted: &'static str,
    direct: bool,
) -> Result<Opened, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let file_type = meta.file_type();
    let kind = if file_type.is_file() {
        FileKind::Regular
    } else if block_ok && file_type.is_block_device() {
        FileKind::Block
    } else {
        return Err(FileError::WrongKind {
            path: path.to_path_buf(),
            found: describe(file_type),
            wanted,
        });
    };
    // The file is what it should be: make it blocking again (io_uring
    // would otherwise answer reads that must wait with EAGAIN), with
    // direct I/O if asked (a status flag too, so the filesystem's refusal
    // comes here, named).
    let flags = match direct {
        true => nix::fcntl::OFlag::O_DIRECT,
        false => nix::fcntl::OFlag::empty(),
    };
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(|e| match direct {
        true => FileError::NoDirectIo {
            path: path.to_path_buf(),
            source: e.into(),
        },
        false => io(e.into()),
    })?;
    let bytes = match kind {
        FileKind::Regular => meta.len(),
        FileKind::Block => {
            let end = file.seek(SeekFrom::End(0)).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            end
        }
    };
    Ok(Opened {
        file,
        kind,
        bytes,
        identity: (meta.dev(), meta.ino()),
    })
}

/// Opens a disk image: a regular file or a block device, of a non-zero
/// number of 512-byte sectors; for direct I/O (`O_DIRECT`, past the page
/// cache) if `direct`.
pub fn open_disk(path: &Path, write: bool, direct: bool) -> Result<Opened, FileError> {
    let opened = open(
        path,
        write,
        true,
        "a regular file or a block device",
        direct,
    )?;
    if opened.bytes == 0 || !opened.bytes.is_multiple_of(512) {
        return Err(FileError::NotSectors {
            path: path.to_path_buf(),
            bytes: opened.bytes,
        });
    }
    Ok(opened)
}

/// Checks that `path` is a kernel a domain of `ram_bytes` could load: a
/// regular file no larger than its RAM. Returns the file, open.
pub fn open_kernel(path: &Path, ram_bytes: u64) -> Result<Opened, FileError> {
    let opened = open(path, false, false, "a regular file", false)?;
    if opened.bytes > ram_bytes {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            bytes: opened.bytes,
            limit: ram_bytes,
            what: "of the domain's RAM",
        });
    }
    Ok(opened)
}

/// Reads the kernel at `path` for a domain of `ram_bytes` (see
/// [`open_kernel`]); never more than the size it had when checked.
pub fn read_kernel(path: &Path, ram_bytes: u64) -> Result<Vec<u8>, FileError> {
    let opened = open_kernel(path, ram_bytes)?;
    let mut kernel = Vec::with_capacity(opened.bytes as usize);
    opened
        .file
        .take(opened.bytes)
        .read_to_end(&mut kernel)
        .map_err(|source| FileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(kernel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hypd-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn only_regular_files_and_block_devices_of_whole_sectors_are_disks() {
        let good = scratch("good.img", &[0; 4096]);
        let disk = open_disk(&good, true, false).unwrap();
        assert_eq!((disk.kind, disk.bytes), (FileKind::Regular, 4096));
        for (name, len) in [("three.img", 3), ("thousand.img", 1000), ("empty.img", 0)] {
            let path = scratch(name, &vec![0; len]);
            assert!(
                matches!(open_disk(&path, false, false), Err(FileError::NotSectors { bytes, .. }) if bytes == len as u64),
                "{name}"
            );
        }
        for path in ["/dev/zero", "/dev/null"] {
            assert!(matches!(
                open_disk(Path::new(path), false, false),
                Err(FileError::WrongKind {
                    found: "a character device",
                    ..
                })
            ));
        }
        assert!(matches!(
            open_disk(Path::new("/proc/self/mem"), false, false),
            Err(FileError::NotSectors { bytes: 0, .. })
        ));
        assert!(matches!(
            open_disk(Path::new("/tmp"), false, false),
            Err(FileError::Io { .. }) | Err(FileError::WrongKind { .. })
        ));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("hypd-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Read-only: a blocking open would wait for a writer for ever.
        assert!(matches!(
            open_disk(&fifo, false, false),
            Err(FileError::WrongKind {
                found: "a FIFO",
                ..
            })
        ));
        assert!(matches!(
            read_kernel(&fifo, 1 << 20),
            Err(FileError::WrongKind {
                found: "a FIFO",
                ..
            })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_kernel_is_a_regular_file_no_larger_than_ram() {
        let kernel = scratch("kernel", &[7; 8192]);
        assert_eq!(read_kernel(&kernel, 8192).unwrap(), vec![7; 8192]);
        assert!(matches!(
            read_kernel(&kernel, 4096),
            Err(FileError::TooLarge {
                bytes: 8192,
                limit: 4096,
                ..
            })
        ));
        assert!(matches!(
            read_kernel(Path::new("/dev/zero"), 1 << 20),
            Err(FileError::WrongKind { .. })
        ));
    }
}
