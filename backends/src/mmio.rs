//! The virtio-mmio (version 2) transport: a register file driven by the
//! frontend's loads and stores.
//!
//! A placement forwards each trapped access of the device's MMIO window
//! (an ioreq in Domain-0, a KVM exit on the host) to [`MmioTransport::read`]
//! or [`MmioTransport::write`]; queue notifications that arrive through an
//! ioeventfd go to [`MmioTransport::queue_notify`] directly, and host I/O
//! completions to [`MmioTransport::complete`].
//!
//! Registers below `CONFIG` take aligned 4-byte accesses only; the
//! configuration space takes 1, 2, 4 or 8-byte accesses aligned to their
//! size. Anything else (and any read of a write-only register, write of a
//! read-only one, or offset past the configuration space) reads as 0, is
//! ignored, and is counted in [`TransportStats::bad_accesses`].

use alloc::vec::Vec;

use protocol::virtio::feature;
use protocol::virtio::features::{VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1};
use protocol::virtio::mmio as reg;
use protocol::virtio::mmio::{
    INT_CONFIG_CHANGE, INT_USED_BUFFER, STATUS_ACKNOWLEDGE, STATUS_DEVICE_NEEDS_RESET,
    STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FAILED, STATUS_FEATURES_OK,
};

use crate::device::VirtioDevice;
use crate::platform::{Interrupt, IoResult, Platform};
use crate::queue::{Queue, QueueError};
use protocol::trace::{Step, BATCH};

/// Status bits the driver may set.
const DRIVER_STATUS_BITS: u32 =
    STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK | STATUS_FAILED;

/// Counters a placement can report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Accesses answered with 0 or ignored: wrong size or alignment,
    /// unknown offset, wrong direction, writes in the wrong state.
    pub bad_accesses: u64,
    /// Queue notifications for a queue that does not exist or is not
    /// running, or while the device is stopped.
    pub ignored_notifies: u64,
    /// Queue notifications processed.
    pub notifies: u64,
    /// Times polling found a queue with work no notification announced.
    pub polled: u64,
    /// Interrupts raised.
    pub interrupts: u64,
    /// Times the device entered `DEVICE_NEEDS_RESET`.
    pub needs_reset: u64,
    /// Resets by the driver.
    pub resets: u64,
    /// Completions that arrived after a reset or while the device was
    /// stopped, and were dropped.
    pub dropped_completions: u64,
}

/// A virtio-mmio device: transport state around a [`VirtioDevice`].
#[derive(Debug)]
pub struct MmioTransport<D> {
    pub(crate) device: D,
    pub(crate) queues: Vec<Queue>,
    pub(crate) status: u32,
    pub(crate) device_features_sel: u32,
    pub(crate) driver_features_sel: u32,
    pub(crate) driver_features: u64,
    pub(crate) queue_sel: u32,
    pub(crate) interrupt_status: u32,
    pub(crate) config_generation: u32,
    last_error: Option<QueueError>,
    stats: TransportStats,
}

impl<D: VirtioDevice> MmioTransport<D> {
    /// Wraps `device`, in the reset state.
    pub fn new(device: D) -> Self {
        let queues = device
            .queue_max_sizes()
            .iter()
            .enumerate()
            .map(|(slot, &max)| Queue::new(max).numbered(slot))
            .collect();
        Self {
            device,
            queues,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            interrupt_status: 0,
            config_generation: 0,
            last_error: None,
            stats: TransportStats::default(),
        }
    }

