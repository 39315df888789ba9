//! Domain-0's hardware queues: the machine's devices, lent to the service
//! VM the way Xen gives Dom0 the physical devices.
//!
//! A [`HardwareQueue`] is one io_uring whose rings and SQE array live in a
//! region of Dom0's RAM (`IORING_SETUP_NO_MMAP`), so Dom0's kernel writes
//! submissions and reads completions itself. It is created disabled
//! (`IORING_SETUP_R_DISABLED`); before it is enabled this crate registers:
//!
//! 1. restrictions: only fixed-buffer reads and writes, fsync and nop,
//!    only on the fixed file (the list and its reasons are in `restrict.rs`);
//! 2. the backing file (disk image or tap device) as fixed file 0;
//! 3. the fixed buffers: Dom0's RAM and its foreign windows, so the host
//!    kernel bounds every transfer to them, as an IOMMU would;
//! 4. an eventfd the kernel signals on every completion, which `hypd`
//!    makes an irqfd into Dom0.
//!
//! Dom0 publishes SQEs, then rings its doorbell (an ioeventfd); a
//! [`LentQueue`] is the queue together with the doorbell thread that then
//! calls [`HardwareQueue::submit`], and that drains the queue when it is
//! taken back. The whole description Dom0 needs is
//! [`HardwareQueue::layout`], a [`protocol::hwqueue::QueueLayout`].
//!
//! The crate knows nothing of domains: it is given host addresses and
//! Dom0-physical addresses of memory that `hypd` took from the core, and a
//! file `hypd` opened.
//!
//! Checked on this machine's kernel (6.18): ring memory in a memfd mapping
//! (shared or private) works, as does anonymous memory; a read-only
//! mapping or a mapping of a regular file (ext4) is refused with `EFAULT`
//! (the kernel pins the pages long-term, for writing). Both areas must be
//! page-aligned (`EINVAL` otherwise), but need not be physically
//! contiguous nor a huge page: the kernel pins them page by page and maps
//! them contiguously for itself. It does not check that the two areas are
//! disjoint (the layout here keeps them apart). It zeroes the ring header
//! but not the CQE and SQE slots; [`HardwareQueue::new`] zeroes the whole
//! area first, so Dom0 never sees stale entries. Fixed buffers follow the
//! same pinning rules, and each is at most 1 GiB.
#![deny(missing_docs)]

mod doorbell;
mod error;
mod layout;
mod lent;
mod restrict;
mod sys;

pub use doorbell::{submit_traced, QueueTrace};
pub use error::HwQueueError;
pub use lent::LentQueue;

use error::sys as sys_err;
use protocol::hwqueue::{QueueLayout, MAX_FIXED_BUFFERS};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use sys::{IoUringParams, IoUringRsrcUpdate2};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Where a queue's rings go: `len` bytes mapped at `host_addr` in this
/// process, seen by Dom0 at guest-physical `guest_addr`. Both addresses
/// must be page-aligned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingRegion {
    /// Address of the region in this process.
    pub host_addr: u64,
    /// Guest-physical address of the region in Dom0.
    pub guest_addr: u64,
    /// Bytes available (the queue uses the first [`HardwareQueue::region_bytes`]).
    pub len: u64,
}

/// A memory range registered as a fixed buffer: `len` bytes mapped at
/// `host_addr` in this process, seen by Dom0 at guest-physical
/// `guest_addr`. At most 1 GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferRegion {
    /// Address of the range in this process.
    pub host_addr: u64,
    /// Guest-physical address of the range in Dom0.
    pub guest_addr: u64,
    /// Bytes.
    pub len: u64,
}

/// How Dom0 and the queue signal each other, as `hypd` wired it; passed
/// through to the [`QueueLayout`] unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueNotify {
    /// Guest-physical MMIO address of the queue's doorbell.
    pub doorbell_addr: u64,
    /// The value Dom0 writes there (the ioeventfd's datamatch).
    pub doorbell_value: u32,
    /// The vector the completion eventfd's irqfd raises in Dom0.
    pub completion_vector: u8,
}

/// A kernel thread that polls the SQ (`IORING_SETUP_SQPOLL`): Dom0's
/// SQEs are taken without a system call while it is awake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqPoll {
    /// How long the thread polls an idle SQ before it sleeps, in ms.
    pub idle_ms: u32,
    /// Another SQPOLL queue whose thread this one shares
    /// (`IORING_SETUP_ATTACH_WQ`): one thread for all of Dom0's queues.
    pub share_with: Option<RawFd>,
}

