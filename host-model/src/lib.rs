//! The host model: the very same `backends` library Domain-0 runs, served
//! inside the core's process instead, as QEMU/KVM do. It plugs into the
//! core through [`hyp::devices::LocalBackends`], the one seam where the
//! core process links backend code.
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
//!   on the io_uring so it costs no extra system call.
//!
//! Guest memory is read through `vm-memory` ([`platform`]), with every
//! range checked against the guest's RAM.

mod device;
mod platform;
mod uring;
mod worker;

use hyp::devices::{Backing, LocalBackends, LocalDevice, LocalDeviceSetup};

pub use device::HostDevice;

/// Largest queue size the devices offer (as Domain-0's do).
pub const QUEUE_SIZE: u16 = 256;

/// The host model's backends. Install one in the core with
/// [`hyp::Hypervisor::set_local_backends`].
#[derive(Debug, Default)]
pub struct HostModel;

impl HostModel {
    /// The backends.
    pub fn new() -> Self {
        Self
    }
}

impl LocalBackends for HostModel {
    fn start(&self, setup: LocalDeviceSetup) -> Result<Box<dyn LocalDevice>, String> {
        let what = match &setup.backing {
            Backing::Disk { path, readonly } => format!(
                "disk {}{}",
                path.display(),
                if *readonly { " (read-only)" } else { "" }
            ),
            Backing::Console => "console".into(),
        };
        let device = HostDevice::start(setup)?;
        tracing::info!(
            domid = device.domid(),
            "host model: serving {} ({what})",
            device.vdev()
        );
        Ok(Box::new(device))
    }
}