    /// The device model.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The queues (for inspection).
    pub fn queues(&self) -> &[Queue] {
        &self.queues
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// True once the device gave up on a ring and waits for a reset.
    pub fn needs_reset(&self) -> bool {
        self.status & STATUS_DEVICE_NEEDS_RESET != 0
    }

    /// The rule the driver broke last, if any.
    pub fn last_error(&self) -> Option<QueueError> {
        self.last_error
    }

    /// Features both sides agreed on.
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// Counters.
    pub fn stats(&self) -> TransportStats {
        self.stats
    }

    /// True while the driver has the device running and it has not failed.
    pub fn is_live(&self) -> bool {
        self.status & (STATUS_DRIVER_OK | STATUS_DEVICE_NEEDS_RESET) == STATUS_DRIVER_OK
    }

    /// Handles a load of `size` bytes at `offset` in the device's window.
    pub fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset >= reg::CONFIG {
            return self.read_config(offset - reg::CONFIG, size);
        }
        if size != reg::REGISTER_WIDTH || !offset.is_multiple_of(4) {
            return self.bad();
        }
        let queue = self.queues.get(self.queue_sel as usize);
        let value: u32 = match offset {
            reg::MAGIC_VALUE => reg::MAGIC,
            reg::VERSION => reg::VERSION_2,
            reg::DEVICE_ID => self.device.device_id(),
            reg::VENDOR_ID => reg::VENDOR_ID_HYP,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device.device_features() as u32,
                1 => (self.device.device_features() >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => queue.map_or(0, |q| u32::from(q.max_size())),
            reg::QUEUE_READY => queue.map_or(0, |q| u32::from(q.ready())),
            reg::INTERRUPT_STATUS => self.interrupt_status,
            reg::STATUS => self.status,
            reg::CONFIG_GENERATION => self.config_generation,
            // No shared-memory regions: their length reads as all ones.
            reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH | reg::SHM_BASE_LOW | reg::SHM_BASE_HIGH => {
                u32::MAX
            }
            reg::QUEUE_RESET => 0,
            _ => return self.bad(),
        };
        u64::from(value)
    }

    /// Handles a store of `size` bytes of `value` at `offset` in the
    /// device's window. A queue notification is processed before this
    /// returns.
    pub fn write<P: Platform>(&mut self, p: &mut P, offset: u64, size: u8, value: u64) {
        if offset >= reg::CONFIG {
            self.write_config(p, offset - reg::CONFIG, size, value);
            return;
        }
        if size != reg::REGISTER_WIDTH || !offset.is_multiple_of(4) {
            self.bad();
            return;
        }
        let value = value as u32;
        let features_fixed = self.status & (STATUS_FEATURES_OK | STATUS_DRIVER_OK) != 0;
        let driver_ok = self.status & STATUS_DRIVER_OK != 0;
        let sel = self.queue_sel as usize;
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::DRIVER_FEATURES if !features_fixed && self.driver_features_sel < 2 => {
                let shift = 32 * self.driver_features_sel;
                self.driver_features &= !(u64::from(u32::MAX) << shift);
                self.driver_features |= u64::from(value) << shift;
            }
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::QUEUE_NUM
            | reg::QUEUE_DESC_LOW
            | reg::QUEUE_DESC_HIGH
            | reg::QUEUE_AVAIL_LOW
            | reg::QUEUE_AVAIL_HIGH
            | reg::QUEUE_USED_LOW
            | reg::QUEUE_USED_HIGH
                if !driver_ok && self.queues.get(sel).is_some_and(|q| !q.ready()) =>
            {
                let q = &mut self.queues[sel];
                match offset {
                    reg::QUEUE_NUM => q.set_size(value.min(u32::from(u16::MAX)) as u16),
                    reg::QUEUE_DESC_LOW => q.set_desc_table(set_low(q.desc_table(), value)),
                    reg::QUEUE_DESC_HIGH => q.set_desc_table(set_high(q.desc_table(), value)),
                    reg::QUEUE_AVAIL_LOW => q.set_avail_ring(set_low(q.avail_ring(), value)),
                    reg::QUEUE_AVAIL_HIGH => q.set_avail_ring(set_high(q.avail_ring(), value)),
                    reg::QUEUE_USED_LOW => q.set_used_ring(set_low(q.used_ring(), value)),
                    _ => q.set_used_ring(set_high(q.used_ring(), value)),
                }
            }
            reg::QUEUE_READY if sel < self.queues.len() => self.write_queue_ready(p, sel, value),
            reg::QUEUE_NOTIFY => match u16::try_from(value) {
                Ok(queue) => self.queue_notify(p, queue),
                Err(_) => self.stats.ignored_notifies += 1,
            },
            reg::INTERRUPT_ACK => self.interrupt_status &= !value,
            reg::STATUS => self.write_status(value),
            reg::SHM_SEL | reg::QUEUE_RESET => {}
            _ => {
                self.bad();
            }
        }
        self.save(p);
    }

    /// The driver notified `queue` (through `QueueNotify` or an
    /// ioeventfd): process what it made available.
    pub fn queue_notify<P: Platform>(&mut self, p: &mut P, queue: u16) {
        let running = self
            .queues
            .get(usize::from(queue))
            .is_some_and(Queue::ready);
        if !self.is_live() || !running {
            self.stats.ignored_notifies += 1;
            return;
        }
        self.stats.notifies += 1;
        self.process(p, queue);
    }

