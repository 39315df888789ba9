//! What a placement (Domain-0's kernel or the core's host model) lends the
//! backends: the frontend's memory (and copies from another frontend's,
//! for the switch), its interrupt, the host's block I/O and a console
//! sink.
//!
//! Every guest address here is a guest-physical address *of the frontend
//! domain*. The Domain-0 placement adds its foreign-window base before it
//! touches memory; the host model indexes the domain's memfd mapping. Both
//! must refuse (with [`MemError`]) any range that is not entirely inside
//! the frontend's RAM: the backends rely on it and never trust an address
//! the guest wrote.

use protocol::trace::Step;
use protocol::virtio::saved::SavedDevice;

/// Bytes [`Platform::copy_from`]'s default moves per step.
const COPY_CHUNK: usize = 256;

/// An access to frontend memory that falls (partly) outside its RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemError {
    /// First guest-physical address of the refused range.
    pub gpa: u64,
    /// Length of the refused range in bytes.
    pub len: u64,
}

/// Why the device raises its interrupt (virtio-mmio has one line; the
/// cause is also visible to the driver in `InterruptStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// The device put buffers in this queue's used ring.
    Queue(u16),
    /// The configuration space changed, or the device needs a reset.
    Config,
}

/// What a [`HostIo`] asks the host to do with the backing store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoKind {
    /// Read from the backing store into the guest buffers.
    Read,
    /// Write the guest buffers to the backing store.
    Write,
    /// Make every completed write durable (`fsync`).
    Flush,
}

/// One contiguous piece of frontend memory taking part in host I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestBuf {
    /// Guest-physical address in the frontend domain.
    pub gpa: u64,
    /// Length in bytes.
    pub len: u32,
}

/// One block I/O the device asks the host to perform.
///
/// The buffers were validated against the frontend's RAM when the device
/// took the request off the ring; the platform translates them into its
/// own addresses (foreign window, fixed io_uring buffers) and copies
/// whatever it needs before [`Platform::submit`] returns: the slice is
/// only borrowed for the call.
#[derive(Clone, Copy, Debug)]
pub struct HostIo<'a> {
    /// Read, write or flush.
    pub kind: IoKind,
    /// Byte offset in the backing store (0 for a flush).
    pub offset: u64,
    /// Scatter-gather list, in order (empty for a flush).
    pub buffers: &'a [GuestBuf],
    /// Opaque token to hand back with the completion.
    pub tag: u64,
}

impl HostIo<'_> {
    /// Total bytes the buffers cover: the result a full success reports.
    pub fn len(&self) -> u64 {
        self.buffers.iter().map(|b| u64::from(b.len)).sum()
    }

    /// True when no bytes move (a flush).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Outcome of a host I/O: `Ok(bytes transferred)` or `Err(errno)` (a
/// positive Linux error number). A success shorter than
/// [`HostIo::len`] counts as an I/O error; the platform retries short
/// transfers itself if it wants them to succeed.
pub type IoResult = Result<u64, i32>;

/// What [`Platform::submit`] did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submission {
    /// Queued: the placement later calls the transport's `complete` with
    /// the same tag (the io_uring path).
    Pending,
    /// Done already, with this result (a synchronous platform, or a
    /// submission refused at once).
    Done(IoResult),
}

/// Services a placement provides to the backends. One value serves one
/// frontend domain (the devices pass it to every call; they keep none).
pub trait Platform {
    /// Copies `buf.len()` bytes of frontend memory at `gpa` into `buf`.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError>;

    /// Copies `data` into frontend memory at `gpa`.
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemError>;

    /// True if `[gpa, gpa + len)` lies entirely inside the frontend's RAM
    /// (overflow included). A zero `len` asks only whether `gpa` could
    /// start a range.
    fn contains(&self, gpa: u64, len: u64) -> bool;

    /// Reads a little-endian `u16` ring index. Implementations over shared
    /// memory should override this with one aligned 16-bit load, so an
    /// index the driver is updating is never seen half-written.
    fn read_u16(&self, gpa: u64) -> Result<u16, MemError> {
        let mut b = [0u8; 2];
        self.read(gpa, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    /// Writes a little-endian `u16` ring index; as with
    /// [`Platform::read_u16`], override with one aligned 16-bit store.
    fn write_u16(&mut self, gpa: u64, value: u16) -> Result<(), MemError> {
        self.write(gpa, &value.to_le_bytes())
    }

    /// Copies `len` bytes at `src_gpa` of another frontend's memory
    /// (`src`, a platform of the same placement) into this frontend's
    /// memory at `gpa`: how a switch moves a frame from one guest's
    /// transmit buffers into another guest's receive buffers. Either range
    /// outside its RAM is refused with [`MemError`] (some bytes may have
    /// been copied by then).
    ///
    /// The default bounces through a small buffer on the stack
    /// ([`Platform::read`] of `src`, then [`Platform::write`]). A placement
    /// that maps every frontend's memory in one address space (Domain-0,
    /// through its foreign windows) overrides it with one direct copy:
    /// Xen's grant copy, the frame copied once.
    fn copy_from(&mut self, gpa: u64, src: &Self, src_gpa: u64, len: u64) -> Result<(), MemError>
    where
        Self: Sized,
    {
        let refused = MemError { gpa: src_gpa, len };
        if gpa.checked_add(len).is_none() || src_gpa.checked_add(len).is_none() {
            return Err(refused);
        }
        let mut bounce = [0u8; COPY_CHUNK];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(COPY_CHUNK as u64) as usize;
            src.read(src_gpa + done, &mut bounce[..n])?;
            self.write(gpa + done, &bounce[..n])?;
            done += n as u64;
        }
        Ok(())
    }

    /// Raises the device's interrupt in the frontend.
    fn notify_guest(&mut self, cause: Interrupt);

    /// Starts a host block I/O. The platform must accept every request (it
    /// keeps its own overflow list if its ring is full) or answer
    /// [`Submission::Done`] with an error.
    fn submit(&mut self, io: &HostIo<'_>) -> Submission;

    /// Records trace step `step` of request `request` (an available-ring
    /// index, or [`protocol::trace::BATCH`]) with `detail` as its
    /// `data[1]`, if a trace session is on; the placement knows the party,
    /// the frontend and the device. The default records nothing.
    fn trace(&self, step: Step, request: u32, detail: u32) {
        let _ = (step, request, detail);
    }

    /// Where the device's state is saved as it changes, to outlive this
    /// backend ([`protocol::virtio::saved`]): Domain-0's reserved RAM, so
    /// a restarted Domain-0 takes the device over. The default keeps
    /// none.
    fn saved(&self) -> Option<&SavedDevice> {
        None
    }

    /// Bytes the console device received from the frontend. The default
    /// drops them.
    fn console_output(&mut self, bytes: &[u8]) {
        let _ = bytes;
    }
}
