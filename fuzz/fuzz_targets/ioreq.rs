//! ioreq slots as Domain-0 takes them: 32 bytes the core wrote from a
//! guest's trapped access, decoded, checked and dispatched to the device
//! whose register window holds them, as `service-vm`'s `serve_ioreq`
//! does, among writes to guest memory, notifications and completions.
//! Decoding must refuse what no device model serves and the devices must
//! survive any register sequence.
#![no_main]

use backends::{BlkConfig, DeviceModel, Platform};
use hyp_fuzz::{bring_up, FuzzPlatform, Script, DISK, QUEUE_SIZE};
use libfuzzer_sys::fuzz_target;
use protocol::ioreq::{IoReq, SLOT_SIZE};
use protocol::virtio::feature;
use protocol::virtio::features::VIRTIO_F_VERSION_1;
use protocol::virtio::mmio::WINDOW_SIZE;

/// Where the first device's register window sits in the guest.
const MMIO_BASE: u64 = 0xd000_0000;

fuzz_target!(|data: &[u8]| {
    let mut script = Script(data);
    let Some(setup) = script.byte() else { return };
    let mut p = FuzzPlatform::new();
    let mut devices = [
        (MMIO_BASE, DeviceModel::blk(BlkConfig::new(DISK as u64))),
        (MMIO_BASE + WINDOW_SIZE, DeviceModel::console(QUEUE_SIZE)),
    ];
    // Half the runs start with a disk a driver already set up.
    if setup & 1 != 0 {
        bring_up(&mut devices[0].1, &mut p, feature(VIRTIO_F_VERSION_1), 1);
    }
    while let Some(op) = script.byte() {
        match op % 4 {
            0 | 1 => {
                let bytes = script.bytes(SLOT_SIZE);
                let Ok(slot) = <&[u8; SLOT_SIZE]>::try_from(bytes) else {
                    break;
                };
                let request = IoReq::from_bytes(slot);
                // What is not a served access answers all ones (a read)
                // or is dropped (a write), as on a bus with nothing there.
                let _answer = request.access().and_then(|access| {
                    devices.iter_mut().find_map(|(base, model)| {
                        let offset = access.offset_in(*base, WINDOW_SIZE)?;
                        Some(match access.write {
                            None => model.read(offset, access.size),
                            Some(value) => {
                                model.write(&mut p, offset, access.size, value);
                                value
                            }
                        })
                    })
                });
            }
            2 => {
                let Some(at) = script.u16() else { break };
                let Some(len) = script.byte() else { break };
                let bytes = script.bytes(usize::from(len)).to_vec();
                let _ = p.write(u64::from(at), &bytes);
            }
            _ => {
                for (_, model) in &mut devices {
                    model.notify_all(&mut p);
                }
                // Only the disk does host I/O.
                if let Some(io) = p.pending.pop_front() {
                    let result = p.perform(&io);
                    devices[0].1.complete(&mut p, io.tag, result);
                }
            }
        }
    }
});
