//! The device side of a split virtqueue, written for a hostile driver.
//!
//! The driver owns the memory the rings live in and may change it at any
//! moment, so the device:
//!
//! * reads each ring index and each descriptor out of guest memory exactly
//!   once, into a local copy, and validates only the copy;
//! * checks every buffer (and every indirect table) against the frontend's
//!   RAM through [`Platform::contains`];
//! * bounds every walk: a chain visits each descriptor of its table at
//!   most once (a repeat is a loop), so it has at most `size` descriptors,
//!   or at most the table's length inside an indirect table;
//! * refuses an available index that runs more than `size` entries ahead,
//!   a head already in flight (checked by the devices), nested indirect
//!   tables, indirect tables whose length is not a whole number of
//!   descriptors, and readable buffers after writable ones.
//!
//! Any violation is a [`QueueError`]; the transport turns it into
//! `DEVICE_NEEDS_RESET`. Nothing here panics on guest input.
//!
//! Notification suppression follows `VIRTIO_F_EVENT_IDX` when negotiated
//! (the device writes `avail_event`, honours `used_event`), and the ring
//! flags otherwise. A device whose CPU is polling anyway can put a queue in
//! polled mode ([`Queue::set_polled`]): it then asks for no notifications
//! at all and watches the available index instead ([`Queue::has_available`]),
//! as QEMU's virtqueue polling and vhost's busy loop do.

use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

use protocol::virtio::queue::{
    self as layout, avail_entry_offset, avail_event_offset, used_entry_offset, used_event_offset,
    Descriptor, UsedElem, AVAIL_ALIGN, AVAIL_F_NO_INTERRUPT, DESC_ALIGN, DESC_SIZE,
    RING_IDX_OFFSET, USED_ALIGN, USED_F_NO_NOTIFY,
};

use crate::chain::{Buffer, Chain};
use crate::platform::{MemError, Platform};

/// Largest indirect table accepted, in descriptors (the largest queue).
pub const MAX_INDIRECT_DESCRIPTORS: u32 = protocol::virtio::mmio::MAX_QUEUE_SIZE as u32;

