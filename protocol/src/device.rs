//! Devices: what a guest is told about its devices, and what Dom0 is told
//! about the devices it must serve.
//!
//! A guest finds its devices in [`crate::boot::SharedInfo::devices`]: each
//! is a virtio-mmio window in the guest's MMIO hole, and an event-channel
//! port on which the device's interrupts arrive.
//!
//! Dom0 learns about devices through the *backend ring*
//! ([`crate::backend_ring`]), where the toolstack's device setup appends
//! [`BackendEvent`]s. Every port named in an event is a port of Dom0's,
//! already wired.

/// Most devices one guest can have.
pub const MAX_DEVICES: usize = 8;

/// Guest-physical address of the first device window in a guest.
pub const DEVICE_MMIO_BASE: u64 = 0xE000_0000;
/// Size of a device window (one virtio-mmio register page).
pub const DEVICE_WINDOW_SIZE: u64 = 0x1000;

/// The guest-physical base of device `index`'s window.
pub const fn device_window(index: usize) -> u64 {
    DEVICE_MMIO_BASE + index as u64 * DEVICE_WINDOW_SIZE
}

/// Guest-physical address in Dom0 of the first foreign window.
pub const FOREIGN_BASE: u64 = 1 << 32;
/// Spacing of foreign windows in Dom0 (each guest's RAM is below 4 GiB).
pub const FOREIGN_STRIDE: u64 = 1 << 32;
/// Most foreign windows Dom0 can have at once.
pub const MAX_FOREIGN_WINDOWS: usize = 15;
/// Where a foreign window's mapping must end, in guest-physical terms:
/// each window's page directory maps 1 GiB (512 pages of 2 MiB), and the
/// host kernel takes at most 1 GiB as one io_uring fixed buffer.
pub const MAX_WINDOW_BYTES: u64 = 1 << 30;

const _: () = assert!(MAX_WINDOW_BYTES <= FOREIGN_STRIDE);

/// Device kinds, with virtio's device ids.
pub mod kind {
    /// virtio-blk.
    pub const BLOCK: u32 = 2;
    /// virtio-console.
    pub const CONSOLE: u32 = 3;
}

/// Longest virtual-device name (`xvda`, `console`), NUL-padded.
pub const VDEV_LEN: usize = 16;

/// One device as its guest sees it (in [`crate::boot::SharedInfo`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct GuestDevice {
    /// Guest-physical base of the virtio-mmio window.
    pub mmio_base: u64,
    /// A [`kind`] value.
    pub kind: u32,
    /// The guest's port on which the device's interrupts arrive.
    pub irq_port: u32,
    /// Virtual device name, NUL-padded.
    pub vdev: [u8; VDEV_LEN],
}

/// What happened to a device Dom0 serves.
pub mod event {
    /// Serve this new device.
    pub const ADDED: u32 = 1;
    /// The device is gone (its guest was destroyed): stop touching its
    /// window and ports.
    pub const REMOVED: u32 = 2;
}

/// One entry of the backend ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct BackendEvent {
    /// [`event::ADDED`] or [`event::REMOVED`].
    pub event: u32,
    /// A [`kind`] value.
    pub kind: u32,
    /// Unique id of the device, for REMOVED to name it.
    pub device_id: u32,
    /// The guest's domain id.
    pub domid: u16,
    /// True if the guest may not write (block devices).
    pub readonly: u16,
    /// The device's window base in the guest (ioreq addresses fall in it).
    pub guest_mmio_base: u64,
    /// Dom0-physical address of the guest's ioreq page (one slot per
    /// guest vCPU).
    pub ioreq_page: u64,
    /// Slots in the ioreq page: the guest's vCPUs (at most
    /// [`crate::domain::MAX_VCPUS`]). Each slot's `vp_eport` names the Dom0
    /// port its requests are raised on, as in Xen.
    pub ioreq_slots: u32,
    /// Padding.
    pub _pad0: u32,
    /// Dom0 port raised when the guest notifies any of the device's queues.
    pub notify_port: u32,
    /// Dom0 port to send on to interrupt the guest.
    pub irq_port: u32,
    /// Dom0-physical base of the foreign window onto the guest's RAM:
    /// guest-physical `g` is Dom0-physical `window_base + g`.
    pub window_base: u64,
    /// Size of the guest's RAM (the window's length).
    pub window_bytes: u64,
    /// Size of the backing disk in bytes (block devices).
    pub disk_bytes: u64,
    /// Dom0-physical address of the disk's hardware-queue
    /// [`crate::hwqueue::QueueLayout`] (block devices; 0 otherwise).
    pub queue_layout: u64,
    /// Dom0 port raised when the hardware queue completes requests; send
    /// on it to ring the queue's doorbell.
    pub queue_port: u32,
    /// Virtual device name, NUL-padded.
    pub vdev: [u8; VDEV_LEN],
    /// Padding.
    pub _pad: u32,
}