/// What [`HardwareQueue::new`] needs.
#[derive(Debug)]
pub struct HwQueueConfig {
    /// Where the rings go.
    pub region: RingRegion,
    /// SQ slots: a power of two up to 32768 (the CQ gets twice as many).
    pub entries: u32,
    /// The backing file, registered as fixed file 0. The ring keeps its
    /// own reference; this descriptor is closed once it is registered.
    pub file: OwnedFd,
    /// Fixed-buffer slots in order (slot 0: Dom0's RAM, then the foreign
    /// windows, by [`protocol::hwqueue::RAM_BUFFER`] and
    /// [`protocol::hwqueue::FIRST_WINDOW_BUFFER`]); `None` leaves a slot
    /// empty for [`HardwareQueue::set_buffer`] to fill later. At most
    /// [`MAX_FIXED_BUFFERS`].
    pub buffers: Vec<Option<BufferRegion>>,
    /// The doorbell and completion vector, for the layout.
    pub notify: QueueNotify,
    /// A kernel thread polling the SQ, or none (the doorbell submits).
    pub sq_poll: Option<SqPoll>,
}

/// One io_uring lent to Dom0, with its rings in Dom0's RAM. Dropping it
/// closes the ring (the kernel then unpins the ring memory and buffers)
/// and the completion eventfd.
#[derive(Debug)]
pub struct HardwareQueue {
    ring: OwnedFd,
    completions: EventFd,
    layout: QueueLayout,
    region: RingRegion,
    region_bytes: u64,
}

impl HardwareQueue {
    /// Sets up, restricts, registers and enables a queue as described in
    /// the [module documentation](self).
    ///
    /// # Safety
    ///
    /// The kernel will write to the ring region and to every buffer region
    /// (reads land there) for as long as the queue exists, and this
    /// function zeroes the ring region's first
    /// [`HardwareQueue::region_bytes`] bytes. So each region must be mapped
    /// writable memory of this process that no Rust reference covers: guest
    /// memory, accessed only through volatile or raw-pointer access.
    pub unsafe fn new(config: HwQueueConfig) -> Result<Self, HwQueueError> {
        let plan = layout::plan(&config.region, config.entries)?;
        // Checked before any system call, so a bad buffer costs nothing.
        layout::fixed_buffers(&config.buffers)?;
        // SAFETY: forwarded to the caller (`plan` checked the sizes).
        let (ring, params) = unsafe { setup_disabled(&plan, &config.region, config.sq_poll) }?;
        let layout = layout::describe(
            &plan,
            &config.region,
            &params,
            &config.buffers,
            &config.notify,
        )?;
        // SAFETY: forwarded to the caller.
        let completions = unsafe { restrict_and_enable(&ring, config.file, &config.buffers) }?;
        tracing::debug!(
            entries = plan.sq_entries,
            region = format_args!("{:#x}", config.region.guest_addr),
            buffers = config.buffers.len(),
            "hardware queue enabled"
        );
        Ok(Self {
            ring,
            completions,
            layout,
            region: config.region,
            region_bytes: plan.bytes(),
        })
    }

    /// Asks the kernel to consume every SQE Dom0 published so far
    /// (`io_uring_enter` without waiting): what the doorbell thread calls
    /// when Dom0 rings. Returns how many it consumed; each produces a CQE
    /// (invalid ones included, with a negative result).
    pub fn submit(&self) -> Result<u32, HwQueueError> {
        if self.layout.sq_polled != 0 {
            // The SQ thread takes the SQEs: wake it.
            return sys::enter(&self.ring, 0, sys::IORING_ENTER_SQ_WAKEUP)
                .map_err(sys_err("io_uring_enter (SQ_WAKEUP)"));
        }
        sys::enter(&self.ring, self.layout.sq_entries, 0).map_err(sys_err("io_uring_enter"))
    }

