//! The driver side of a split virtqueue.
//!
//! The three areas live in one page-aligned heap allocation, each area on
//! its own page(s): the descriptor table, the available ring (driver
//! writes) and the used ring (device writes), so the two sides do not
//! share cache lines beyond what the protocol needs.
//!
//! Free descriptors are kept on a list whose links live in a private array
//! (never read back from the table the device sees), so many chains can
//! be in flight at once, up to the queue size. Adding a chain writes its
//! descriptors and its available-ring entry; [`VirtQueue::kick`] publishes
//! every chain added since the last kick with one index store and rings
//! the doorbell only if the device asked for it:
//!
//! * Release fence, then the available index (the device reads entries
//!   only after it has seen the index);
//! * SeqCst fence, then `avail_event` (with `VIRTIO_F_EVENT_IDX`): the
//!   device writes `avail_event` before its final look at the index, so
//!   one of the two sides always sees the other's write;
//! * the doorbell is a 4-byte write of the queue index to `QueueNotify`.
//!
//! Completions are harvested with an Acquire load of the used index. The
//! driver asks for an interrupt only when it is about to sleep
//! ([`VirtQueue::arm`] writes `used_event` = the next used entry it
//! expects); otherwise `used_event` lags behind and the device stays quiet.
//!
//! Everything the device wrote (used index, used elements) is checked
//! before it is believed: an index that runs ahead by more than the
//! queue size or an element naming a chain that is not in flight is a
//! [`QueueError`], and the queue is not used again until it is reset.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{fence, AtomicU16, Ordering};

use protocol::memory::PAGE_SIZE;
use protocol::virtio::queue::{
    avail_entry_offset, avail_event_offset, avail_ring_size, desc_table_size, used_entry_offset,
    used_event_offset, used_ring_size, vring_need_event, Descriptor, UsedElem,
    AVAIL_F_NO_INTERRUPT, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, DESC_SIZE, RING_IDX_OFFSET,
    USED_F_NO_NOTIFY,
};

use super::mmio::QueueAddrs;
use crate::dma::{DmaBuf, OutOfMemory};
use crate::trace;
use protocol::trace::Step;

/// One buffer of a chain: address, length and the `DESC_F_WRITE` /
/// `DESC_F_INDIRECT` flags (`DESC_F_NEXT` is the queue's business).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seg {
    /// Guest-physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// `DESC_F_WRITE` and/or `DESC_F_INDIRECT`.
    pub flags: u16,
}

impl Seg {
    /// A buffer the device reads.
    pub const fn read(addr: u64, len: u32) -> Self {
        Self {
            addr,
            len,
            flags: 0,
        }
    }

    /// A buffer the device writes.
    pub const fn write(addr: u64, len: u32) -> Self {
        Self {
            addr,
            len,
            flags: DESC_F_WRITE,
        }
    }

    /// An indirect table of `count` descriptors at `addr`.
    pub const fn indirect(addr: u64, count: u16) -> Self {
        Self {
            addr,
            len: count as u32 * DESC_SIZE as u32,
            flags: DESC_F_INDIRECT,
        }
    }
}

/// Writes `segs` as a chain into an indirect table at `table` (entry `i`
/// links to `i + 1`).
///
/// # Safety
/// `table` must be valid for writes of `segs.len()` descriptors, 16-byte
/// aligned, and not in use by the device.
pub unsafe fn write_indirect(table: *mut Descriptor, segs: &[Seg]) {
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let d = Descriptor {
            addr: seg.addr,
            len: seg.len,
            flags: (seg.flags & DESC_F_WRITE) | if last { 0 } else { DESC_F_NEXT },
            next: if last { 0 } else { i as u16 + 1 },
        };
        // SAFETY: in bounds per the contract; x86_64 is little-endian like
        // the wire format, and `Descriptor` is `repr(C)` with its layout.
        unsafe { table.add(i).write_volatile(d) };
    }
}

/// The device broke the used-ring protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// No room for the chain: too few free descriptors.
    Full,
    /// The used index ran ahead of what was in flight.
    UsedIdxJump {
        /// The last used index the driver harvested.
        last: u16,
        /// The used index the device published.
        published: u16,
    },
    /// A used element names a descriptor that heads no chain in flight.
    BadUsedId(u32),
}

