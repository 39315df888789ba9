//! The device table in a guest's shared page
//! ([`protocol::boot::SharedInfo::devices`]): written before the guest
//! first runs and on every hotplug, with a generation the guest
//! acknowledges once it has stopped using a device that left.

use hyp::{Domain, GuestRam};
use protocol::boot::SharedInfo;
use protocol::device::GuestDevice;
use protocol::memory::SHARED_INFO_ADDR;
use std::mem::{offset_of, size_of};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

/// One guest's table and its generation.
#[derive(Debug, Default)]
pub struct DeviceTable {
    generation: u32,
}

impl DeviceTable {
    /// Writes `devices` into the guest's shared page and bumps the
    /// generation; returns it.
    pub fn publish(&mut self, ram: &GuestRam, devices: &[GuestDevice]) -> u32 {
        self.generation += 1;
        for (i, device) in devices.iter().enumerate() {
            let at = offset_of!(SharedInfo, devices) + i * size_of::<GuestDevice>();
            ram.write_struct(SHARED_INFO_ADDR + at as u64, device);
        }
        ram.write_u32(
            SHARED_INFO_ADDR + offset_of!(SharedInfo, device_count) as u64,
            devices.len() as u32,
        );
        fence(Ordering::Release);
        ram.write_u32(
            SHARED_INFO_ADDR + offset_of!(SharedInfo, devices_generation) as u64,
            self.generation,
        );
        self.generation
    }
}

/// Waits, up to `grace`, for `guest` to acknowledge `generation` (or to
/// stop running); true if it did acknowledge.
pub fn wait_ack(guest: &Domain, generation: u32, grace: Duration) -> bool {
    let ack_at = SHARED_INFO_ADDR + offset_of!(SharedInfo, devices_ack) as u64;
    let deadline = Instant::now() + grace;
    while !guest.state().is_final() && Instant::now() < deadline {
        if guest.ram().read_u32(ack_at).unwrap_or(0) >= generation {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}
