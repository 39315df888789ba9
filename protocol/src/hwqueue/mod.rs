//! Hardware queues: how Dom0 reaches real devices.
//!
//! Dom0's "hardware" is an io_uring instance per backing device (a disk
//! image, a tap device), made by `hypd` (the `hwqueue` crate) and lent to
//! Dom0:
//!
//! * the ring memory (the SQ and CQ rings, and the array of submission
//!   entries) lies **inside Dom0's RAM** (`IORING_SETUP_NO_MMAP`), so Dom0
//!   writes submission entries (SQEs) and reads completion entries (CQEs)
//!   itself, with no copy and no hypercall;
//! * `hypd` registered, before the ring was enabled, *restrictions* that
//!   the host kernel enforces on every SQE: only the opcodes in
//!   [`ALLOWED_OPCODES`], always on the fixed file [`FIXED_FILE`]
//!   ([`SQE_FIXED_FILE`] is required), with data in the registered *fixed
//!   buffers* (Dom0's RAM and its foreign windows). The host kernel checks
//!   every transfer against those buffers, the way an IOMMU would; anything
//!   else completes with `-EACCES` ([`errno::EACCES`]) or `-EFAULT`;
//! * Dom0 rings the **doorbell** ([`QueueLayout::doorbell_addr`]) after
//!   publishing SQEs, and `hypd` asks the host kernel to consume them:
//!   the queue's doorbell thread, woken by an ioeventfd, or Dom0's own
//!   vCPU thread, on the exit of a write to the submit register;
//!   completions raise [`QueueLayout::completion_vector`] in Dom0 (an
//!   eventfd the kernel signals, wired as a KVM irqfd).
//!
//! [`QueueLayout`] is what Dom0 is told about one queue; [`QueueView`] is
//! the `no_std` ring logic Dom0 (and the hardware-queue tests) use to push
//! SQEs and
//! pop CQEs through that memory only.
//!
//! # Addresses in an SQE
//!
//! The host kernel checks a fixed-buffer transfer against the buffer's
//! *host* virtual address range, so [`Sqe::addr`] is not a guest-physical
//! address: it is [`FixedBuffer::io_addr`] plus the offset into the
//! buffer. [`QueueLayout::io_addr`] does the translation. (Dom0 is the
//! privileged domain; knowing where its own RAM sits in `hypd`'s address
//! space gives it nothing the restrictions do not already bound.)
//!
//! # Memory ordering
//!
//! The rings follow the io_uring protocol. To submit: write the SQE in
//! slot `tail & mask`, then **release**-store `tail + 1` to the SQ tail; the
//! host kernel acquire-loads the tail. To know which slots are free,
//! **acquire**-load the SQ head (the kernel release-stores it once it has
//! read the entries). To complete: **acquire**-load the CQ tail, read the
//! CQEs up to it, then **release**-store the new CQ head so the kernel may
//! reuse those slots. [`QueueView`] does exactly this.

mod abi;
mod view;

pub use abi::*;
pub use view::{QueueView, SqFull};
