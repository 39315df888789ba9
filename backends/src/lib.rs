//! Device backends: the virtio-mmio transport, virtio-blk,
//! virtio-console and virtio-net, and Domain-0's learning L2 switch, as a
//! `no_std + alloc` library.
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
//! Networking adds one loop of the placement's own: the frames a
//! [`Net`] device's driver transmitted wait, their chains outstanding,
//! until the placement asks the bridge's [`Switch`] where each goes,
//! copies it into the receivers' buffers ([`Net::receive`], from another
//! guest's memory with [`Platform::copy_from`]) or to its uplink, and
//! returns it ([`Net::finish_tx`]); both through
//! [`DeviceModel::with_net`], so the transport decides the interrupts.
//!
//! A placement that keeps each device's state where it outlives the
//! backend ([`Platform::saved`]: Domain-0's reserved RAM) can take a
//! device over after its backend stopped: [`MmioTransport::resume`].
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
pub mod net;
pub mod platform;
pub mod queue;
mod resume;
pub mod switch;

#[cfg(test)]
mod tests;

pub use blk::{Blk, BlkConfig};
pub use chain::{Buffer, Chain};
pub use console::Console;
pub use device::VirtioDevice;
pub use mmio::MmioTransport;
pub use model::DeviceModel;
pub use net::{FrameSource, GuestFrame, Net, NetConfig, NetStats, Received, TxFrame};
pub use platform::{GuestBuf, HostIo, Interrupt, IoKind, IoResult, MemError, Platform, Submission};
pub use queue::{Queue, QueueError};
pub use switch::{
    DropReason, Drops, Forward, PortConfig, PortId, PortStats, Rate, Switch, SwitchConfig,
    SwitchError,
};
