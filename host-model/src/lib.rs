//! The host model: the very same `backends` library Domain-0 runs, served
//! inside the core's process instead, as QEMU/KVM do. `hypd`'s device
//! setup starts a [`HostDevice`] per device and registers it with the core
//! as the [`hyp::MmioHandler`] of the device's register window; the core
//! itself never links this crate.
//!
//! For each device ([`device`]):
//!
//! * a trapped register access is answered on the guest vCPU's thread
//!   that took the exit (no ioreq forwarding, no second domain);
//! * queue notifications (the guest's QueueNotify writes, caught by an
//!   ioeventfd) wake a worker thread ([`worker`]), which waits for them
//!   and for host I/O completions in one `io_uring_enter`;
//! * host I/O goes through an io_uring owned by this process ([`uring`]),
//!   with the disk as a fixed file and the guest's RAM as fixed buffers,
//!   the same kinds of requests Domain-0's hardware queue makes;
//! * the device interrupt is a write to the guest's irqfd, itself queued
//!   on the io_uring so it costs no extra system call;
//! * a vif's tap is polled and written through the same io_uring, and
//!   read, in order, by the worker itself ([`tap`]).
//!
//! Guest memory is read through `vm-memory` ([`platform`]), with every
//! range checked against the guest's RAM.

mod device;
mod error;
mod platform;
mod shared;
mod tap;
pub mod trace;
mod uring;
mod worker;

pub use device::{HostBacking, HostDevice, HostDeviceSetup};
pub use error::HostModelError;
