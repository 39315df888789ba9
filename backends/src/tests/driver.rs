//! A minimal virtio driver for the tests: lays out a split queue in guest
//! memory, negotiates through the mmio registers, posts chains (well
//! formed or not) and reads the used ring back.

use std::vec::Vec;

use protocol::virtio::features::{VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1};
use protocol::virtio::mmio as reg;
use protocol::virtio::queue::{
    avail_entry_offset, avail_event_offset, used_entry_offset, used_event_offset, Descriptor,
    UsedElem, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE,
};
use protocol::virtio::{feature, mmio};

use super::TestPlatform;
use crate::device::VirtioDevice;
use crate::mmio::MmioTransport;
use crate::platform::Platform;

/// The usual transport features a test driver accepts.
pub fn base_features() -> u64 {
    feature(VIRTIO_F_VERSION_1) | feature(VIRTIO_F_EVENT_IDX) | feature(VIRTIO_F_INDIRECT_DESC)
}

/// One buffer of a chain to post: address, length, device-writable.
pub type Seg = (u64, u32, bool);

/// The driver side of one queue.
pub struct Driver {
    pub index: u16,
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    next_desc: u16,
    pub avail_idx: u16,
    used_seen: u16,
    heap: u64,
}

impl Driver {
    /// Queue `index` of `size` entries, its rings at `base` and its
    /// buffers allocated from `heap` on.
    pub fn new(index: u16, size: u16, base: u64, heap: u64) -> Self {
        let desc = base;
        let avail = desc + 16 * u64::from(size);
        let used = (avail + 6 + 2 * u64::from(size) + 3) & !3;
        Self {
            index,
            size,
            desc,
            avail,
            used,
            next_desc: 0,
            avail_idx: 0,
            used_seen: 0,
            heap,
        }
    }

    /// Allocates `len` bytes of guest memory (16-byte aligned).
    pub fn alloc(&mut self, len: u64) -> u64 {
        let at = self.heap;
        self.heap = (self.heap + len + 15) & !15;
        at
    }

    /// Allocates a buffer holding `data`.
    pub fn alloc_with(&mut self, p: &mut TestPlatform, data: &[u8]) -> u64 {
        let at = self.alloc(data.len() as u64);
        p.write(at, data).unwrap();
        at
    }

    /// Programs this queue through the registers (driver features already
    /// written).
    pub fn program<D: VirtioDevice>(&self, t: &mut MmioTransport<D>, p: &mut TestPlatform) {
        t.write(p, reg::QUEUE_SEL, 4, u64::from(self.index));
        assert!(t.read(reg::QUEUE_NUM_MAX, 4) >= u64::from(self.size));
        t.write(p, reg::QUEUE_NUM, 4, u64::from(self.size));
        for (low, addr) in [
            (reg::QUEUE_DESC_LOW, self.desc),
            (reg::QUEUE_AVAIL_LOW, self.avail),
            (reg::QUEUE_USED_LOW, self.used),
        ] {
            t.write(p, low, 4, addr & 0xffff_ffff);
            t.write(p, low + 4, 4, addr >> 32);
        }
        t.write(p, reg::QUEUE_READY, 4, 1);
    }

    /// Writes descriptor `idx`.
    pub fn write_desc(&self, p: &mut TestPlatform, idx: u16, d: Descriptor) {
        p.write(self.desc + 16 * u64::from(idx), &d.to_bytes())
            .unwrap();
    }

    /// Puts `head` in the available ring and publishes it.
    pub fn publish(&mut self, p: &mut TestPlatform, head: u16) {
        let slot = self.avail_idx % self.size;
        p.write_u16(self.avail + avail_entry_offset(slot), head)
            .unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        p.write_u16(self.avail + 2, self.avail_idx).unwrap();
    }