/// A rule the driver broke. Every variant means the ring can no longer be
/// trusted: the device stops and asks for a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// A ring, descriptor table or buffer access fell outside the
    /// frontend's RAM.
    Memory(MemError),
    /// The queue was used before it was made ready.
    NotReady,
    /// Size not a power of two in range, or a ring misaligned or outside
    /// RAM.
    BadLayout,
    /// The available index ran more than the queue size ahead of the
    /// device.
    AvailIdxJump {
        /// Where the device was.
        next_avail: u16,
        /// What the driver published.
        avail_idx: u16,
    },
    /// A head index in the available ring is not below the queue size.
    HeadOutOfRange(u16),
    /// A head was made available again while the device still holds it.
    HeadInFlight(u16),
    /// A `next` field points past the end of its table.
    NextOutOfRange(u16),
    /// A chain came back to a descriptor it already visited.
    Loop(u16),
    /// A chain has more descriptors than its table.
    ChainTooLong,
    /// The buffers of one chain add up to more than 4 GiB.
    ChainTooBig,
    /// A buffer lies (partly) outside the frontend's RAM.
    BufferOutOfRange {
        /// Its address.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// A device-readable buffer follows a device-writable one.
    ReadableAfterWritable,
    /// An indirect descriptor, but `VIRTIO_F_INDIRECT_DESC` was not
    /// negotiated.
    IndirectNotNegotiated,
    /// An indirect descriptor inside an indirect table.
    NestedIndirect,
    /// An indirect descriptor that also has `DESC_F_NEXT`.
    IndirectWithNext,
    /// An indirect table whose length is zero, not a multiple of 16 or
    /// larger than [`MAX_INDIRECT_DESCRIPTORS`] entries.
    IndirectBadLength(u32),
    /// An indirect table (partly) outside the frontend's RAM.
    IndirectOutOfRange {
        /// Its address.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// The queue's saved state could not track every chain taken (more
    /// queues or larger ones than [`protocol::virtio::saved`] keeps), so
    /// a new backend cannot take it over.
    NotResumable,
}

impl From<MemError> for QueueError {
    fn from(e: MemError) -> Self {
        Self::Memory(e)
    }
}

/// A set of descriptor indices, for loop detection. Cleared through the
/// list of indices set, so a walk costs time in its own length only.
#[derive(Debug, Default)]
struct Visited {
    bits: Vec<u64>,
    set: Vec<u16>,
}

impl Visited {
    fn resize(&mut self, entries: u32) {
        let words = entries.div_ceil(64) as usize;
        if self.bits.len() < words {
            self.bits.resize(words, 0);
        }
    }

    /// Marks `idx`; false if it was marked already. `idx` must be below the
    /// size given to `resize`.
    fn insert(&mut self, idx: u16) -> bool {
        let (word, bit) = (usize::from(idx / 64), idx % 64);
        let seen = self.bits[word] & (1 << bit) != 0;
        self.bits[word] |= 1 << bit;
        if !seen {
            self.set.push(idx);
        }
        !seen
    }

    fn clear(&mut self) {
        for idx in self.set.drain(..) {
            self.bits[usize::from(idx / 64)] = 0;
        }
    }
}

/// One split virtqueue, device side.
#[derive(Debug)]
pub struct Queue {
    max_size: u16,
    pub(crate) size: u16,
    pub(crate) ready: bool,
    pub(crate) desc_table: u64,
    pub(crate) avail_ring: u64,
    pub(crate) used_ring: u64,
    pub(crate) next_avail: u16,
    pub(crate) next_used: u16,
    event_idx: bool,
    indirect: bool,
    /// The queue's place in the device's saved state
    /// ([`protocol::virtio::saved::SavedDevice::queues`]).
    pub(crate) slot: usize,
    /// Chains an earlier backend took and did not return, to take again
    /// before the available ring ([`crate::resume`]); last first.
    pub(crate) redo: Vec<u16>,
    /// Used entries published since the last [`Queue::needs_notification`].
    num_added: u32,
    /// The device polls the available index: no notifications wanted.
    polled: bool,
    direct_seen: Visited,
    indirect_seen: Visited,
}

impl Queue {
    /// A queue the driver may size up to `max_size` entries (the value of
    /// `QueueNumMax`).
    pub fn new(max_size: u16) -> Self {
        Self {
            max_size,
            size: max_size,
            ready: false,
            desc_table: 0,
            avail_ring: 0,
            used_ring: 0,
            next_avail: 0,
            next_used: 0,
            event_idx: false,
            indirect: false,
            num_added: 0,
            polled: false,
            slot: 0,
            redo: Vec::new(),
            direct_seen: Visited::default(),
            indirect_seen: Visited::default(),
        }
    }

    /// The same queue as queue `slot` of its device (where its state is
    /// saved).
    pub fn numbered(mut self, slot: usize) -> Self {
        self.slot = slot;
        self
    }

    /// Back to the state after [`Queue::new`] (device reset). Polled mode
    /// is the device's own choice and survives it.
    pub fn reset(&mut self) {
        let seen = (
            core::mem::take(&mut self.direct_seen),
            core::mem::take(&mut self.indirect_seen),
        );
        let (polled, slot) = (self.polled, self.slot);
        *self = Self::new(self.max_size).numbered(slot);
        (self.direct_seen, self.indirect_seen) = seen;
        self.polled = polled;
    }

    /// Largest size the driver may choose.
    pub fn max_size(&self) -> u16 {
        self.max_size
    }

    /// Size the driver chose.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// True once [`Queue::set_ready`] succeeded.
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Sets the size (checked when the queue is made ready).
    pub fn set_size(&mut self, size: u16) {
        self.size = size;
    }

    /// Address of the descriptor table.
    pub fn desc_table(&self) -> u64 {
        self.desc_table
    }

    /// Address of the available ring.
    pub fn avail_ring(&self) -> u64 {
        self.avail_ring
    }

    /// Address of the used ring.
    pub fn used_ring(&self) -> u64 {
        self.used_ring
    }

    /// Sets the descriptor table address.
    pub fn set_desc_table(&mut self, gpa: u64) {
        self.desc_table = gpa;
    }

    /// Sets the available ring address.
    pub fn set_avail_ring(&mut self, gpa: u64) {
        self.avail_ring = gpa;
    }

    /// Sets the used ring address.
    pub fn set_used_ring(&mut self, gpa: u64) {
        self.used_ring = gpa;
    }

    /// Index of the next available entry the device will take.
    pub fn next_avail(&self) -> u16 {
        self.next_avail
    }

    /// Index of the next used entry the device will write.
    pub fn next_used(&self) -> u16 {
        self.next_used
    }

    /// Applies the negotiated features (`VIRTIO_F_EVENT_IDX`,
    /// `VIRTIO_F_INDIRECT_DESC`).
    pub fn set_features(&mut self, event_idx: bool, indirect: bool) {
        self.event_idx = event_idx;
        self.indirect = indirect;
    }

    /// Checks the layout the driver set up and starts the queue: the size
    /// a power of two up to the maximum, each area aligned as the spec
    /// requires and inside the frontend's RAM.
    pub fn set_ready<P: Platform>(&mut self, p: &P) -> Result<(), QueueError> {
        let size = self.size;
        let ok = layout::is_valid_size(size)
            && size <= self.max_size
            && self.desc_table.is_multiple_of(DESC_ALIGN)
            && self.avail_ring.is_multiple_of(AVAIL_ALIGN)
            && self.used_ring.is_multiple_of(USED_ALIGN)
            && p.contains(self.desc_table, layout::desc_table_size(size))
            && p.contains(self.avail_ring, layout::avail_ring_size(size))
            && p.contains(self.used_ring, layout::used_ring_size(size));
        if !ok {
            return Err(QueueError::BadLayout);
        }
        self.direct_seen.resize(u32::from(size));
        self.ready = true;
        Ok(())
    }

    /// Stops the queue (the driver wrote 0 to `QueueReady`).
    pub fn set_not_ready(&mut self) {
        self.ready = false;
    }

    /// Takes the next available chain into `chain`. `Ok(false)` when the
    /// ring is empty.
    pub fn pop<P: Platform>(&mut self, p: &P, chain: &mut Chain) -> Result<bool, QueueError> {
        if !self.ready {
            return Err(QueueError::NotReady);
        }
        if let Some(head) = self.redo.pop() {
            // Taken by an earlier backend: still marked taken.
            let walked = self.walk(p, head, chain);
            self.direct_seen.clear();
            self.indirect_seen.clear();
            return walked.map(|()| true);
        }
        let avail_idx = p.read_u16(self.avail_ring + RING_IDX_OFFSET)?;
        let pending = avail_idx.wrapping_sub(self.next_avail);
        if pending > self.size {
            return Err(QueueError::AvailIdxJump {
                next_avail: self.next_avail,
                avail_idx,
            });
        }
        if pending == 0 {
            return Ok(false);
        }
        // Read the ring entry and the descriptors only after the index
        // that published them.
        fence(Ordering::Acquire);
        let slot = self.next_avail & (self.size - 1);
        let head = p.read_u16(self.avail_ring + avail_entry_offset(slot))?;
        let walked = self.walk(p, head, chain);
        self.direct_seen.clear();
        self.indirect_seen.clear();
        walked?;
        if let Some(saved) = self.saved(p) {
            saved.took(head, self.next_avail);
        }
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(true)
    }

    /// Copies and validates the chain starting at `head`. Long because every
    /// check a hostile ring needs (section 2.7.5 of the virtio spec, and the
    /// indirect rules of 2.7.5.3) is here, in the order a descriptor meets
    /// them, so none can be skipped on one path and not another.
    fn walk<P: Platform>(&mut self, p: &P, head: u16, chain: &mut Chain) -> Result<(), QueueError> {
        if head >= self.size {
            return Err(QueueError::HeadOutOfRange(head));
        }
        chain.clear(head);
        let mut table = self.desc_table;
        let mut table_len = u32::from(self.size);
        let mut in_indirect = false;
        let mut idx = head;
        let mut count = 0u32;
        let mut total = 0u64;
        loop {
            if u32::from(idx) >= table_len {
                return Err(QueueError::NextOutOfRange(idx));
            }
            let seen = if in_indirect {
                &mut self.indirect_seen
            } else {
                &mut self.direct_seen
            };
            if !seen.insert(idx) {
                return Err(QueueError::Loop(idx));
            }
            count += 1;
            if count > table_len {
                return Err(QueueError::ChainTooLong);
            }
            let mut raw = [0u8; DESC_SIZE as usize];
            p.read(table + u64::from(idx) * DESC_SIZE, &mut raw)?;
            let d = Descriptor::from_bytes(&raw);

            if d.is_indirect() {
                if in_indirect {
                    return Err(QueueError::NestedIndirect);
                }
                if !self.indirect {
                    return Err(QueueError::IndirectNotNegotiated);
                }
                if d.has_next() {
                    return Err(QueueError::IndirectWithNext);
                }
                let entries = d.len / DESC_SIZE as u32;
                if d.len == 0
                    || !u64::from(d.len).is_multiple_of(DESC_SIZE)
                    || entries > MAX_INDIRECT_DESCRIPTORS
                {
                    return Err(QueueError::IndirectBadLength(d.len));
                }
                if !p.contains(d.addr, u64::from(d.len)) {
                    return Err(QueueError::IndirectOutOfRange {
                        addr: d.addr,
                        len: d.len,
                    });
                }
                self.indirect_seen.resize(entries);
                table = d.addr;
                table_len = entries;
                in_indirect = true;
                idx = 0;
                count = 0;
                continue;
            }

            if !p.contains(d.addr, u64::from(d.len)) {
                return Err(QueueError::BufferOutOfRange {
                    addr: d.addr,
                    len: d.len,
                });
            }
            if !d.is_write_only() && chain.has_writable() {
                return Err(QueueError::ReadableAfterWritable);
            }
            total += u64::from(d.len);
            if total > u64::from(u32::MAX) {
                return Err(QueueError::ChainTooBig);
            }
            chain.push(Buffer {
                addr: d.addr,
                len: d.len,
                writable: d.is_write_only(),
            });
            if !d.has_next() {
                return Ok(());
            }
            idx = d.next;
        }
    }

    /// Returns chain `head` to the driver with `len` bytes written into its
    /// device-writable buffers, and publishes the new used index.
    pub fn add_used<P: Platform>(
        &mut self,
        p: &mut P,
        head: u16,
        len: u32,
    ) -> Result<(), QueueError> {
        if !self.ready {
            return Err(QueueError::NotReady);
        }
        if head >= self.size {
            return Err(QueueError::HeadOutOfRange(head));
        }
        let slot = self.next_used & (self.size - 1);
        let elem = UsedElem {
            id: u32::from(head),
            len,
        };
        p.write(self.used_ring + used_entry_offset(slot), &elem.to_bytes())?;
        // Saved before the driver can see it (see `protocol::virtio::saved`).
        if let Some(saved) = self.saved(p) {
            saved.returned(head, self.next_used);
        }
        self.next_used = self.next_used.wrapping_add(1);
        self.num_added = self.num_added.saturating_add(1);
        // The element must be visible before the index that publishes it.
        fence(Ordering::Release);
        p.write_u16(self.used_ring + RING_IDX_OFFSET, self.next_used)?;
        Ok(())
    }

    /// Used entries published since the last [`Queue::needs_notification`].
    pub fn unnotified(&self) -> u32 {
        self.num_added
    }

    /// Decides whether the entries published since the last call warrant
    /// an interrupt: with event indices, if the driver's `used_event` lies
    /// among them; otherwise unless the driver set `AVAIL_F_NO_INTERRUPT`.
    /// Resets the count either way.
    pub fn needs_notification<P: Platform>(&mut self, p: &P) -> Result<bool, QueueError> {
        let added = core::mem::take(&mut self.num_added);
        if added == 0 || !self.ready {
            return Ok(false);
        }
        // The used index must be visible before the driver's wishes are
        // read, or an interrupt the driver is about to ask for is lost.
        fence(Ordering::SeqCst);
        if self.event_idx {
            if added > u32::from(u16::MAX) {
                return Ok(true);
            }
            let used_event = p.read_u16(self.avail_ring + used_event_offset(self.size))?;
            let old = self.next_used.wrapping_sub(added as u16);
            Ok(layout::vring_need_event(used_event, self.next_used, old))
        } else {
            let flags = p.read_u16(self.avail_ring)?;
            Ok(flags & AVAIL_F_NO_INTERRUPT == 0)
        }
    }

    /// Asks the driver for no notifications: with event indices,
    /// `avail_event` goes just behind the next entry, where the driver's
    /// next index does not cross it (until the index wraps all the way
    /// round, one spurious notification later); without, the used ring's
    /// `NO_NOTIFY` flag.
    pub fn disable_notification<P: Platform>(&mut self, p: &mut P) -> Result<(), QueueError> {
        if self.event_idx {
            let at = self.used_ring + avail_event_offset(self.size);
            p.write_u16(at, self.next_avail.wrapping_sub(1))?;
        } else {
            p.write_u16(self.used_ring, USED_F_NO_NOTIFY)?;
        }
        Ok(())
    }

    /// Asks the driver to notify again about the next entry, then checks
    /// once more for entries published meanwhile (the final check). True
    /// if there is more work: the caller processes it instead of
    /// sleeping. In polled mode only the check is made: the device keeps
    /// watching, so the driver is not asked to notify.
    pub fn enable_notification<P: Platform>(&mut self, p: &mut P) -> Result<bool, QueueError> {
        if !self.ready {
            return Ok(false);
        }
        if self.polled {
            return self.has_available(p);
        }
        if self.event_idx {
            let at = self.used_ring + avail_event_offset(self.size);
            p.write_u16(at, self.next_avail)?;
        } else {
            p.write_u16(self.used_ring, 0)?;
        }
        self.has_available(p)
    }

    /// True if the driver made entries available that the device has not
    /// taken yet (one read of the available index).
    pub fn has_available<P: Platform>(&self, p: &P) -> Result<bool, QueueError> {
        if !self.ready {
            return Ok(false);
        }
        fence(Ordering::SeqCst);
        let avail_idx = p.read_u16(self.avail_ring + RING_IDX_OFFSET)?;
        Ok(avail_idx != self.next_avail)
    }

    /// True in polled mode.
    pub fn polled(&self) -> bool {
        self.polled
    }

    /// Enters or leaves polled mode. Only the mode changes here; the
    /// transport then asks the driver for no notifications
    /// ([`Queue::disable_notification`]; in polled mode `avail_event` is
    /// not moved again, so it stays behind) or for them again
    /// ([`Queue::enable_notification`], whose final check finds what
    /// arrived unannounced).
    pub fn set_polled(&mut self, polled: bool) {
        self.polled = polled;
    }
}