    fn process<P: Platform>(&mut self, p: &mut P, queue: u16) {
        let result = self.device.queue_notify(p, &mut self.queues, queue);
        self.after_device(p, result);
    }

    /// Enters or leaves polled mode on every queue (see
    /// [`Queue::set_polled`]): while the backend's CPU spins anyway, the
    /// driver need not notify, and [`MmioTransport::poll`] finds the work.
    /// Leaving asks for notifications again and processes what arrived
    /// unannounced meanwhile; returns true if there was any.
    pub fn set_polling<P: Platform>(&mut self, p: &mut P, polling: bool) -> bool {
        let mut work = false;
        for i in 0..self.queues.len() {
            let live = self.is_live();
            // A queue whose buffers are not work (a receive queue) is not
            // polled: it manages its notifications itself, and asking for
            // one must still work while the others are polled.
            if !self.device.buffers_are_work(i as u16) {
                continue;
            }
            let q = &mut self.queues[i];
            if q.polled() == polling {
                continue;
            }
            q.set_polled(polling);
            // A stopped device leaves the rings alone; the mode still
            // follows, for when the driver brings the device back.
            if !live || !q.ready() {
                continue;
            }
            let waiting = if polling {
                q.disable_notification(p).map(|()| false)
            } else {
                q.enable_notification(p)
            };
            match waiting {
                Ok(false) => {}
                Ok(true) => {
                    work = true;
                    self.process(p, i as u16);
                }
                Err(e) => self.fail(p, e),
            }
        }
        work
    }

    /// In polled mode: processes every running queue whose available
    /// index moved. Returns true if one had work.
    pub fn poll<P: Platform>(&mut self, p: &mut P) -> bool {
        let mut work = false;
        for i in 0..self.queues.len() {
            if !self.is_live()
                || !self.queues[i].polled()
                || !self.device.buffers_are_work(i as u16)
            {
                continue;
            }
            match self.queues[i].has_available(p) {
                Ok(false) => {}
                Ok(true) => {
                    work = true;
                    self.stats.polled += 1;
                    self.process(p, i as u16);
                }
                Err(e) => self.fail(p, e),
            }
        }
        work
    }

    /// A host I/O finished: hand it to the device, which returns the
    /// request to the driver. Completions arriving while the device is
    /// stopped are dropped.
    pub fn complete<P: Platform>(&mut self, p: &mut P, tag: u64, result: IoResult) {
        if !self.is_live() {
            self.stats.dropped_completions += 1;
            return;
        }
        let r = self.device.complete(p, &mut self.queues, tag, result);
        self.after_device(p, r);
    }

    /// Runs `f` on the device with the queues while the device is live,
    /// then raises the interrupts it earned; for device-specific inputs
    /// (console input, a link change). Returns `None` if the device is not
    /// live.
    pub fn with_device<P: Platform, R>(
        &mut self,
        p: &mut P,
        f: impl FnOnce(&mut D, &mut P, &mut [Queue]) -> Result<R, QueueError>,
    ) -> Option<R> {
        if !self.is_live() {
            return None;
        }
        let r = f(&mut self.device, p, &mut self.queues);
        match r {
            Ok(v) => {
                self.after_device(p, Ok(()));
                Some(v)
            }
            Err(e) => {
                self.after_device(p, Err(e));
                None
            }
        }
    }

    /// The configuration space changed (for example a resized disk): bump
    /// the generation and tell the driver.
    pub fn config_changed<P: Platform>(&mut self, p: &mut P) {
        self.config_generation = self.config_generation.wrapping_add(1);
        if self.status & STATUS_DRIVER_OK != 0 {
            self.raise(p, INT_CONFIG_CHANGE, Interrupt::Config);
        }
    }

    fn after_device<P: Platform>(&mut self, p: &mut P, result: Result<(), QueueError>) {
        if let Err(e) = result {
            self.fail(p, e);
            return;
        }
        for i in 0..self.queues.len() {
            let added = self.queues[i].unnotified();
            match self.queues[i].needs_notification(p) {
                Ok(send) => {
                    if added > 0 {
                        p.trace(Step::Interrupt, BATCH, u32::from(send));
                    }
                    if send {
                        self.raise(p, INT_USED_BUFFER, Interrupt::Queue(i as u16));
                    }
                }
                Err(e) => return self.fail(p, e),
            }
        }
    }