    /// Writes `segs` as a chain in the next free descriptors, linked in
    /// order, and returns its head (not published).
    pub fn chain(&mut self, p: &mut TestPlatform, segs: &[Seg]) -> u16 {
        let head = self.next_desc;
        for (i, &(addr, len, write)) in segs.iter().enumerate() {
            let idx = (head + i as u16) % self.size;
            let last = i + 1 == segs.len();
            let d = Descriptor {
                addr,
                len,
                flags: if write { DESC_F_WRITE } else { 0 } | if last { 0 } else { DESC_F_NEXT },
                next: if last { 0 } else { (idx + 1) % self.size },
            };
            self.write_desc(p, idx, d);
        }
        self.next_desc = (head + segs.len() as u16) % self.size;
        head
    }

    /// Posts `segs` as one direct chain; returns its head.
    pub fn post(&mut self, p: &mut TestPlatform, segs: &[Seg]) -> u16 {
        let head = self.chain(p, segs);
        self.publish(p, head);
        head
    }

    /// Posts `segs` as an indirect table behind one descriptor.
    pub fn post_indirect(&mut self, p: &mut TestPlatform, segs: &[Seg]) -> u16 {
        let table = self.alloc(16 * segs.len() as u64);
        for (i, &(addr, len, write)) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            let d = Descriptor {
                addr,
                len,
                flags: if write { DESC_F_WRITE } else { 0 } | if last { 0 } else { DESC_F_NEXT },
                next: if last { 0 } else { i as u16 + 1 },
            };
            p.write(table + 16 * i as u64, &d.to_bytes()).unwrap();
        }
        let head = self.chain(p, &[(table, 16 * segs.len() as u32, false)]);
        let mut d = Descriptor::from_bytes(&{
            let mut b = [0u8; 16];
            p.read(self.desc + 16 * u64::from(head), &mut b).unwrap();
            b
        });
        d.flags = DESC_F_INDIRECT;
        self.write_desc(p, head, d);
        self.publish(p, head);
        head
    }

    /// Used entries the device added since the last call.
    pub fn take_used(&mut self, p: &TestPlatform) -> Vec<UsedElem> {
        let idx = p.read_u16(self.used + 2).unwrap();
        let mut out = Vec::new();
        while self.used_seen != idx {
            let slot = self.used_seen % self.size;
            let mut b = [0u8; 8];
            p.read(self.used + used_entry_offset(slot), &mut b).unwrap();
            out.push(UsedElem::from_bytes(&b));
            self.used_seen = self.used_seen.wrapping_add(1);
        }
        out
    }

    /// Sets `used_event`: the used index after which to interrupt.
    pub fn set_used_event(&self, p: &mut TestPlatform, value: u16) {
        p.write_u16(self.avail + used_event_offset(self.size), value)
            .unwrap();
    }

    /// The device's `avail_event`.
    pub fn avail_event(&self, p: &TestPlatform) -> u16 {
        p.read_u16(self.used + avail_event_offset(self.size))
            .unwrap()
    }
}

/// Brings a device up the way a driver does: reset, ACKNOWLEDGE, DRIVER,
/// features, FEATURES_OK, queues, DRIVER_OK. Returns the status read back.
pub fn bring_up<D: VirtioDevice>(
    t: &mut MmioTransport<D>,
    p: &mut TestPlatform,
    features: u64,
    queues: &[&Driver],
) -> u32 {
    t.write(p, reg::STATUS, 4, 0);
    let mut status = mmio::STATUS_ACKNOWLEDGE;
    t.write(p, reg::STATUS, 4, u64::from(status));
    status |= mmio::STATUS_DRIVER;
    t.write(p, reg::STATUS, 4, u64::from(status));
    for sel in 0..2u64 {
        t.write(p, reg::DRIVER_FEATURES_SEL, 4, sel);
        t.write(
            p,
            reg::DRIVER_FEATURES,
            4,
            (features >> (32 * sel)) & 0xffff_ffff,
        );
    }
    status |= mmio::STATUS_FEATURES_OK;
    t.write(p, reg::STATUS, 4, u64::from(status));
    if t.read(reg::STATUS, 4) as u32 & mmio::STATUS_FEATURES_OK == 0 {
        return t.read(reg::STATUS, 4) as u32;
    }
    for q in queues {
        q.program(t, p);
    }
    status |= mmio::STATUS_DRIVER_OK;
    t.write(p, reg::STATUS, 4, u64::from(status));
    t.read(reg::STATUS, 4) as u32
}
