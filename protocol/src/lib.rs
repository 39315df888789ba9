//! The contract between every party of the hypervisor.
//!
//! Everything that crosses a boundary is defined here, once, and both ends
//! use the same definition (as Xen's `public/` headers are shared by the
//! hypervisor, the toolstack and every guest):
//!
//! * [`memory`]: the guest-physical memory map every domain boots with;
//! * [`boot`]: the [`boot::BootInfo`] page the core hands a kernel at entry,
//!   and the [`boot::SharedInfo`] page the core and the guest both write;
//! * [`hypercall`]: how a guest calls the core, the operation numbers and
//!   their arguments, and the error codes;
//! * [`evtchn`]: event-channel ports, vectors and the doorbell;
//! * [`domain`]: domain ids, states and shutdown reasons;
//! * [`device`]: a guest's devices, and the events that tell Dom0 to serve them;
//! * [`backend_ring`]: the ring those events travel on, with the code both
//!   ends run;
//! * [`ioreq`]: the slot that carries a guest's trapped register access to Dom0;
//! * [`virtio`]: virtio-mmio, split virtqueues, block and console formats;
//! * [`hwqueue`]: Dom0's hardware queues (io_uring rings in its RAM);
//! * [`report`]: structured results a guest workload hands to the toolstack;
//! * [`control`]: the messages between `xl` and the `hypd` daemon;
//! * [`trace`]: the records every party writes into its trace ring, and the
//!   ring's code;
//! * [`plain`]: which of these structures may be copied as bytes;
//! * [`text`]: how text a domain wrote is escaped before anyone reads it.
//!
//! The crate is `no_std` so that guest kernels link it as they are.
#![no_std]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod backend_ring;
pub mod bench;
pub mod boot;
pub mod control;
pub mod device;
pub mod domain;
pub mod evtchn;
pub mod hwqueue;
pub mod hypercall;
pub mod ioreq;
pub mod memory;
pub mod pattern;
pub mod plain;
pub mod report;
pub mod stream;
pub mod text;
pub mod trace;
pub mod virtio;
