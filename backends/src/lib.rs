//! Device backends: the virtio-mmio transport, virtio-blk and
//! virtio-console, as a `no_std + alloc` library.
//!
//! The same code runs in two placements: inside Domain-0's kernel (the
//! hybrid model: register accesses arrive as ioreqs, host I/O goes through
//! Domain-0's hardware queues) and inside the core's process (the host
//! model: register accesses arrive as KVM exits, host I/O through the
//! core's own io_uring). A placement implements [`Platform`] for each
//! frontend domain and drives a [`MmioTransport`] per device:
//!
//! 1. a trapped load or store in the device's MMIO window:
//!    [`MmioTransport::read`] / [`MmioTransport::write`];
//! 2. a queue notification caught by an ioeventfd:
//!    [`MmioTransport::queue_notify`];
//! 3. a host I/O completion: [`MmioTransport::complete`] with the tag the
//!    device gave [`Platform::submit`] (or none at all, when the platform
//!    answered [`Submission::Done`]);
//! 4. device-specific input, such as console bytes:
//!    [`MmioTransport::with_device`].
//!
//! The devices read the rings as a hostile guest may have written them:
//! see [`queue`] for the rules. A broken rule sets `DEVICE_NEEDS_RESET`
//! and stops the device until the driver resets it; it never panics the
//! backend.
#![no_std]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod blk;
pub mod chain;
pub mod console;
pub mod device;
pub mod inflight;
pub mod mmio;
pub mod model;
pub mod platform;
pub mod queue;

#[cfg(test)]
mod tests;

pub use blk::{Blk, BlkConfig};
pub use chain::{Buffer, Chain};
pub use console::Console;
pub use device::VirtioDevice;
pub use mmio::MmioTransport;
pub use model::DeviceModel;
pub use platform::{GuestBuf, HostIo, Interrupt, IoKind, IoResult, MemError, Platform, Submission};
pub use queue::{Queue, QueueError};
