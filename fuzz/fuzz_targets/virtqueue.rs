//! A hostile driver against the backends: a device is brought up as a
//! driver would, then the input is a script of register accesses, writes
//! to guest memory (descriptors, rings, requests), notifications and host
//! completions in any order (and, for a network device, frames received
//! and transmitted frames switched). The device must never panic, never
//! hand the host a buffer outside guest RAM or an I/O outside the disk,
//! and never complete a tag it was not given.
#![no_main]

use backends::{BlkConfig, DeviceModel, NetConfig, Platform};
use hyp_fuzz::{bring_up, FuzzPlatform, Script, DISK, QUEUE_SIZE};
use libfuzzer_sys::fuzz_target;
use protocol::virtio::feature;
use protocol::virtio::features::{VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1};
use protocol::virtio::mmio::WINDOW_SIZE;

fuzz_target!(|data: &[u8]| {
    let mut script = Script(data);
    let Some(setup) = script.byte() else { return };
    let (mut model, queues) = match setup % 3 {
        0 => {
            let mut config = BlkConfig::new(DISK as u64);
            config.read_only = setup & 16 != 0;
            (DeviceModel::blk(config), 1)
        }
        1 => (DeviceModel::console(QUEUE_SIZE), 2),
        _ => (DeviceModel::net(NetConfig::new([2, 0, 0, 0, 0, 1])), 2),
    };
    let mut features = feature(VIRTIO_F_VERSION_1);
    if setup & 4 != 0 {
        features |= feature(VIRTIO_F_EVENT_IDX);
    }
    if setup & 8 != 0 {
        features |= feature(VIRTIO_F_INDIRECT_DESC);
    }
    let mut p = FuzzPlatform::new();
    bring_up(&mut model, &mut p, features, queues);

    while let Some(op) = script.byte() {
        match op % 8 {
            // Guest memory: a run of bytes anywhere (rings, descriptors,
            // request headers).
            0 | 1 => {
                let Some(at) = script.u16() else { break };
                let Some(len) = script.byte() else { break };
                let bytes = script.bytes(usize::from(len)).to_vec();
                let _ = p.write(u64::from(at), &bytes);
            }
            2 => model.notify_all(&mut p),
            // Complete the oldest (or newest) held I/O, maybe failing it.
            3 => {
                let Some(how) = script.byte() else { break };
                let io = if how & 1 == 0 {
                    p.pending.pop_front()
                } else {
                    p.pending.pop_back()
                };
                if let Some(io) = io {
                    let result = match how >> 1 {
                        0 => Err(5),
                        1 => Ok(u64::from(how)),
                        _ => p.perform(&io),
                    };
                    model.complete(&mut p, io.tag, result);
                }
            }
            4 => {
                let Some(offset) = script.u16() else { break };
                let Some(value) = script.u32() else { break };
                let offset = u64::from(offset) % WINDOW_SIZE;
                model.write(&mut p, offset & !3, 4, u64::from(value));
            }
            5 => {
                let Some(offset) = script.u16() else { break };
                let _ = model.read(u64::from(offset) % WINDOW_SIZE, 4);
            }
            6 => {
                let Some(len) = script.byte() else { break };
                let input = script.bytes(usize::from(len)).to_vec();
                if let DeviceModel::Console(t) = &mut model {
                    t.with_device(&mut p, |console, p, queues| {
                        console.push_input(&input);
                        console.deliver_input(p, queues)
                    });
                } else {
                    switch_frames(&mut model, &mut p, &input);
                }
            }
            _ => {
                let Some(mode) = script.byte() else { break };
                if mode & 1 == 0 {
                    model.set_polling(&mut p, mode & 2 != 0);
                } else {
                    model.poll(&mut p);
                }
            }
        }
    }
    // Whatever is still held completes; a tag never comes back twice.
    while let Some(io) = p.pending.pop_front() {
        let result = p.perform(&io);
        model.complete(&mut p, io.tag, result);
    }
    let _ = (model.needs_reset(), model.last_error(), model.stats());
});

/// What a placement does with a network device: reads every frame the
/// driver transmitted (each must lie in guest RAM or fail cleanly), hands
/// some back, and delivers `input` as a received frame.
fn switch_frames(model: &mut DeviceModel, p: &mut FuzzPlatform, input: &[u8]) {
    let mut buf = [0u8; protocol::virtio::net::MAX_FRAME];
    let mut frames = 0usize;
    for frame in model.tx_frames() {
        assert!(
            frame.len() <= buf.len(),
            "a frame longer than the device takes"
        );
        let _ = frame.read(p, 0, &mut buf[..frame.len()]);
        frames += 1;
    }
    let keep = input.first().map_or(0, |&b| usize::from(b % 4));
    model.with_net(p, |net, p, queues| {
        net.finish_tx(p, queues, frames.saturating_sub(keep))?;
        net.receive(p, queues, input)
    });
}
