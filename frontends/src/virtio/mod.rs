//! Virtio drivers over the virtio-mmio transport.
//!
//! Read in this order: [`mmio`] (registers and bring-up), [`queue`] (the
//! split virtqueue, driver side), [`wait`] (spin, then sleep until the
//! device's interrupt), then the devices: [`blk`] and [`console`].

pub mod blk;
pub mod console;
pub mod mmio;
pub mod queue;
pub mod wait;

use protocol::boot::BootInfo;
use protocol::device::{GuestDevice, MAX_DEVICES};

/// The devices the core listed in the boot info.
pub fn devices(boot: &BootInfo) -> &[GuestDevice] {
    let count = (boot.device_count as usize).min(MAX_DEVICES);
    &boot.devices[..count]
}

/// The first device of `kind` (a `protocol::device::kind` value).
pub fn find(boot: &BootInfo, kind: u32) -> Option<&GuestDevice> {
    devices(boot).iter().find(|d| d.kind == kind)
}
