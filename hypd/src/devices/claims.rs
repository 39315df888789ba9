//! Who uses which disk image: one writer or any number of readers, as Xen
//! allows (a second writer would corrupt the first's data).
//!
//! Each image a guest gets is claimed by its identity (device and inode,
//! whatever path named it) in a table the whole daemon shares, which names
//! the holder when a claim is refused; and with an advisory `flock` on a
//! descriptor of its own (exclusive for a writer, shared for readers), so
//! that another `hypd`, or any program that takes such locks, refuses too.
//! The lock's descriptor is not the one a hardware queue or the host
//! model does I/O through, so it goes the moment the device does, however
//! long the kernel takes to let go of the I/O descriptor.

use super::image::DiskImage;
use super::DeviceError;
use nix::fcntl::{Flock, FlockArg};
use protocol::domain::DomId;
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// One holder of an image.
#[derive(Clone, Debug)]
struct Holder {
    domid: DomId,
    name: String,
    writable: bool,
}

/// The holders of each image, by identity, each with its claim's ticket.
type Table = HashMap<(u64, u64), Vec<(u64, Holder)>>;

/// Every image claimed in this daemon, by identity.
#[derive(Debug, Default)]
pub struct ImageClaims {
    held: Arc<Mutex<Table>>,
    next: Mutex<u64>,
}

/// A claim on one image; dropping it gives the image up.
#[derive(Debug)]
pub struct ImageClaim {
    held: Arc<Mutex<Table>>,
    identity: (u64, u64),
    ticket: u64,
    _lock: Flock<File>,
}

fn lock(held: &Mutex<Table>) -> MutexGuard<'_, Table> {
    held.lock().expect("image claims lock")
}

impl ImageClaims {
    /// Claims `image` (found at `path`) for domain `domid`, called `name`:
    /// refused if another guest writes it, or if this guest would write it
    /// and anyone holds it, here or in another process.
    pub fn claim(
        &self,
        image: &DiskImage,
        path: &Path,
        domid: DomId,
        name: &str,
    ) -> Result<ImageClaim, DeviceError> {
        let writable = !image.readonly;
        let mut held = lock(&self.held);
        let holders = held.entry(image.identity).or_default();
        if let Some((_, h)) = holders.iter().find(|(_, h)| writable || h.writable) {
            return Err(DeviceError::ImageInUse {
                path: path.to_path_buf(),
                domid: h.domid,
                name: h.name.clone(),
                writable: h.writable,
            });
        }
        // A descriptor of the lock's own: the same file, another open.
        let reopened = File::open(format!("/proc/self/fd/{}", image.file.as_raw_fd()))
            .map_err(DeviceError::Host)?;
        let how = if writable {
            FlockArg::LockExclusiveNonblock
        } else {
            FlockArg::LockSharedNonblock
        };
        let flock = Flock::lock(reopened, how).map_err(|(_, errno)| match errno {
            nix::errno::Errno::EWOULDBLOCK => DeviceError::ImageLocked(path.to_path_buf()),
            other => DeviceError::Host(other.into()),
        })?;
        let ticket = {
            let mut next = self.next.lock().expect("image claims lock");
            *next += 1;
            *next
        };
        holders.push((
            ticket,
            Holder {
                domid,
                name: name.to_string(),
                writable,
            },
        ));
        Ok(ImageClaim {
            held: Arc::clone(&self.held),
            identity: image.identity,
            ticket,
            _lock: flock,
        })
    }
}

impl Drop for ImageClaim {
    fn drop(&mut self) {
        let mut held = lock(&self.held);
        if let Some(holders) = held.get_mut(&self.identity) {
            holders.retain(|(ticket, _)| *ticket != self.ticket);
            if holders.is_empty() {
                held.remove(&self.identity);
            }
        }
    }
}