/// One split virtqueue, driver side.
pub struct VirtQueue {
    index: u16,
    size: u16,
    ring: DmaBuf,
    avail_off: usize,
    used_off: usize,
    notify_addr: u64,
    event_idx: bool,
    /// Private free-list and chain links.
    next: Vec<u16>,
    /// Descriptors in the chain headed by each index (0: not a head in
    /// flight).
    chain_len: Vec<u16>,
    free_head: u16,
    num_free: u16,
    in_flight: u16,
    /// Available index of the next chain added.
    avail_shadow: u16,
    /// Available index at the last kick.
    kicked: u16,
    /// Next used index to harvest.
    last_used: u16,
    notifies: u64,
}

fn page_round(n: u64) -> usize {
    n.next_multiple_of(PAGE_SIZE) as usize
}

impl VirtQueue {
    /// Allocates queue `index` of `size` entries (a valid split-queue size)
    /// whose doorbell is the `QueueNotify` register at `notify_addr`.
    pub fn new(index: u16, size: u16, notify_addr: u64) -> Result<Self, OutOfMemory> {
        let avail_off = page_round(desc_table_size(size));
        let used_off = avail_off + page_round(avail_ring_size(size));
        let total = used_off + page_round(used_ring_size(size));
        let mut q = Self {
            index,
            size,
            ring: DmaBuf::new(total)?,
            avail_off,
            used_off,
            notify_addr,
            event_idx: false,
            next: vec![0; usize::from(size)],
            chain_len: vec![0; usize::from(size)],
            free_head: 0,
            num_free: 0,
            in_flight: 0,
            avail_shadow: 0,
            kicked: 0,
            last_used: 0,
            notifies: 0,
        };
        q.reset(false);
        Ok(q)
    }

    /// Back to the state of a new queue, ready to be programmed again
    /// after a device reset: rings zeroed, every descriptor free.
    pub fn reset(&mut self, event_idx: bool) {
        self.ring.zero();
        self.event_idx = event_idx;
        for i in 0..self.size {
            self.next[usize::from(i)] = i.wrapping_add(1);
            self.chain_len[usize::from(i)] = 0;
        }
        self.free_head = 0;
        self.num_free = self.size;
        self.in_flight = 0;
        self.avail_shadow = 0;
        self.kicked = 0;
        self.last_used = 0;
        self.disarm();
        if event_idx {
            // No interrupt until `arm` asks for one.
            self.used_event()
                .store(self.last_used.wrapping_sub(1), Ordering::Relaxed);
        }
    }

    /// Number of entries.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Where the rings are, for the queue registers.
    pub fn addrs(&self) -> QueueAddrs {
        QueueAddrs {
            desc: self.ring.addr(0),
            avail: self.ring.addr(self.avail_off),
            used: self.ring.addr(self.used_off),
        }
    }

    /// Free descriptors.
    pub fn num_free(&self) -> u16 {
        self.num_free
    }

    /// Chains added and not yet returned by the device.
    pub fn in_flight(&self) -> u16 {
        self.in_flight
    }

    /// Doorbell writes made since the queue was created.
    pub fn notifies(&self) -> u64 {
        self.notifies
    }

    /// The available-ring index the next chain added takes: a request's
    /// id in trace records ([`protocol::trace`]).
    pub fn next_avail(&self) -> u16 {
        self.avail_shadow
    }

    /// The device's window page, as trace records name the device.
    pub fn trace_device(&self) -> u32 {
        (self.notify_addr >> 12) as u32
    }

    fn u16_at(&self, offset: usize) -> &AtomicU16 {
        // SAFETY: every offset passed is an even offset of a ring field
        // inside `self.ring`, which lives as long as `self`; the device
        // accesses these fields with 16-bit loads and stores too.
        unsafe { AtomicU16::from_ptr(self.ring.ptr(offset).cast()) }
    }

    fn avail_flags(&self) -> &AtomicU16 {
        self.u16_at(self.avail_off)
    }

