//! A device's register window in its guest: where it goes, and its
//! QueueNotify register made an ioeventfd.

use super::DeviceError;
use hyp::Hypervisor;
use protocol::device::{device_window, GuestDevice, MAX_DEVICES};
use protocol::domain::DomId;
use protocol::virtio::mmio::QUEUE_NOTIFY;
use vmm_sys_util::eventfd::EventFd;

/// Queue indices whose notifications are caught in the kernel (every
/// device here has at most two queues).
const NOTIFY_QUEUES: u32 = 2;

/// Where a new device `vdev` goes beside a guest's `devices`: the first
/// register window none of them has. Refuses a second device of the
/// same name.
pub fn place(devices: &[GuestDevice], vdev: &str) -> Result<u64, DeviceError> {
    if devices.iter().any(|d| d.vdev() == vdev) {
        return Err(DeviceError::Duplicate(vdev.into()));
    }
    (0..MAX_DEVICES)
        .map(device_window)
        .find(|&w| devices.iter().all(|d| d.mmio_base != w))
        .ok_or(DeviceError::TooMany)
}

/// Makes a write of a queue index to the QueueNotify register of the
/// window at `window` signal `notify` inside KVM, without an exit.
pub fn add_notify(
    core: &Hypervisor,
    guest: DomId,
    window: u64,
    notify: &EventFd,
) -> Result<(), DeviceError> {
    for queue in 0..NOTIFY_QUEUES {
        if let Err(e) = core.add_mmio_eventfd(guest, window + QUEUE_NOTIFY, queue, notify) {
            for added in 0..queue {
                core.remove_mmio_eventfd(guest, window + QUEUE_NOTIFY, added, notify);
            }
            return Err(e.into());
        }
    }
    Ok(())
}

/// Undoes [`add_notify`].
pub fn remove_notify(core: &Hypervisor, guest: DomId, window: u64, notify: &EventFd) {
    for queue in 0..NOTIFY_QUEUES {
        core.remove_mmio_eventfd(guest, window + QUEUE_NOTIFY, queue, notify);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::device::vdev_bytes;

    fn device(index: usize, vdev: &str) -> GuestDevice {
        GuestDevice {
            mmio_base: device_window(index),
            vdev: vdev_bytes(vdev),
            ..Default::default()
        }
    }

    #[test]
    fn a_device_goes_in_the_first_free_window_under_a_new_name() {
        assert_eq!(place(&[], "xvda").unwrap(), device_window(0));
        let two = [device(0, "xvda"), device(2, "console")];
        assert_eq!(place(&two, "xvdb").unwrap(), device_window(1));
        assert!(matches!(place(&two, "xvda"), Err(DeviceError::Duplicate(n)) if n == "xvda"));
        let full: Vec<GuestDevice> = (0..MAX_DEVICES)
            .map(|i| device(i, &format!("xvd{i}")))
            .collect();
        assert!(matches!(place(&full, "more"), Err(DeviceError::TooMany)));
    }
}
