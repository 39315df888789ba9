//! Dom0's reserved RAM: the pages at the top of Dom0's memory that the
//! core owns, and what the core keeps there: the backend ring, the page
//! directories of the foreign windows, ioreq pages and hardware-queue rings.

use crate::memory::GuestRam;
use protocol::device::{
    BackendEvent, BackendRing, BACKEND_RING_ENTRIES, FOREIGN_BASE, FOREIGN_STRIDE,
    MAX_FOREIGN_WINDOWS,
};
use protocol::memory::{PAGE_SIZE, PDPT_ADDR};
use std::mem::{offset_of, size_of};
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::EventFd;

/// RAM at the top of Dom0 the core keeps for itself.
pub const RESERVED_BYTES: u64 = 4 << 20;
/// Largest guest RAM a foreign window (one page directory, one hardware
/// queue buffer) covers.
pub const MAX_WINDOW_BYTES: u64 = 1 << 30;
/// How long the core waits for Dom0 to make room in a full backend ring.
const RING_WAIT: Duration = Duration::from_secs(2);

/// The core's side of Dom0: reserved pages, windows, the backend ring.
pub struct Dom0Host {
    /// First reserved byte.
    pub reserved_start: u64,
    /// Free reserved pages (Dom0-physical addresses).
    free_pages: Vec<u64>,
    /// Which foreign-window slots are in use.
    windows: [bool; MAX_FOREIGN_WINDOWS],
    /// The core's copy of the ring's producer index.
    producer: u32,
    /// Raises the backend vector in Dom0.
    pub backend_irq: EventFd,
    /// Next device id.
    next_device: u32,
    /// Pages of closed hardware queues, with when they were freed.
    quarantined: Vec<(Instant, u64, usize)>,
}

/// How long pages of a closed hardware queue stay out of the pool.
const QUARANTINE: Duration = Duration::from_secs(1);

impl Dom0Host {
    /// Lays out Dom0's reserved region: the backend ring first, then one
    /// page directory per foreign-window slot (whose page-table entries are
    /// written now, once, and never removed), then the page pool.
    pub fn new(ram: &GuestRam, backend_irq: EventFd) -> Option<Self> {
        let reserved_start = ram.size().checked_sub(RESERVED_BYTES)?;
        ram.zero(reserved_start, RESERVED_BYTES);
        let mut page = reserved_start + PAGE_SIZE;
        for slot in 0..MAX_FOREIGN_WINDOWS as u64 {
            let base = FOREIGN_BASE + slot * FOREIGN_STRIDE;
            let entries: Vec<u8> = (0..512u64)
                .flat_map(|i| ((base + (i << 21)) | 0x87).to_le_bytes())
                .collect();
            ram.write(page, &entries);
            ram.write(PDPT_ADDR + (base >> 30) * 8, &(page | 0x7).to_le_bytes());
            page += PAGE_SIZE;
        }
        let free_pages = (page..ram.size()).step_by(PAGE_SIZE as usize).collect();
        Some(Self {
            reserved_start,
            free_pages,
            windows: [false; MAX_FOREIGN_WINDOWS],
            producer: 0,
            backend_irq,
            next_device: 1,
            quarantined: Vec::new(),
        })
    }

    /// Dom0-physical address of the backend ring.
    pub fn ring_address(&self) -> u64 {
        self.reserved_start
    }

    /// Gives pages back to the pool only after [`QUARANTINE`]: the kernel
    /// may still be tearing down the io_uring that used them.
    pub fn quarantine(&mut self, first: u64, count: usize) {
        self.quarantined.push((Instant::now(), first, count));
    }

    /// `count` contiguous zeroed pages, or `None` when the pool is spent.
    pub fn alloc_pages(&mut self, ram: &GuestRam, count: usize) -> Option<u64> {
        if count == 0 {
            return None;
        }
        let now = Instant::now();
        let (expired, kept): (Vec<_>, Vec<_>) = self
            .quarantined
            .drain(..)
            .partition(|(at, _, _)| now.duration_since(*at) >= QUARANTINE);
        self.quarantined = kept;
        for (_, first, pages) in expired {
            self.free(first, pages);
        }
        self.free_pages.sort_unstable();
        let run = (count as u64 - 1) * PAGE_SIZE;
        let at = self
            .free_pages
            .windows(count)
            .position(|w| w[count - 1] - w[0] == run)?;
        let first = self.free_pages[at];
        self.free_pages.drain(at..at + count);
        ram.zero(first, count as u64 * PAGE_SIZE);
        Some(first)
    }

    /// Gives pages back to the pool.
    pub fn free(&mut self, first: u64, count: usize) {
        self.free_pages
            .extend((0..count as u64).map(|k| first + k * PAGE_SIZE));
    }

    /// A free foreign-window slot.
    pub fn alloc_window(&mut self) -> Option<usize> {
        let slot = self.windows.iter().position(|used| !used)?;
        self.windows[slot] = true;
        Some(slot)
    }

    /// Frees a window slot.
    pub fn free_window(&mut self, slot: usize) {
        self.windows[slot] = false;
    }

    /// A new device id.
    pub fn device_id(&mut self) -> u32 {
        self.next_device += 1;
        self.next_device - 1
    }

    /// Appends an event to the backend ring and raises the backend vector,
    /// waiting (bounded) for Dom0 to make room.
    pub fn post(&mut self, ram: &GuestRam, event: &BackendEvent) -> bool {
        let ring = self.ring_address();
        let consumer_at = ring + offset_of!(BackendRing, consumer) as u64;
        let deadline = Instant::now() + RING_WAIT;
        loop {
            let consumer = ram.read_u32(consumer_at).unwrap_or(0);
            if self.producer.wrapping_sub(consumer) < BACKEND_RING_ENTRIES as u32 {
                break;
            }
            if Instant::now() > deadline {
                tracing::error!("Domain-0 does not consume its backend ring; event dropped");
                return false;
            }
            let _ = self.backend_irq.write(1);
            std::thread::sleep(Duration::from_millis(1));
        }
        let index = self.producer as usize % BACKEND_RING_ENTRIES;
        let entry =
            ring + (offset_of!(BackendRing, entries) + index * size_of::<BackendEvent>()) as u64;
        let written = ram.write_struct(entry, event);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.producer = self.producer.wrapping_add(1);
        ram.write_u32(
            ring + offset_of!(BackendRing, producer) as u64,
            self.producer,
        );
        let _ = self.backend_irq.write(1);
        written
    }
}
