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

/// Writes one guest's device table, and counts its generations.
#[derive(Debug, Default)]
pub struct TableWriter {
    generation: u32,
}

impl TableWriter {
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
/// stop running); says so in the log if it did not.
pub fn wait_ack(guest: &Domain, generation: u32, grace: Duration) {
    let ack_at = SHARED_INFO_ADDR + offset_of!(SharedInfo, devices_ack) as u64;
    let deadline = Instant::now() + grace;
    while !guest.state().is_final() && Instant::now() < deadline {
        if guest.ram().read_u32(ack_at).unwrap_or(0) >= generation {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if !guest.state().is_final() {
        tracing::info!(
            domid = guest.id,
            "domain {} did not acknowledge device table {generation} within {grace:?}; going on",
            guest.name()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::device::vdev_bytes;

    fn read_u32(ram: &GuestRam, offset: usize) -> u32 {
        ram.read_u32(SHARED_INFO_ADDR + offset as u64).unwrap()
    }

    #[test]
    fn each_publish_writes_the_table_then_a_new_generation() {
        let ram = GuestRam::new("table-test", 1 << 20).unwrap();
        let mut table = TableWriter::default();
        let disk = GuestDevice {
            mmio_base: 0xE000_0000,
            kind: protocol::device::kind::BLOCK,
            irq_port: 5,
            vdev: vdev_bytes("xvda"),
            ..Default::default()
        };
        assert_eq!(table.publish(&ram, &[disk]), 1);
        assert_eq!(read_u32(&ram, offset_of!(SharedInfo, device_count)), 1);
        assert_eq!(
            read_u32(&ram, offset_of!(SharedInfo, devices_generation)),
            1
        );
        let at = SHARED_INFO_ADDR + offset_of!(SharedInfo, devices) as u64;
        let entry = ram.read(at, size_of::<GuestDevice>() as u64).unwrap();
        assert_eq!(&entry[..8], &0xE000_0000u64.to_le_bytes());
        assert_eq!(&entry[16..20], b"xvda");
        assert_eq!(table.publish(&ram, &[]), 2);
        assert_eq!(read_u32(&ram, offset_of!(SharedInfo, device_count)), 0);
        assert_eq!(
            read_u32(&ram, offset_of!(SharedInfo, devices_generation)),
            2
        );
    }
}
