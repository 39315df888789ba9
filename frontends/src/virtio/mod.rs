//! Virtio drivers over the virtio-mmio transport.
//!
//! Read in this order: [`mmio`] (registers and bring-up), [`queue`] (the
//! split virtqueue, driver side), [`wait`] (spin, then sleep until the
//! device's interrupt), then the devices: [`blk`], [`console`] and
//! [`net`].

pub mod blk;
pub mod console;
pub mod mmio;
pub mod net;
pub mod queue;
pub mod wait;

use alloc::vec::Vec;
use guest_runtime::hypercall::shared_info;
use protocol::device::GuestDevice;

/// The device table's generation in the shared page: bumped by the
/// toolstack's device setup each time it writes the table.
pub fn generation() -> u32 {
    // SAFETY: a field of the shared page, written by the toolstack.
    unsafe { (&shared_info().devices_generation as *const u32).read_volatile() }
}

/// The guest's devices, as the toolstack listed them in the shared page
/// (before the guest first ran, and since on every hotplug).
///
/// The toolstack writes the entries and the count, then (after a release
/// fence) the generation; so this reads the generation first, then fences,
/// then reads the count and the entries.
pub fn devices() -> Vec<GuestDevice> {
    let info = shared_info();
    let _ = generation();
    core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
    // SAFETY: fields of the shared page, written by the toolstack.
    let count = unsafe { (&info.device_count as *const u32).read_volatile() } as usize;
    (0..count.min(protocol::device::MAX_DEVICES))
        // SAFETY: in bounds of the table.
        .map(|i| unsafe { (&info.devices[i] as *const GuestDevice).read_volatile() })
        .collect()
}

/// The first device of `kind` (a `protocol::device::kind` value).
pub fn find(kind: u32) -> Option<GuestDevice> {
    devices().into_iter().find(|d| d.kind == kind)
}
