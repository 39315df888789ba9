//! What the fuzz targets share: guest RAM and a disk behind the
//! backends' [`Platform`], checking every request the device hands the
//! host, a reader over the fuzz input, and a driver's bring-up.

use std::collections::VecDeque;

use backends::{DeviceModel, GuestBuf, HostIo, Interrupt, IoKind, MemError, Platform, Submission};
use protocol::virtio::mmio as reg;

/// Guest RAM: small, so that random addresses often land inside it.
pub const RAM: usize = 64 * 1024;
/// The disk behind a blk device.
pub const DISK: usize = 16 * 1024;
/// Queue size the bring-up programs.
pub const QUEUE_SIZE: u16 = 16;
/// Where the bring-up puts queue `n`'s rings: `n * QUEUE_STRIDE`.
pub const QUEUE_STRIDE: u64 = 0x1000;

/// A host I/O held until the script completes it.
pub struct Pending {
    kind: IoKind,
    offset: u64,
    buffers: Vec<GuestBuf>,
    /// The device's tag, to complete it with.
    pub tag: u64,
}

/// Guest RAM and a disk in vectors; every request is checked on arrival.
pub struct FuzzPlatform {
    ram: Vec<u8>,
    disk: Vec<u8>,
    /// I/O the device submitted, not yet completed.
    pub pending: VecDeque<Pending>,
}

impl FuzzPlatform {
    /// Zeroed RAM and disk, nothing in flight.
    pub fn new() -> Self {
        Self {
            ram: vec![0; RAM],
            disk: vec![0; DISK],
            pending: VecDeque::new(),
        }
    }

    fn range(&self, gpa: u64, len: usize) -> Result<std::ops::Range<usize>, MemError> {
        let refused = MemError {
            gpa,
            len: len as u64,
        };
        let start = usize::try_from(gpa).map_err(|_| refused)?;
        let end = start.checked_add(len).ok_or(refused)?;
        if end > self.ram.len() {
            return Err(refused);
        }
        Ok(start..end)
    }

    /// Performs a held I/O, as the host would.
    pub fn perform(&mut self, io: &Pending) -> Result<u64, i32> {
        let mut offset = io.offset as usize;
        let mut done = 0;
        for b in &io.buffers {
            let ram = self
                .range(b.gpa, b.len as usize)
                .expect("checked at submit");
            let disk = offset..offset + b.len as usize;
            match io.kind {
                IoKind::Read => self.ram[ram].copy_from_slice(&self.disk[disk]),
                IoKind::Write => self.disk[disk].copy_from_slice(&self.ram[ram]),
                IoKind::Flush => {}
            }
            offset += b.len as usize;
            done += u64::from(b.len);
        }
        Ok(done)
    }
}

impl Default for FuzzPlatform {
    fn default() -> Self {
        Self::new()
    }
}

impl Platform for FuzzPlatform {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let range = self.range(gpa, buf.len())?;
        buf.copy_from_slice(&self.ram[range]);
        Ok(())
    }

    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemError> {
        let range = self.range(gpa, data.len())?;
        self.ram[range].copy_from_slice(data);
        Ok(())
    }

    fn contains(&self, gpa: u64, len: u64) -> bool {
        match usize::try_from(len) {
            Ok(0) => gpa < self.ram.len() as u64,
            Ok(len) => self.range(gpa, len).is_ok(),
            Err(_) => false,
        }
    }

    fn notify_guest(&mut self, _cause: Interrupt) {}

    fn submit(&mut self, io: &HostIo<'_>) -> Submission {
        let mut end = io.offset;
        for b in io.buffers {
            assert!(
                self.range(b.gpa, b.len as usize).is_ok(),
                "the device handed the host a buffer outside RAM: {b:?}"
            );
            end = end
                .checked_add(u64::from(b.len))
                .expect("I/O end overflows");
        }
        assert!(
            end <= DISK as u64,
            "I/O past the disk: {} + {}",
            io.offset,
            io.len()
        );
        assert!(
            self.pending.iter().all(|p| p.tag != io.tag),
            "tag {} given twice while in flight",
            io.tag
        );
        self.pending.push_back(Pending {
            kind: io.kind,
            offset: io.offset,
            buffers: io.buffers.to_vec(),
            tag: io.tag,
        });
        Submission::Pending
    }

    fn console_output(&mut self, bytes: &[u8]) {
        assert!(bytes.len() <= RAM, "more console output than RAM");
    }
}

/// A little reader over the script.
pub struct Script<'a>(pub &'a [u8]);

impl Script<'_> {
    /// The next byte.
    pub fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// The next two bytes, little-endian.
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }

    /// The next four bytes, little-endian.
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([
            self.byte()?,
            self.byte()?,
            self.byte()?,
            self.byte()?,
        ]))
    }

    /// Up to `n` next bytes.
    pub fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken
    }
}

/// Resets the device and brings it up with `features` and `queues`
/// queues at fixed places, as a driver does.
pub fn bring_up(model: &mut DeviceModel, p: &mut FuzzPlatform, features: u64, queues: u16) {
    let mut status = 0;
    model.write(p, reg::STATUS, 4, 0);
    for bit in [reg::STATUS_ACKNOWLEDGE, reg::STATUS_DRIVER] {
        status |= bit;
        model.write(p, reg::STATUS, 4, u64::from(status));
    }
    for sel in 0..2u64 {
        model.write(p, reg::DRIVER_FEATURES_SEL, 4, sel);
        let word = (features >> (32 * sel)) & 0xffff_ffff;
        model.write(p, reg::DRIVER_FEATURES, 4, word);
    }
    status |= reg::STATUS_FEATURES_OK;
    model.write(p, reg::STATUS, 4, u64::from(status));
    for q in 0..queues {
        let desc = u64::from(q) * QUEUE_STRIDE;
        let avail = desc + 16 * u64::from(QUEUE_SIZE);
        let used = avail + 0x100;
        model.write(p, reg::QUEUE_SEL, 4, u64::from(q));
        model.write(p, reg::QUEUE_NUM, 4, u64::from(QUEUE_SIZE));
        for (low, addr) in [
            (reg::QUEUE_DESC_LOW, desc),
            (reg::QUEUE_AVAIL_LOW, avail),
            (reg::QUEUE_USED_LOW, used),
        ] {
            model.write(p, low, 4, addr);
            model.write(p, low + 4, 4, 0);
        }
        model.write(p, reg::QUEUE_READY, 4, 1);
    }
    status |= reg::STATUS_DRIVER_OK;
    model.write(p, reg::STATUS, 4, u64::from(status));
}
