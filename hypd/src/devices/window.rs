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
