//! The io_uring kernel ABI this module needs, and the three raw system
//! calls.
//!
//! The kernel headers installed on the build machines predate
//! `IORING_SETUP_NO_MMAP`, and the `io-uring` crate always `mmap`s the rings
//! itself, so the few structures and constants are written out here. Each
//! value was checked against the kernel's `include/uapi/linux/io_uring.h`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `IORING_SETUP_SQPOLL`: a kernel thread polls the SQ.
pub const IORING_SETUP_SQPOLL: u32 = 1 << 1;
/// `IORING_SETUP_ATTACH_WQ`: share `wq_fd`'s SQ thread and workers.
pub const IORING_SETUP_ATTACH_WQ: u32 = 1 << 5;
/// `IORING_ENTER_SQ_WAKEUP`: wake the SQ thread.
pub const IORING_ENTER_SQ_WAKEUP: u32 = 1 << 1;
/// `IORING_SETUP_CQSIZE`: `cq_entries` in the parameters is the CQ size.
pub const IORING_SETUP_CQSIZE: u32 = 1 << 3;
/// `IORING_SETUP_R_DISABLED`: the rings start disabled, so restrictions
/// can be registered before any SQE is read.
pub const IORING_SETUP_R_DISABLED: u32 = 1 << 6;
/// `IORING_SETUP_SUBMIT_ALL`: a failing SQE does not stop the rest of the
/// batch from being submitted.
pub const IORING_SETUP_SUBMIT_ALL: u32 = 1 << 7;
/// `IORING_SETUP_NO_MMAP`: the application provides the ring memory
/// (`sq_off.user_addr`: SQEs, `cq_off.user_addr`: rings).
pub const IORING_SETUP_NO_MMAP: u32 = 1 << 14;
/// `IORING_SETUP_NO_SQARRAY`: no SQ index array; SQ slot `i` is SQE `i`.
pub const IORING_SETUP_NO_SQARRAY: u32 = 1 << 16;

/// `IORING_FEAT_NODROP`: completions that do not fit the CQ ring are kept
/// by the kernel instead of being dropped.
pub const IORING_FEAT_NODROP: u32 = 1 << 1;

/// `IORING_REGISTER_BUFFERS`: an array of `iovec`s (a null one leaves its
/// slot empty).
pub const IORING_REGISTER_BUFFERS: u32 = 0;
/// `IORING_REGISTER_FILES`: an array of file descriptors.
pub const IORING_REGISTER_FILES: u32 = 2;
/// `IORING_REGISTER_EVENTFD`: a pointer to one eventfd descriptor.
pub const IORING_REGISTER_EVENTFD: u32 = 4;
/// `IORING_REGISTER_RESTRICTIONS`: an array of [`IoUringRestriction`].
pub const IORING_REGISTER_RESTRICTIONS: u32 = 11;
/// `IORING_REGISTER_ENABLE_RINGS`: start a ring set up disabled.
pub const IORING_REGISTER_ENABLE_RINGS: u32 = 12;
/// `IORING_REGISTER_BUFFERS_UPDATE`: an [`IoUringRsrcUpdate2`].
pub const IORING_REGISTER_BUFFERS_UPDATE: u32 = 16;

/// `IORING_RESTRICTION_REGISTER_OP`: allow one `io_uring_register` opcode.
pub const IORING_RESTRICTION_REGISTER_OP: u16 = 0;
/// `IORING_RESTRICTION_SQE_OP`: allow one SQE opcode.
pub const IORING_RESTRICTION_SQE_OP: u16 = 1;
/// `IORING_RESTRICTION_SQE_FLAGS_ALLOWED`: the SQE flags that may be set.
pub const IORING_RESTRICTION_SQE_FLAGS_ALLOWED: u16 = 2;
/// `IORING_RESTRICTION_SQE_FLAGS_REQUIRED`: the SQE flags that must be set.
pub const IORING_RESTRICTION_SQE_FLAGS_REQUIRED: u16 = 3;

/// Largest SQ the kernel accepts (`IORING_MAX_ENTRIES`).
pub const IORING_MAX_ENTRIES: u32 = 32768;

/// `struct io_sqring_offsets`, the kernel's ABI. Dom0 is handed
/// [`protocol::hwqueue::SqRingOffsets`] instead: this one carries
/// `user_addr` (this process's mapping of the ring, an input of
/// `IORING_SETUP_NO_MMAP`) and follows the kernel's struct, while the
/// protocol's holds only offsets in a layout of its own; `layout.rs`
/// checks each offset and copies it across.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct IoSqringOffsets {
    /// Offset of the head.
    pub head: u32,
    /// Offset of the tail.
    pub tail: u32,
    /// Offset of the ring mask.
    pub ring_mask: u32,
    /// Offset of the entry count.
    pub ring_entries: u32,
    /// Offset of the flags.
    pub flags: u32,
    /// Offset of the dropped count.
    pub dropped: u32,
    /// Offset of the index array (0 with `NO_SQARRAY`).
    pub array: u32,
    /// Reserved.
    pub resv1: u32,
    /// With `NO_MMAP`: where the SQE array is, in this process.
    pub user_addr: u64,
}

