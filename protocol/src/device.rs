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
    /// virtio-net.
    pub const NET: u32 = 1;
    /// virtio-blk.
    pub const BLOCK: u32 = 2;
    /// virtio-console.
    pub const CONSOLE: u32 = 3;
    /// Not a guest's device: the uplink of Domain-0's switch for one
    /// bridge, a tap on the host's bridge served as a hardware queue
    /// (announced on the backend ring with domid 0).
    pub const UPLINK: u32 = 0x100;
}

/// A vif's IPv4 address and prefix length, as `ip=` gives it; a
/// `prefix_len` of 0 means none was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Ipv4Cidr {
    /// The address, in network order.
    pub addr: [u8; 4],
    /// Bits of the network part (1 to 32); 0 if there is no address.
    pub prefix_len: u8,
    /// Padding.
    pub _pad: [u8; 3],
}

impl Ipv4Cidr {
    /// True if an address was given.
    pub fn is_set(&self) -> bool {
        self.prefix_len != 0
    }

    /// True if `ip` is in this address's network.
    pub fn contains(&self, ip: [u8; 4]) -> bool {
        if !self.is_set() {
            return false;
        }
        let mask = u32::MAX << (32 - u32::from(self.prefix_len.min(32)));
        u32::from_be_bytes(ip) & mask == u32::from_be_bytes(self.addr) & mask
    }
}

/// What Domain-0 needs of a vif (a [`kind::NET`] device) besides its
/// window and ports: the switch it joins and the limits of its port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct NetParams {
    /// The vif's MAC address: frames from another source are dropped.
    pub mac: [u8; 6],
    /// Which of Domain-0's switches (one per bridge name) the port joins.
    pub switch: u16,
    /// `ip=`: with an address, IPv4 sources and ARP senders must lie in it.
    pub ip: Ipv4Cidr,
    /// `rate=`: bytes the vif may send per interval; 0 is no limit.
    pub rate_bytes: u32,
    /// `rate=`: the interval in microseconds.
    pub rate_interval_us: u32,
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
    /// The address the guest takes on a [`kind::NET`] device (`ip=`, or
    /// the default the toolstack chose).
    pub ipv4: Ipv4Cidr,
}

/// What happened to a device Dom0 serves.
pub mod event {
    /// Serve this device: a new one, or (after Domain-0 restarted) one
    /// whose state its page holds.
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
    /// Virtual device name, NUL-padded (for an uplink, the bridge's name).
    pub vdev: [u8; VDEV_LEN],
    /// Padding.
    pub _pad: u32,
    /// The vif's switch port ([`kind::NET`]); for a [`kind::UPLINK`],
    /// `switch` names the switch.
    pub net: NetParams,
    /// Dom0-physical address of the device's state page in the reserved
    /// RAM ([`crate::virtio::saved::SavedDevice`]): zeroed for a new
    /// device, and what the backend left there when Domain-0 restarted
    /// (0 for an uplink, which keeps no state).
    pub state_page: u64,
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
/// `sd<letters>[N]`, `d<disk>[p<partition>]`, or a raw device number as
/// libxl takes one (decimal, `0x` hex or `0` octal, at most `INT_MAX`;
/// `51713` is `xvda1`).
pub fn is_disk_vdev(vdev: &str) -> bool {
    if vdev.starts_with(|c: char| c.is_ascii_digit()) {
        raw_device_number(vdev).is_some()
    } else if let Some(rest) = vdev.strip_prefix("xvd") {
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

/// A device number written as C's `strtoul` with base 0 reads it, if it
/// is one no larger than `INT_MAX`.
fn raw_device_number(s: &str) -> Option<u32> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None if s.len() > 1 && s.starts_with('0') => (&s[1..], 8),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix)
        .ok()
        .filter(|&n| n <= i32::MAX as u32)
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
            "xvda",
            "xvdz",
            "xvdaa",
            "xvda1",
            "xvdb15",
            "hda",
            "hdc3",
            "sda",
            "sdb2",
            "d0",
            "d3p1",
            "51713",
            "0xca01",
            "0x301",
            "0",
            "017",
            "2147483647",
        ] {
            assert!(is_disk_vdev(good), "{good}");
        }
        for bad in [
            "",
            "xvd",
            "xvdA",
            "xvda0",
            "xvda01",
            "hdaa",
            "sd",
            "d",
            "dp1",
            "d01",
            "vda",
            "xvda1x",
            "xvda256",
            "0x",
            "0x1g",
            "09",
            "2147483648",
            "1a",
            "-1",
        ] {
            assert!(!is_disk_vdev(bad), "{bad}");
        }
    }
}
