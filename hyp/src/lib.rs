//! The minimal core of a split-privilege hypervisor on KVM.
//!
//! `hyp` manages CPU and memory for every domain and nothing else: one KVM
//! VM per domain, RAM from a memfd, vCPU threads, direct 64-bit boot of an
//! ELF kernel, hypercalls, and event channels wired through KVM's
//! ioeventfd and irqfd so that domain-to-domain notifications never wake
//! this process. It knows no device: it offers seams that `hypd`'s device
//! setup builds devices from (an MMIO range with a handler, an eventfd
//! wired as a port or an MMIO write, a foreign window onto a guest's RAM
//! for Domain-0, ioreq forwarding to Domain-0, pages of Domain-0's
//! reserved RAM).
//!
//! Start at [`Hypervisor`]; the modules follow the life of a domain:
//! [`memory`] and [`elf`] build it, [`boot`] sets its first instruction,
//! `vcpu` runs it, `hypercall` and [`evtchn`] answer it. The seams are
//! [`mmio`], [`ForeignWindow`], [`IoreqServer`], [`ReservedPages`] and the
//! port operations of [`Hypervisor`].
#![deny(missing_docs)]

pub mod boot;
mod console;
pub mod domain;
pub mod elf;
pub mod error;
pub mod events;
pub mod evtchn;
mod foreign;
pub mod host_memory;
mod hypercall;
mod hypervisor;
mod ioreq;
mod irq;
mod kick;
pub mod log_limit;
pub mod memory;
pub mod mmio;
mod reserved;
mod state;
pub mod trace;
mod vcpu;

pub use console::ConsoleSink;
pub use domain::{Domain, DomainConfig, VcpuInfo};
pub use error::{ConfigError, Error, Result};
pub use events::Event;
pub use foreign::ForeignWindow;
pub use host_memory::MemoryReport;
pub use hypervisor::Hypervisor;
pub use ioreq::IoreqServer;
pub use log_limit::LogLimit;
pub use memory::GuestRam;
pub use mmio::{MmioAccess, MmioHandler};
pub use reserved::{BackendRingPage, ReservedPages};