    fn avail_idx(&self) -> &AtomicU16 {
        self.u16_at(self.avail_off + RING_IDX_OFFSET as usize)
    }

    fn used_event(&self) -> &AtomicU16 {
        self.u16_at(self.avail_off + used_event_offset(self.size) as usize)
    }

    fn used_flags(&self) -> &AtomicU16 {
        self.u16_at(self.used_off)
    }

    fn used_idx(&self) -> &AtomicU16 {
        self.u16_at(self.used_off + RING_IDX_OFFSET as usize)
    }

    fn avail_event(&self) -> &AtomicU16 {
        self.u16_at(self.used_off + avail_event_offset(self.size) as usize)
    }

    fn write_desc(&mut self, idx: u16, d: Descriptor) {
        let at = self
            .ring
            .ptr(usize::from(idx) * DESC_SIZE as usize)
            .cast::<Descriptor>();
        // SAFETY: `idx < size`, so the descriptor lies in the table, which
        // is 16-byte aligned; x86_64 is little-endian like the wire format.
        unsafe { at.write_volatile(d) };
    }

    fn push_avail(&mut self, head: u16) {
        let slot = self.avail_shadow & (self.size - 1);
        let at = self.avail_off + avail_entry_offset(slot) as usize;
        self.u16_at(at).store(head, Ordering::Relaxed);
        self.avail_shadow = self.avail_shadow.wrapping_add(1);
    }

    /// Adds a chain of `segs` (not yet visible to the device: see
    /// [`VirtQueue::kick`]) and returns its head descriptor.
    pub fn add(&mut self, segs: &[Seg]) -> Result<u16, QueueError> {
        let n = segs.len();
        if n == 0 || n > usize::from(self.num_free) {
            return Err(QueueError::Full);
        }
        let head = self.free_head;
        let mut idx = head;
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == n;
            let next = self.next[usize::from(idx)];
            self.write_desc(
                idx,
                Descriptor {
                    addr: seg.addr,
                    len: seg.len,
                    flags: seg.flags | if last { 0 } else { DESC_F_NEXT },
                    next: if last { 0 } else { next },
                },
            );
            if !last {
                idx = next;
            }
        }
        self.free_head = self.next[usize::from(idx)];
        self.num_free -= n as u16;
        self.chain_len[usize::from(head)] = n as u16;
        self.in_flight += 1;
        self.push_avail(head);
        Ok(head)
    }

    /// Publishes every chain added since the last kick and notifies the
    /// device if it asked for it. Returns true if the doorbell was rung.
    pub fn kick(&mut self) -> bool {
        let new = self.avail_shadow;
        let old = self.kicked;
        if new == old {
            return false;
        }
        self.kicked = new;
        let device = self.trace_device();
        let last = u32::from(new.wrapping_sub(1));
        let count = u32::from(new.wrapping_sub(old));
        // Stamped before the store that shows the requests to the device.
        trace::emit(Step::Published, last, [device, count]);
        fence(Ordering::Release);
        self.avail_idx().store(new, Ordering::Release);
        fence(Ordering::SeqCst);
        let needed = if self.event_idx {
            vring_need_event(self.avail_event().load(Ordering::Relaxed), new, old)
        } else {
            self.used_flags().load(Ordering::Relaxed) & USED_F_NO_NOTIFY == 0
        };
        if needed {
            self.notify();
        }
        trace::emit(Step::Kicked, last, [device, u32::from(needed)]);
        needed
    }

    /// Rings the doorbell unconditionally.
    pub fn notify(&mut self) {
        self.notifies += 1;
        // SAFETY: `notify_addr` is the QueueNotify register of this
        // queue's device; KVM completes the store through an ioeventfd.
        unsafe { (self.notify_addr as *mut u32).write_volatile(u32::from(self.index)) };
    }

    /// True if the device has returned chains not yet harvested.
    pub fn has_used(&self) -> bool {
        self.used_idx().load(Ordering::Acquire) != self.last_used
    }

    /// Takes the next chain the device returned, freeing its descriptors.
    pub fn pop_used(&mut self) -> Result<Option<UsedElem>, QueueError> {
        let published = self.used_idx().load(Ordering::Acquire);
        if published == self.last_used {
            return Ok(None);
        }
        if published.wrapping_sub(self.last_used) > self.in_flight {
            return Err(QueueError::UsedIdxJump {
                last: self.last_used,
                published,
            });
        }
        let slot = self.last_used & (self.size - 1);
        let at = self.used_off + used_entry_offset(slot) as usize;
        // SAFETY: the element lies in the used ring (slot < size), 4-byte
        // aligned; the Acquire load above ordered it after the index.
        let elem = unsafe { self.ring.ptr(at).cast::<UsedElem>().read_volatile() };
        let head = match u16::try_from(elem.id) {
            Ok(head) if head < self.size && self.chain_len[usize::from(head)] != 0 => head,
            _ => return Err(QueueError::BadUsedId(elem.id)),
        };
        self.free_chain(head);
        self.last_used = self.last_used.wrapping_add(1);
        Ok(Some(elem))
    }

    fn free_chain(&mut self, head: u16) {
        let n = core::mem::take(&mut self.chain_len[usize::from(head)]);
        let mut last = head;
        for _ in 1..n {
            last = self.next[usize::from(last)];
        }
        self.next[usize::from(last)] = self.free_head;
        self.free_head = head;
        self.num_free += n;
        self.in_flight -= 1;
    }

    /// Asks for an interrupt when the next chain is used. Returns true if
    /// chains are already waiting (then do not sleep: the interrupt may
    /// have been decided before the request was seen).
    pub fn arm(&mut self) -> bool {
        if self.event_idx {
            self.used_event().store(self.last_used, Ordering::Relaxed);
        } else {
            self.avail_flags().store(0, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
        self.has_used()
    }

    /// Asks for no interrupts (a no-op with event indices: `used_event`
    /// falls behind as soon as the armed entry is harvested).
    pub fn disarm(&mut self) {
        if !self.event_idx {
            self.avail_flags()
                .store(AVAIL_F_NO_INTERRUPT, Ordering::Relaxed);
        }
    }

    /// Raw access for a driver that breaks the rules on purpose (the
    /// hostile workload): the queue's bookkeeping is not updated, so reset
    /// the device and the queue afterwards.
    pub fn raw(&mut self) -> RawQueue<'_> {
        RawQueue { q: self }
    }
}

