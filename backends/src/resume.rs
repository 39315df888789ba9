//! Taking a device over from a backend that stopped (Domain-0's restart):
//! the transport and its queues write their state into the page
//! [`Platform::saved`] lends as they go, and a new transport over the
//! same page resumes from it ([`MmioTransport::resume`]). The page's
//! layout, and the order of the stores that keeps it consistent whenever
//! the backend stops, are [`protocol::virtio::saved`]'s.
//!
//! Resuming finishes or undoes the step the old backend had under way,
//! publishes the used index it had reached, and takes the chains it took
//! and did not return again, before anything new from the available ring.

use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

use protocol::virtio::feature;
use protocol::virtio::features::{VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC};
use protocol::virtio::mmio::INT_USED_BUFFER;
use protocol::virtio::queue::RING_IDX_OFFSET;
use protocol::virtio::saved::{SavedDevice, SavedQueue, SAVED_MAGIC};

use crate::device::VirtioDevice;
use crate::mmio::MmioTransport;
use crate::platform::{Interrupt, Platform};
use crate::queue::{Queue, QueueError};

impl Queue {
    /// Where this queue's state is saved, if the platform keeps it.
    pub(crate) fn saved<'p, P: Platform>(&self, p: &'p P) -> Option<&'p SavedQueue> {
        p.saved()?.queues.get(self.slot)
    }

    fn save_layout(&self, saved: &SavedDevice) {
        if let Some(q) = saved.queues.get(self.slot) {
            q.save_layout(
                self.size,
                self.ready,
                self.desc_table,
                self.avail_ring,
                self.used_ring,
            );
        }
    }

    /// Takes the queue's saved state over: layout, indices, and the
    /// chains to take again. Publishes the used index the old backend
    /// reached.
    fn resume<P: Platform>(
        &mut self,
        p: &mut P,
        event_idx: bool,
        indirect: bool,
    ) -> Result<(), QueueError> {
        let Some(saved) = self.saved(p) else {
            return Err(QueueError::NotResumable);
        };
        let (size, ready, lost) = saved.layout();
        let areas = [&saved.desc_table, &saved.avail_ring, &saved.used_ring]
            .map(|a| a.load(Ordering::Acquire));
        let at = saved.recover();
        let mut redo: Vec<u16> = saved.taken_heads(size).collect();
        redo.reverse();
        [self.desc_table, self.avail_ring, self.used_ring] = areas;
        self.size = size;
        self.set_features(event_idx, indirect);
        if lost {
            return Err(QueueError::NotResumable);
        }
        if !ready {
            return Ok(());
        }
        self.set_ready(p)?;
        self.next_avail = at.next_avail;
        self.next_used = at.next_used;
        self.redo = redo;
        // The used entries up to `next_used` were written before the
        // old backend saved their index.
        fence(Ordering::Release);
        p.write_u16(self.used_ring + RING_IDX_OFFSET, self.next_used)?;
        Ok(())
    }

    /// Chains taken again before the available ring ([`MmioTransport::resume`]).
    pub fn to_redo(&self) -> usize {
        self.redo.len()
    }
}

impl<D: VirtioDevice> MmioTransport<D> {
    /// Writes the transport's registers and every queue's layout into the
    /// platform's saved state, if it keeps one.
    pub(crate) fn save<P: Platform>(&self, p: &P) {
        let Some(saved) = p.saved() else {
            return;
        };
        let words = [
            (&saved.status, self.status),
            (&saved.device_features_sel, self.device_features_sel),
            (&saved.driver_features_sel, self.driver_features_sel),
            (&saved.queue_sel, self.queue_sel),
            (&saved.interrupt_status, self.interrupt_status),
            (&saved.config_generation, self.config_generation),
        ];
        for (field, value) in words {
            field.store(value, Ordering::Relaxed);
        }
        saved
            .driver_features
            .store(self.driver_features, Ordering::Relaxed);
        if self.status == 0 {
            // A reset: no chain is outstanding any more.
            saved.queues.iter().for_each(SavedQueue::clear);
        }
        for q in &self.queues {
            q.save_layout(saved);
        }
        saved.magic.store(SAVED_MAGIC, Ordering::Release);
    }

    /// Takes the device over from the state an earlier backend saved on
    /// the platform (nothing if there is none: a new device). A queue
    /// that cannot be taken over sets `DEVICE_NEEDS_RESET`, as a broken
    /// ring does. Every running queue then raises its interrupt, for
    /// completions the driver may not have been told of; the caller
    /// processes the queues next. Returns true if there was state.
    pub fn resume<P: Platform>(&mut self, p: &mut P) -> bool {
        let Some(saved) = p.saved().filter(|s| s.holds_state()) else {
            return false;
        };
        self.status = saved.status.load(Ordering::Acquire);
        self.device_features_sel = saved.device_features_sel.load(Ordering::Relaxed);
        self.driver_features_sel = saved.driver_features_sel.load(Ordering::Relaxed);
        self.driver_features = saved.driver_features.load(Ordering::Relaxed);
        self.queue_sel = saved.queue_sel.load(Ordering::Relaxed);
        self.interrupt_status = saved.interrupt_status.load(Ordering::Relaxed);
        self.config_generation = saved.config_generation.load(Ordering::Relaxed);
        saved.takeovers.fetch_add(1, Ordering::Relaxed);
        let features = self.driver_features;
        let event_idx = features & feature(VIRTIO_F_EVENT_IDX) != 0;
        let indirect = features & feature(VIRTIO_F_INDIRECT_DESC) != 0;
        for i in 0..self.queues.len() {
            if let Err(e) = self.queues[i].resume(p, event_idx, indirect) {
                self.fail(p, e);
            }
        }
        if self.is_live() {
            self.device.activate(features);
            for i in 0..self.queues.len() {
                if self.queues[i].ready() {
                    self.raise(p, INT_USED_BUFFER, Interrupt::Queue(i as u16));
                }
            }
        }
        self.save(p);
        true
    }
}
