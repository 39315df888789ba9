//! `hypd`, the daemon: the core with device setup around it, and the
//! control plane `xl` talks to.
//!
//! * [`Machine`] is the core ([`hyp::Hypervisor`]) together with device
//!   setup for both placements: Domain-0's hardware queues and backend
//!   ring, or the host model ([`devices`]);
//! * [`control`] serves `xl` on a Unix socket: records, consoles,
//!   lifecycle policy, the message log;
//! * [`trace`] runs a trace session over every party's ring (`xl trace`).
//!
//! As in Xen, where the toolstack (`tools/libxl`) and Dom0's backends
//! stand apart from the hypervisor (`xen/`), the core links neither of
//! the device crates: this crate does.
#![deny(missing_docs)]

pub mod control;
pub mod devices;
pub mod files;
mod machine;
pub mod trace;

pub use devices::{Backing, DeviceConfig, DeviceError, DoorbellMode, Placement};
pub use machine::restarts::{Dom0Restart, Dom0Restarts};
pub use machine::{GuestConfig, Machine};