/// Unchecked access to a queue's rings (see [`VirtQueue::raw`]).
pub struct RawQueue<'a> {
    q: &'a mut VirtQueue,
}

impl RawQueue<'_> {
    /// Writes descriptor `idx` (taken modulo the queue size) as given.
    pub fn desc(&mut self, idx: u16, d: Descriptor) {
        let idx = idx & (self.q.size - 1);
        self.q.write_desc(idx, d);
    }

    /// Puts `head` (any value) in the next available-ring slot.
    pub fn push(&mut self, head: u16) {
        self.q.push_avail(head);
    }

    /// The available index the next [`RawQueue::publish`] would write.
    pub fn avail_shadow(&self) -> u16 {
        self.q.avail_shadow
    }

    /// Stores `idx` (any value) as the available index.
    pub fn publish(&mut self, idx: u16) {
        fence(Ordering::Release);
        self.q.avail_idx().store(idx, Ordering::Release);
        fence(Ordering::SeqCst);
    }

    /// Asks for an interrupt at the next used entry.
    pub fn arm(&mut self) {
        self.q.arm();
    }

    /// Rings the doorbell.
    pub fn notify(&mut self) {
        self.q.notify();
    }

    /// The device's used index.
    pub fn used_idx(&self) -> u16 {
        self.q.used_idx().load(Ordering::Acquire)
    }

    /// The used element in slot `slot` (modulo the size).
    pub fn used_elem(&self, slot: u16) -> UsedElem {
        let slot = slot & (self.q.size - 1);
        let at = self.q.used_off + used_entry_offset(slot) as usize;
        // SAFETY: inside the used ring, 4-byte aligned.
        unsafe { self.q.ring.ptr(at).cast::<UsedElem>().read_volatile() }
    }
}
