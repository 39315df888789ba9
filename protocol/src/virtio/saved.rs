//! A device's state as it outlives the backend serving it: what a new
//! Domain-0 needs to take a running device over from one that crashed,
//! as Xen keeps backend state in xenstore.
//!
//! The page lives in Domain-0's reserved RAM, which the core owns: `hypd`
//! lends one zeroed page per device ([`crate::device::BackendEvent::state_page`])
//! and never reads it; the backend writes it as it goes and a later
//! backend of the same device reads it back. A zeroed page is a device
//! in its reset state, so a new device and a device taken over start the
//! same way.
//!
//! What is kept, per device: the transport's registers (status, the
//! negotiated features, the selectors, the interrupt status, the
//! configuration generation) and per queue its size, its areas, whether
//! it runs, the next available entry to take, the next used entry to
//! write and which chains (by head) were taken and not yet returned.
//!
//! Each change to a queue's indices goes through an *intent* written
//! first, so a backend stopped between any two stores leaves a page the
//! next one can finish ([`SavedQueue::recover`]):
//!
//! * taking chain `head` from available entry `at`: intent `TAKE(head,
//!   at)`, mark `head` taken, `next_avail = at + 1`, intent cleared. An
//!   unfinished take is undone (the chain is taken again from `at`).
//! * returning chain `head` in used entry `at` (the entry already
//!   written into the guest's ring): intent `USE(head, at)`, unmark
//!   `head`, `next_used = at + 1`, intent cleared, and only then the
//!   guest's used index. An unfinished use is finished (the guest's used
//!   index is set from `next_used` on recovery), so no chain is returned
//!   twice and none is lost.
//!
//! The chains still marked taken after recovery are done again. A guest
//! owns a chain's buffers until it is returned, so redoing a read, write,
//! flush or get-id gives the same result; see `docs/dom0-restart.md`.

use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};

/// Marks a page that holds a device's state (a zero page holds none).
pub const SAVED_MAGIC: u32 = 0x5344_5631; // "SDV1"

/// Queues a saved device may have.
pub const SAVED_QUEUES: usize = 4;

/// Largest queue size whose chains the page can track; a larger queue is
/// marked [`SavedQueue::LOST`] and its device cannot be taken over.
pub const SAVED_MAX_QUEUE: u16 = 1024;

const HEAD_WORDS: usize = SAVED_MAX_QUEUE as usize / 64;

/// What an intent word says is under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Nothing: the indices and marks agree.
    None,
    /// Chain `head` is being taken from available entry `at`.
    Take {
        /// The chain's head descriptor.
        head: u16,
        /// Its available-ring index.
        at: u16,
    },
    /// Chain `head` is being returned in used entry `at`.
    Use {
        /// The chain's head descriptor.
        head: u16,
        /// Its used-ring index.
        at: u16,
    },
}

const OP_TAKE: u64 = 1;
const OP_USE: u64 = 2;

impl Intent {
    fn pack(self) -> u64 {
        match self {
            Self::None => 0,
            Self::Take { head, at } => OP_TAKE | u64::from(head) << 16 | u64::from(at) << 32,
            Self::Use { head, at } => OP_USE | u64::from(head) << 16 | u64::from(at) << 32,
        }
    }

    fn unpack(word: u64) -> Self {
        let (head, at) = ((word >> 16) as u16, (word >> 32) as u16);
        match word & 0xFF {
            OP_TAKE => Self::Take { head, at },
            OP_USE => Self::Use { head, at },
            _ => Self::None,
        }
    }
}

/// One queue's saved state.
#[repr(C)]
#[derive(Debug, Default)]
pub struct SavedQueue {
    /// Descriptor table address.
    pub desc_table: AtomicU64,
    /// Available ring address.
    pub avail_ring: AtomicU64,
    /// Used ring address.
    pub used_ring: AtomicU64,
    /// The size the driver chose (low 16 bits) and the `READY` and
    /// `LOST` flags.
    pub config: AtomicU32,
    /// Next available entry the device takes.
    pub next_avail: AtomicU16,
    /// Next used entry the device writes.
    pub next_used: AtomicU16,
    /// The step under way ([`Intent`], packed).
    pub intent: AtomicU64,
    /// Heads of the chains taken and not returned, one bit each.
    pub taken: [AtomicU64; HEAD_WORDS],
}

/// What [`SavedQueue::recover`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The next available entry to take.
    pub next_avail: u16,
    /// The next used entry to write (and the used index to publish).
    pub next_used: u16,
}

impl SavedQueue {
    /// The queue runs (`QueueReady` is 1).
    pub const READY: u32 = 1 << 16;
    /// A chain could not be tracked (its head is beyond
    /// [`SAVED_MAX_QUEUE`]): the queue cannot be taken over.
    pub const LOST: u32 = 1 << 17;

    /// Records the queue's registers (size, areas, ready), keeping `LOST`.
    pub fn save_layout(&self, size: u16, ready: bool, desc: u64, avail: u64, used: u64) {
        self.desc_table.store(desc, Ordering::Relaxed);
        self.avail_ring.store(avail, Ordering::Relaxed);
        self.used_ring.store(used, Ordering::Relaxed);
        let lost = self.config.load(Ordering::Relaxed) & Self::LOST;
        let ready = if ready { Self::READY } else { 0 };
        self.config
            .store(u32::from(size) | ready | lost, Ordering::Release);
    }

    /// Forgets everything (a device reset).
    pub fn clear(&self) {
        self.save_layout(0, false, 0, 0, 0);
        self.config.store(0, Ordering::Relaxed);
        self.next_avail.store(0, Ordering::Relaxed);
        self.next_used.store(0, Ordering::Relaxed);
        self.intent.store(0, Ordering::Relaxed);
        for word in &self.taken {
            word.store(0, Ordering::Relaxed);
        }
    }