    /// The ring's descriptor, for another queue to share its SQ thread.
    pub fn ring_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Requests the kernel has taken from the SQ and not yet completed (or
    /// dropped for want of CQ room), read from the ring memory itself.
    pub fn in_flight(&self) -> u32 {
        let l = &self.layout;
        let taken = self.ring_word(l.sq_ring_gpa + u64::from(l.sq_off.head));
        let done = self.ring_word(l.cq_ring_gpa + u64::from(l.cq_off.tail));
        let lost = self.ring_word(l.cq_ring_gpa + u64::from(l.cq_off.overflow));
        taken.wrapping_sub(done).wrapping_sub(lost)
    }

    /// SQEs Dom0 published that the kernel has not taken yet.
    pub fn unsubmitted(&self) -> u32 {
        let l = &self.layout;
        let published = self.ring_word(l.sq_ring_gpa + u64::from(l.sq_off.tail));
        let taken = self.ring_word(l.sq_ring_gpa + u64::from(l.sq_off.head));
        published.wrapping_sub(taken)
    }

    /// True if the kernel's SQ thread takes the SQEs (`IORING_SETUP_SQPOLL`).
    pub fn is_sq_polled(&self) -> bool {
        self.layout.sq_polled != 0
    }

    /// The ring word at Dom0-physical `gpa`, one the kernel writes (or,
    /// for the SQ tail, Dom0).
    fn ring_word(&self, gpa: u64) -> u32 {
        let offset = gpa - self.region.guest_addr;
        debug_assert!(offset + 4 <= self.region_bytes && offset.is_multiple_of(4));
        let at = (self.region.host_addr + offset) as *mut u32;
        // SAFETY: `describe` checked that every ring field the layout names
        // lies 4-aligned inside the ring area, which `new`'s caller keeps
        // mapped for the queue's life; the kernel updates these words with
        // atomic stores, so an atomic load is the right way to read them.
        unsafe { AtomicU32::from_ptr(at) }.load(Ordering::Acquire)
    }

    /// What Dom0 needs to drive the queue.
    pub fn layout(&self) -> QueueLayout {
        self.layout
    }

    /// The eventfd the kernel signals on each completion: register it as
    /// an irqfd into Dom0. Non-blocking.
    pub fn completion_eventfd(&self) -> &EventFd {
        &self.completions
    }

    /// Bytes of the ring region the queue uses, from its start.
    pub fn region_bytes(&self) -> u64 {
        self.region_bytes
    }

    /// The bytes of ring region a queue of `entries` SQ slots needs, or why
    /// it cannot have that many.
    pub fn region_bytes_for(entries: u32) -> Result<u64, HwQueueError> {
        let region = RingRegion {
            host_addr: 0,
            guest_addr: 0,
            len: u64::MAX / 2,
        };
        layout::plan(&region, entries).map(|plan| plan.bytes())
    }

    /// Fills, replaces or empties fixed-buffer slot `slot` (a foreign
    /// window mapped or unmapped after the queue was made). Requests
    /// already in flight keep the old buffer until they complete.
    ///
    /// # Safety
    ///
    /// As for [`HardwareQueue::new`]: `buffer` must be writable memory of
    /// this process that no Rust reference covers, for as long as it stays
    /// registered.
    pub unsafe fn set_buffer(
        &mut self,
        slot: u16,
        buffer: Option<BufferRegion>,
    ) -> Result<(), HwQueueError> {
        let index = slot as usize;
        if index >= self.layout.nr_buffers as usize {
            return Err(HwQueueError::BadBuffer {
                slot: index,
                why: "no such slot: the queue was made with fewer",
            });
        }
        let described = match &buffer {
            Some(region) => layout::fixed_buffer(index, region)?,
            None => Default::default(),
        };
        let iov = iovec(&buffer);
        let update = IoUringRsrcUpdate2 {
            offset: slot as u32,
            data: &iov as *const libc::iovec as u64,
            nr: 1,
            ..Default::default()
        };
        // SAFETY: a valid update of one slot from one iovec; the caller
        // lets the kernel write the buffer while it is registered.
        unsafe {
            sys::register(
                &self.ring,
                sys::IORING_REGISTER_BUFFERS_UPDATE,
                (&update as *const IoUringRsrcUpdate2).cast(),
                std::mem::size_of::<IoUringRsrcUpdate2>() as u32,
            )
        }
        .map_err(sys_err("io_uring_register BUFFERS_UPDATE"))?;
        self.layout.buffers[index] = described;
        Ok(())
    }
}

/// Zeroes the ring area `plan` describes in `region` and makes a disabled
/// `NO_MMAP` ring over it; returns the ring and what the kernel reported.
///
/// # Safety
///
/// As for [`HardwareQueue::new`].
unsafe fn setup_disabled(
    plan: &layout::Plan,
    region: &RingRegion,
    sq_poll: Option<SqPoll>,
) -> Result<(OwnedFd, IoUringParams), HwQueueError> {
    // SAFETY: `plan` checked the region holds `plan.bytes()`; the caller
    // guarantees it is writable guest memory no reference covers.
    unsafe {
        std::ptr::write_bytes(region.host_addr as *mut u8, 0, plan.bytes() as usize);
    }
    let mut params = IoUringParams {
        flags: sys::IORING_SETUP_NO_MMAP
            | sys::IORING_SETUP_R_DISABLED
            | sys::IORING_SETUP_CQSIZE
            | sys::IORING_SETUP_NO_SQARRAY
            | sys::IORING_SETUP_SUBMIT_ALL,
        cq_entries: plan.cq_entries,
        ..Default::default()
    };
    if let Some(poll) = sq_poll {
        params.flags |= sys::IORING_SETUP_SQPOLL;
        params.sq_thread_idle = poll.idle_ms;
        if let Some(fd) = poll.share_with {
            params.flags |= sys::IORING_SETUP_ATTACH_WQ;
            params.wq_fd = fd as u32;
        }
    }
    params.cq_off.user_addr = region.host_addr;
    params.sq_off.user_addr = region.host_addr + plan.rings_bytes;
    // SAFETY: both areas lie in the ring region (checked by `plan`), which
    // the caller lets the kernel write for the queue's life.
    let ring = unsafe { sys::setup(plan.sq_entries, &mut params) }.map_err(sys_err(
        "io_uring_setup (NO_MMAP, R_DISABLED, SQPOLL if asked)",
    ))?;
    if params.features & sys::IORING_FEAT_NODROP == 0 {
        tracing::warn!("io_uring without FEAT_NODROP: completions may be lost on overflow");
    }
    Ok((ring, params))
}

/// Registers on the disabled `ring`, in this order, the restrictions, the
/// `file` as fixed file 0, the fixed `buffers` and a completion eventfd,
/// then enables the ring; returns the eventfd.
///
/// # Safety
///
/// As for [`HardwareQueue::new`]: the kernel may write the buffers for as
/// long as the ring exists.
unsafe fn restrict_and_enable(
    ring: &OwnedFd,
    file: OwnedFd,
    buffers: &[Option<BufferRegion>],
) -> Result<EventFd, HwQueueError> {
    let restrictions = restrict::restrictions();
    // SAFETY: a valid array of `len` restrictions, read by the kernel.
    unsafe {
        sys::register(
            ring,
            sys::IORING_REGISTER_RESTRICTIONS,
            restrictions.as_ptr().cast(),
            restrictions.len() as u32,
        )
    }
    .map_err(sys_err("io_uring_register RESTRICTIONS"))?;

    let files = [file.as_raw_fd()];
    // SAFETY: an array of one open descriptor; the kernel takes its own
    // reference to the file, so `file` may close after.
    unsafe { sys::register(ring, sys::IORING_REGISTER_FILES, files.as_ptr().cast(), 1) }
        .map_err(sys_err("io_uring_register FILES"))?;
    drop(file);

    if !buffers.is_empty() {
        let iovecs: Vec<libc::iovec> = buffers.iter().map(iovec).collect();
        // SAFETY: valid iovecs (null ones leave their slot empty); the
        // caller lets the kernel write the buffers for the ring's life.
        unsafe {
            sys::register(
                ring,
                sys::IORING_REGISTER_BUFFERS,
                iovecs.as_ptr().cast(),
                iovecs.len() as u32,
            )
        }
        .map_err(sys_err("io_uring_register BUFFERS"))?;
    }

    let completions = EventFd::new(EFD_NONBLOCK | libc::EFD_CLOEXEC)
        .map_err(sys_err("eventfd for completions"))?;
    let efd = [completions.as_raw_fd()];
    // SAFETY: a pointer to one open eventfd descriptor.
    unsafe { sys::register(ring, sys::IORING_REGISTER_EVENTFD, efd.as_ptr().cast(), 1) }
        .map_err(sys_err("io_uring_register EVENTFD"))?;

    // SAFETY: this opcode takes no argument.
    unsafe { sys::register(ring, sys::IORING_REGISTER_ENABLE_RINGS, std::ptr::null(), 0) }
        .map_err(sys_err("io_uring_register ENABLE_RINGS"))?;
    Ok(completions)
}

/// The iovec registering `buffer` (a null one for an empty slot).
fn iovec(buffer: &Option<BufferRegion>) -> libc::iovec {
    match buffer {
        Some(b) => libc::iovec {
            iov_base: b.host_addr as *mut libc::c_void,
            iov_len: b.len as usize,
        },
        None => libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        },
    }
}

const _: () = assert!(MAX_FIXED_BUFFERS <= u16::MAX as usize);
