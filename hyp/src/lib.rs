//! The minimal core of a split-privilege hypervisor on KVM.
//!
//! `hyp` manages CPU and memory for every domain and nothing else: one KVM
//! VM per domain, RAM from a memfd, vCPU threads, direct 64-bit boot of an
//! ELF kernel, hypercalls, and event channels wired through KVM's
//! ioeventfd and irqfd so that domain-to-domain notifications never wake
//! this process. It knows nothing about devices.
//!
//! Start at [`Hypervisor`]; the modules follow the life of a domain:
//! [`memory`] and [`elf`] build it, [`boot`] sets its first instruction,
//! [`vcpu`] runs it, [`hypercall`] and [`evtchn`] answer it. [`devices`]
//! is the I/O plumbing that lets Dom0 serve a guest's devices, and
//! [`control`] the daemon's side of `xl`.
#![deny(missing_docs)]

pub mod boot;
pub mod control;
pub mod devices;
pub mod domain;
pub mod elf;
pub mod error;
pub mod events;
pub mod evtchn;
pub mod hwqueue;
mod hypercall;
mod hypervisor;
mod irq;
pub mod memory;
mod vcpu;

pub use domain::{Domain, DomainConfig, VcpuInfo};
pub use error::{Error, Result};
pub use events::Event;
pub use hypervisor::Hypervisor;