/// `struct io_cqring_offsets`, the kernel's ABI (see [`IoSqringOffsets`]
/// for why Dom0 gets [`protocol::hwqueue::CqRingOffsets`] instead).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct IoCqringOffsets {
    /// Offset of the head.
    pub head: u32,
    /// Offset of the tail.
    pub tail: u32,
    /// Offset of the ring mask.
    pub ring_mask: u32,
    /// Offset of the entry count.
    pub ring_entries: u32,
    /// Offset of the overflow count.
    pub overflow: u32,
    /// Offset of the CQE array.
    pub cqes: u32,
    /// Offset of the flags.
    pub flags: u32,
    /// Reserved.
    pub resv1: u32,
    /// With `NO_MMAP`: where the ring area is, in this process.
    pub user_addr: u64,
}

/// `struct io_uring_params`.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct IoUringParams {
    /// SQ entries (written back by the kernel).
    pub sq_entries: u32,
    /// CQ entries (in with `CQSIZE`; written back).
    pub cq_entries: u32,
    /// `IORING_SETUP_*`.
    pub flags: u32,
    /// SQPOLL CPU.
    pub sq_thread_cpu: u32,
    /// SQPOLL idle time.
    pub sq_thread_idle: u32,
    /// `IORING_FEAT_*` (written back).
    pub features: u32,
    /// `ATTACH_WQ` ring.
    pub wq_fd: u32,
    /// Reserved.
    pub resv: [u32; 3],
    /// SQ offsets.
    pub sq_off: IoSqringOffsets,
    /// CQ offsets.
    pub cq_off: IoCqringOffsets,
}

/// `struct io_uring_restriction`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct IoUringRestriction {
    /// `IORING_RESTRICTION_*`.
    pub opcode: u16,
    /// The register opcode, SQE opcode or SQE flags, by `opcode`.
    pub arg: u8,
    /// Reserved.
    pub resv: u8,
    /// Reserved.
    pub resv2: [u32; 3],
}

/// `struct io_uring_rsrc_update2`.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct IoUringRsrcUpdate2 {
    /// First slot to update.
    pub offset: u32,
    /// Reserved.
    pub resv: u32,
    /// Pointer to `nr` new values (`iovec`s for buffers).
    pub data: u64,
    /// Pointer to `nr` tags, or 0.
    pub tags: u64,
    /// Number of slots.
    pub nr: u32,
    /// Reserved.
    pub resv2: u32,
}

const _: () = assert!(std::mem::size_of::<IoUringParams>() == 120);
const _: () = assert!(std::mem::size_of::<IoUringRestriction>() == 16);
const _: () = assert!(std::mem::size_of::<IoUringRsrcUpdate2>() == 32);

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `io_uring_setup(entries, params)`: a new ring's descriptor.
///
/// # Safety
///
/// With `IORING_SETUP_NO_MMAP`, the memory `params.sq_off.user_addr` and
/// `params.cq_off.user_addr` name must be memory the kernel may write to
/// for the ring's whole life.
pub unsafe fn setup(entries: u32, params: &mut IoUringParams) -> io::Result<OwnedFd> {
    // SAFETY: `params` is a valid, exclusive `io_uring_params` the kernel
    // reads and writes back; the ring memory is the caller's promise.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_io_uring_setup,
            entries as libc::c_long,
            params as *mut IoUringParams,
        )
    })?;
    // SAFETY: the kernel just returned this descriptor and nothing else
    // owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `io_uring_register(fd, opcode, arg, nr_args)`.
///
/// # Safety
///
/// `arg` must point to what `opcode` expects (`nr_args` elements of it),
/// and any memory it hands to the kernel (buffers) must be memory the
/// kernel may write to for as long as it is registered.
pub unsafe fn register(
    ring: &OwnedFd,
    opcode: u32,
    arg: *const libc::c_void,
    nr_args: u32,
) -> io::Result<()> {
    loop {
        // SAFETY: forwarded to the caller.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                ring.as_raw_fd() as libc::c_long,
                opcode as libc::c_long,
                arg,
                nr_args as libc::c_long,
            )
        };
        match check(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(drop),
        }
    }
}

/// `io_uring_enter(fd, to_submit, 0, flags, NULL, 0)`: submits up to
/// `to_submit` published SQEs without waiting for completions (`flags`:
/// [`IORING_ENTER_SQ_WAKEUP`] to wake an SQ thread instead).
pub fn enter(ring: &OwnedFd, to_submit: u32, flags: u32) -> io::Result<u32> {
    loop {
        // SAFETY: no pointer is passed (no signal mask, no wait argument).
        let ret = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                ring.as_raw_fd() as libc::c_long,
                to_submit as libc::c_long,
                0 as libc::c_long,
                flags as libc::c_long,
                std::ptr::null::<libc::c_void>(),
                0 as libc::c_long,
            )
        };
        match check(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(|n| n as u32),
        }
    }
}