impl GuestDevice {
    /// The device name as text.
    pub fn vdev(&self) -> &str {
        let len = self.vdev.iter().position(|&b| b == 0).unwrap_or(VDEV_LEN);
        core::str::from_utf8(&self.vdev[..len]).unwrap_or("")
    }
}

/// Packs a device name into a NUL-padded array (truncating).
pub fn vdev_bytes(name: &str) -> [u8; VDEV_LEN] {
    let mut bytes = [0u8; VDEV_LEN];
    let len = name.len().min(VDEV_LEN);
    bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
    bytes
}

/// Whether `vdev` looks like a Xen virtual device name (see
/// xen-vbd-interface(7)): `xvd<letters>[N]`, `hd<letter>[N]`,
/// `sd<letters>[N]` or `d<disk>[p<partition>]`.
pub fn is_disk_vdev(vdev: &str) -> bool {
    if let Some(rest) = vdev.strip_prefix("xvd") {
        letters_then_partition(rest, 4)
    } else if let Some(rest) = vdev.strip_prefix("hd") {
        letters_then_partition(rest, 1)
    } else if let Some(rest) = vdev.strip_prefix("sd") {
        letters_then_partition(rest, 3)
    } else if let Some(rest) = vdev.strip_prefix('d') {
        let (disk, partition) = match rest.split_once('p') {
            Some((d, p)) => (d, Some(p)),
            None => (rest, None),
        };
        small_number(disk, (1 << 20) - 1, true)
            && partition.is_none_or(|p| small_number(p, 255, true))
    } else {
        false
    }
}

/// `1..=max_letters` lower-case letters, then an optional partition 1 to 255.
fn letters_then_partition(s: &str, max_letters: usize) -> bool {
    let letters = s.bytes().take_while(u8::is_ascii_lowercase).count();
    let partition = s.get(letters..).unwrap_or("");
    (1..=max_letters).contains(&letters)
        && (partition.is_empty() || small_number(partition, 255, false))
}

/// Decimal digits without a leading zero (`0` itself if `zero_ok`), at most `max`.
fn small_number(s: &str, max: u32, zero_ok: bool) -> bool {
    let digits_ok = !s.is_empty() && s.len() <= 7 && s.bytes().all(|b| b.is_ascii_digit());
    let leading_ok = !s.starts_with('0') || (zero_ok && s == "0");
    digits_ok && leading_ok && s.parse::<u32>().is_ok_and(|n| n <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vdev_names() {
        for good in [
            "xvda", "xvdz", "xvdaa", "xvda1", "xvdb15", "hda", "hdc3", "sda", "sdb2", "d0", "d3p1",
        ] {
            assert!(is_disk_vdev(good), "{good}");
        }
        for bad in [
            "", "xvd", "xvdA", "xvda0", "xvda01", "hdaa", "sd", "d", "dp1", "d01", "vda", "xvda1x",
            "xvda256",
        ] {
            assert!(!is_disk_vdev(bad), "{bad}");
        }
    }
}