    fn mark(&self, head: u16, taken: bool) {
        let (word, bit) = (usize::from(head) / 64, 1u64 << (head % 64));
        if let Some(w) = self.taken.get(word) {
            if taken {
                w.fetch_or(bit, Ordering::SeqCst);
            } else {
                w.fetch_and(!bit, Ordering::SeqCst);
            }
        } else {
            self.config.fetch_or(Self::LOST, Ordering::SeqCst);
        }
    }

    fn intend(&self, intent: Intent) {
        self.intent.store(intent.pack(), Ordering::SeqCst);
    }

    /// Chain `head` was taken from available entry `at`.
    pub fn took(&self, head: u16, at: u16) {
        self.intend(Intent::Take { head, at });
        self.mark(head, true);
        self.next_avail.store(at.wrapping_add(1), Ordering::SeqCst);
        self.intend(Intent::None);
    }

    /// Chain `head` was written into used entry `at` and is about to be
    /// published: call before the guest's used index moves.
    pub fn returned(&self, head: u16, at: u16) {
        self.intend(Intent::Use { head, at });
        self.mark(head, false);
        self.next_used.store(at.wrapping_add(1), Ordering::SeqCst);
        self.intend(Intent::None);
    }

    /// Finishes or undoes the step a stopped backend left under way and
    /// returns the indices to resume from; the marks left are the chains
    /// to do again ([`SavedQueue::taken_heads`]).
    pub fn recover(&self) -> Recovered {
        match Intent::unpack(self.intent.load(Ordering::SeqCst)) {
            Intent::None => {}
            Intent::Take { head, at } => {
                self.mark(head, false);
                self.next_avail.store(at, Ordering::SeqCst);
            }
            Intent::Use { head, at } => {
                self.mark(head, false);
                self.next_used.store(at.wrapping_add(1), Ordering::SeqCst);
            }
        }
        self.intend(Intent::None);
        Recovered {
            next_avail: self.next_avail.load(Ordering::SeqCst),
            next_used: self.next_used.load(Ordering::SeqCst),
        }
    }

    /// The heads marked taken, below `size`, in increasing order.
    pub fn taken_heads(&self, size: u16) -> impl Iterator<Item = u16> + '_ {
        (0..size.min(SAVED_MAX_QUEUE)).filter(move |&head| {
            let word = self.taken[usize::from(head) / 64].load(Ordering::SeqCst);
            word & (1 << (head % 64)) != 0
        })
    }

    /// The size, `READY` and `LOST` as saved.
    pub fn layout(&self) -> (u16, bool, bool) {
        let config = self.config.load(Ordering::Acquire);
        (
            config as u16,
            config & Self::READY != 0,
            config & Self::LOST != 0,
        )
    }
}

/// A device's saved state: the page's layout.
#[repr(C)]
#[derive(Debug, Default)]
pub struct SavedDevice {
    /// [`SAVED_MAGIC`] once the backend saved anything; 0 on a fresh page.
    pub magic: AtomicU32,
    /// The device status register.
    pub status: AtomicU32,
    /// The features the driver accepted.
    pub driver_features: AtomicU64,
    /// `DeviceFeaturesSel`.
    pub device_features_sel: AtomicU32,
    /// `DriverFeaturesSel`.
    pub driver_features_sel: AtomicU32,
    /// `QueueSel`.
    pub queue_sel: AtomicU32,
    /// `InterruptStatus`.
    pub interrupt_status: AtomicU32,
    /// `ConfigGeneration`.
    pub config_generation: AtomicU32,
    /// Times a backend took the device over from an earlier one.
    pub takeovers: AtomicU32,
    /// The queues, by index.
    pub queues: [SavedQueue; SAVED_QUEUES],
}

const _: () = assert!(core::mem::size_of::<SavedDevice>() <= crate::memory::PAGE_SIZE as usize);

impl SavedDevice {
    /// True if a backend saved state here.
    pub fn holds_state(&self) -> bool {
        self.magic.load(Ordering::Acquire) == SAVED_MAGIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn heads(q: &SavedQueue) -> Vec<u16> {
        q.taken_heads(256).collect()
    }

    #[test]
    fn an_unfinished_take_is_undone_and_an_unfinished_use_finished() {
        let q = SavedQueue::default();
        q.took(3, 0);
        q.took(5, 1);
        // Stopped inside a take of head 7 from entry 2: marked, index not
        // yet moved.
        q.intend(Intent::Take { head: 7, at: 2 });
        q.mark(7, true);
        let r = q.recover();
        assert_eq!(r.next_avail, 2, "entry 2 is taken again");
        assert_eq!(heads(&q), [3, 5]);

        // Stopped inside the return of head 5 in used entry 0, after the
        // mark went and before next_used moved.
        q.intend(Intent::Use { head: 5, at: 0 });
        q.mark(5, false);
        let r = q.recover();
        assert_eq!(r.next_used, 1, "the used entry is published");
        assert_eq!(heads(&q), [3]);
        assert_eq!(q.recover(), r, "recovery is idempotent");
    }

    #[test]
    fn a_head_beyond_what_the_page_tracks_marks_the_queue_lost() {
        let q = SavedQueue::default();
        q.save_layout(2048, true, 0x1000, 0x2000, 0x3000);
        q.took(SAVED_MAX_QUEUE + 1, 0);
        assert_eq!(q.layout(), (2048, true, true));
        q.save_layout(2048, true, 0x1000, 0x2000, 0x3000);
        assert!(q.layout().2, "LOST survives a layout update");
        q.clear();
        assert_eq!(q.layout(), (0, false, false), "a reset clears it");
    }
}