    /// The driver broke a ring rule: stop and ask for a reset.
    pub(crate) fn fail<P: Platform>(&mut self, p: &mut P, e: QueueError) {
        self.last_error = Some(e);
        if self.needs_reset() {
            return;
        }
        self.stats.needs_reset += 1;
        self.status |= STATUS_DEVICE_NEEDS_RESET;
        if self.status & STATUS_DRIVER_OK != 0 {
            self.raise(p, INT_CONFIG_CHANGE, Interrupt::Config);
        }
        self.save(p);
    }

    pub(crate) fn raise<P: Platform>(&mut self, p: &mut P, bit: u32, cause: Interrupt) {
        if self.interrupt_status & bit != bit {
            self.interrupt_status |= bit;
            self.save(p);
        }
        self.stats.interrupts += 1;
        p.notify_guest(cause);
    }

    fn write_queue_ready<P: Platform>(&mut self, p: &mut P, sel: usize, value: u32) {
        let features = self.driver_features;
        let q = &mut self.queues[sel];
        match value {
            0 => q.set_not_ready(),
            1 if !q.ready() => {
                q.set_features(
                    features & feature(VIRTIO_F_EVENT_IDX) != 0,
                    features & feature(VIRTIO_F_INDIRECT_DESC) != 0,
                );
                if let Err(e) = q.set_ready(p) {
                    self.fail(p, e);
                }
            }
            _ => {
                self.bad();
            }
        }
    }

    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let old = self.status;
        if value & !(DRIVER_STATUS_BITS | STATUS_DEVICE_NEEDS_RESET) != 0
            || value & old & DRIVER_STATUS_BITS != old & DRIVER_STATUS_BITS
        {
            // Unknown bits, or bits cleared without a reset.
            self.bad();
            return;
        }
        let mut new = (value & DRIVER_STATUS_BITS) | (old & STATUS_DEVICE_NEEDS_RESET);
        let set = new & !old;
        if set & STATUS_FEATURES_OK != 0 && !self.features_acceptable() {
            // Left clear: the driver reads it back and gives up.
            new &= !STATUS_FEATURES_OK;
        }
        if set & STATUS_DRIVER_OK != 0 {
            if new & STATUS_FEATURES_OK == 0 {
                self.bad();
                new &= !STATUS_DRIVER_OK;
            } else {
                let features = self.driver_features;
                for q in &mut self.queues {
                    q.set_features(
                        features & feature(VIRTIO_F_EVENT_IDX) != 0,
                        features & feature(VIRTIO_F_INDIRECT_DESC) != 0,
                    );
                }
                self.device.activate(features);
            }
        }
        self.status = new;
    }

    fn features_acceptable(&self) -> bool {
        let offered = self.device.device_features();
        self.driver_features & !offered == 0
            && self.driver_features & feature(VIRTIO_F_VERSION_1) != 0
    }

    fn reset(&mut self) {
        self.stats.resets += 1;
        self.status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.interrupt_status = 0;
        self.last_error = None;
        for q in &mut self.queues {
            q.reset();
        }
        self.device.reset();
    }

    fn read_config(&mut self, offset: u64, size: u8) -> u64 {
        let Some(start) = self.config_start(offset, size) else {
            return self.bad();
        };
        let mut bytes = [0u8; 8];
        self.device
            .read_config(start, &mut bytes[..usize::from(size)]);
        u64::from_le_bytes(bytes)
    }

    fn write_config<P: Platform>(&mut self, p: &mut P, offset: u64, size: u8, value: u64) {
        let Some(start) = self.config_start(offset, size) else {
            self.bad();
            return;
        };
        let bytes = value.to_le_bytes();
        if !self
            .device
            .write_config(p, start, &bytes[..usize::from(size)])
        {
            self.bad();
        }
    }

    /// Where in the configuration space an access starts, if it is a valid
    /// one: 1, 2, 4 or 8 bytes, aligned to its size, inside the space.
    fn config_start(&self, offset: u64, size: u8) -> Option<usize> {
        if !matches!(size, 1 | 2 | 4 | 8) || !offset.is_multiple_of(u64::from(size)) {
            return None;
        }
        let end = offset.checked_add(u64::from(size))?;
        if end > self.device.config_size() as u64 {
            return None;
        }
        Some(offset as usize)
    }

    fn bad(&mut self) -> u64 {
        self.stats.bad_accesses += 1;
        0
    }
}

fn set_low(old: u64, low: u32) -> u64 {
    (old & !u64::from(u32::MAX)) | u64::from(low)
}

fn set_high(old: u64, high: u32) -> u64 {
    (old & u64::from(u32::MAX)) | (u64::from(high) << 32)
}
