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
//!
//! A domain leaves the core's list before its devices are taken apart, so
//! its images stay claimed a little longer; a claim that meets a holder
//! the core no longer lists waits for that teardown (up to
//! [`TEARDOWN_WAIT`]) instead of failing: `xl destroy` then `xl create`
//! of the same image just works.

use super::image::DiskImage;
use super::DeviceError;
use nix::fcntl::{Flock, FlockArg};
use protocol::domain::DomId;
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a claim waits for a destroyed domain's devices to let go.
pub const TEARDOWN_WAIT: Duration = Duration::from_secs(10);

/// One holder of an image.
#[derive(Clone, Debug)]
struct Holder {
    domid: DomId,
    name: String,
    writable: bool,
}

/// The holders of each image, by identity, each with its claim's ticket.
type Table = HashMap<(u64, u64), Vec<(u64, Holder)>>;

/// The table, and the signal that a claim went.
#[derive(Debug, Default)]
struct Shared {
    table: Mutex<Table>,
    released: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().expect("image claims lock")
    }
}

/// Every image claimed in this daemon, by identity.
#[derive(Debug, Default)]
pub struct ImageClaims {
    shared: Arc<Shared>,
    next: Mutex<u64>,
}

/// A claim on one image; dropping it gives the image up.
#[derive(Debug)]
pub struct ImageClaim {
    shared: Arc<Shared>,
    identity: (u64, u64),
    ticket: u64,
    /// The advisory lock, given up before the table entry (see `drop`).
    lock: Option<Flock<File>>,
}

impl ImageClaims {
    /// Claims `image` (found at `path`) for domain `domid`, called `name`:
    /// refused if another guest writes it, or if this guest would write it
    /// and anyone holds it, here or in another process. A holder for which
    /// `is_listed` is false is being torn down: the claim waits for it.
    pub fn claim(
        &self,
        image: &DiskImage,
        path: &Path,
        domid: DomId,
        name: &str,
        is_listed: impl Fn(DomId) -> bool,
    ) -> Result<ImageClaim, DeviceError> {
        let writable = !image.readonly;
        let deadline = Instant::now() + TEARDOWN_WAIT;
        let mut held = self.shared.lock();
        loop {
            let holders = held.entry(image.identity).or_default();
            let Some((_, h)) = holders.iter().find(|(_, h)| writable || h.writable) else {
                break;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if is_listed(h.domid) || left.is_zero() {
                return Err(DeviceError::ImageInUse {
                    path: path.to_path_buf(),
                    domid: h.domid,
                    name: h.name.clone(),
                    writable: h.writable,
                });
            }
            held = self
                .shared
                .released
                .wait_timeout(held, left)
                .expect("image claims lock")
                .0;
        }
        let holders = held.entry(image.identity).or_default();
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
            shared: Arc::clone(&self.shared),
            identity: image.identity,
            ticket,
            lock: Some(flock),
        })
    }
}

impl Drop for ImageClaim {
    fn drop(&mut self) {
        // The lock first: a claim woken below must find it gone too.
        drop(self.lock.take());
        let mut held = self.shared.lock();
        if let Some(holders) = held.get_mut(&self.identity) {
            holders.retain(|(ticket, _)| *ticket != self.ticket);
            if holders.is_empty() {
                held.remove(&self.identity);
            }
        }
        drop(held);
        self.shared.released.notify_all();
    }
}
