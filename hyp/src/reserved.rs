//! Domain-0's reserved RAM: the pages at the top of Dom0's memory that the
//! core owns and lends out.
//!
//! ```text
//! reserved_start           the backend ring page (BootInfo::backend_ring)
//! + 1 page                 one page directory per foreign-window slot,
//!                          written once when Dom0 is made, never removed
//! + 1 + MAX_FOREIGN_WINDOWS pages
//!                          the pool: pages lent as [`ReservedPages`]
//!                          (the core's ioreq pages, and pages device
//!                          setup asks for)
//! top - DOM0_RING_BYTES    Dom0's trace ring (BootInfo::trace_ring), to
//!                          the end of its RAM
//! ```
//!
//! Dom0's kernel never allocates from this region; it only uses what it
//! is pointed at, and checks each pointer against the region.

use crate::memory::GuestRam;
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use protocol::device::{FOREIGN_BASE, FOREIGN_STRIDE, MAX_FOREIGN_WINDOWS};
use protocol::memory::{PAGE_SIZE, PDPT_ADDR};
use protocol::plain::Plain;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::EventFd;

/// RAM at the top of Dom0 the core keeps for itself.
pub const RESERVED_BYTES: u64 = 4 << 20;

/// How long pages dropped after [`ReservedPages::quarantine_when_dropped`]
/// stay out of the pool.
const QUARANTINE: Duration = Duration::from_secs(1);

/// Page-directory entry bits of a foreign window: present, writable,
/// user, 2 MiB page.
const WINDOW_PDE: u64 = 0x87;
/// Page-directory-pointer entry bits: present, writable, user.
const WINDOW_PDPTE: u64 = 0x7;

/// What the pool has out and in.
struct Pool {
    /// Free pages (Dom0-physical addresses).
    free: Vec<u64>,
    /// The foreign-window slots in use, each with its memory slot as it
    /// must be in Dom0's VM (of size 0 while it maps nothing).
    windows: [Option<kvm_userspace_memory_region>; MAX_FOREIGN_WINDOWS],
    /// Pages given back for later, with when.
    quarantined: Vec<(Instant, u64, usize)>,
}

/// The core's side of Dom0's reserved region.
pub(crate) struct ReservedRam {
    /// Dom0's VM, where foreign windows become memory slots (declared
    /// before `ram`, so the VM goes before the memory it maps); a new one
    /// when Domain-0 restarts ([`ReservedRam::move_to`]).
    vm: Mutex<Arc<VmFd>>,
    /// Dom0's RAM.
    pub ram: GuestRam,
    /// First reserved byte.
    pub start: u64,
    /// Raises the backend vector in Dom0.
    backend_irq: EventFd,
    /// The backend ring page has been handed out (it has one producer).
    ring_taken: AtomicBool,
    pool: Mutex<Pool>,
}

impl ReservedRam {
    /// Lays out Dom0's reserved region (see the module documentation) below
    /// `top` (where Dom0's trace ring starts), or `None` if Dom0's RAM is
    /// too small for it.
    pub fn new(ram: &GuestRam, top: u64, vm: Arc<VmFd>, backend_irq: EventFd) -> Option<Self> {
        let start = top.checked_sub(RESERVED_BYTES)?;
        ram.zero(start, RESERVED_BYTES);
        let page = write_window_tables(ram, start);
        let free = (page..top).step_by(PAGE_SIZE as usize).collect();
        Some(Self {
            vm: Mutex::new(vm),
            ram: ram.clone(),
            start,
            backend_irq,
            ring_taken: AtomicBool::new(false),
            pool: Mutex::new(Pool {
                free,
                windows: [None; MAX_FOREIGN_WINDOWS],
                quarantined: Vec::new(),
            }),
        })
    }

    /// Dom0's VM now.
    pub fn vm(&self) -> Arc<VmFd> {
        Arc::clone(&self.vm.lock().expect("reserved vm lock"))
    }

    /// Hands the region to a new Domain-0's VM (its RAM is this RAM,
    /// already mapped there as slot 0): the foreign windows' page tables
    /// are written again (the new kernel's tables replaced the old), each
    /// window's memory slot is made again in `vm`, the backend vector's
    /// irqfd is wired into it, and the backend ring page is zeroed for its
    /// new consumer.
    pub fn move_to(&self, vm: Arc<VmFd>) -> crate::error::Result<()> {
        write_window_tables(&self.ram, self.start);
        self.ram.zero(self.backend_ring(), PAGE_SIZE);
        // An eventfd drives one irqfd at a time: out of the old VM first.
        let _ = self
            .vm()
            .unregister_irqfd(&self.backend_irq, crate::evtchn::BACKEND_GSI);
        vm.register_irqfd(&self.backend_irq, crate::evtchn::BACKEND_GSI)
            .map_err(crate::error::kvm("KVM_IRQFD (backend)"))?;
        let pool = self.pool();
        let mapped = pool.windows.iter().flatten().filter(|r| r.memory_size != 0);
        for region in mapped {
            // SAFETY: the region maps guest RAM its `ForeignWindow` keeps
            // mapped until it has deleted the slot again (through this
            // region's VM, which from now on is `vm`).
            unsafe { vm.set_user_memory_region(*region) }
                .map_err(crate::error::kvm("KVM_SET_USER_MEMORY_REGION (window)"))?;
        }
        *self.vm.lock().expect("reserved vm lock") = vm;
        Ok(())
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().expect("reserved pool lock")
    }

    /// Dom0-physical address of the backend ring page.
    pub fn backend_ring(&self) -> u64 {
        self.start
    }

    /// `count` contiguous zeroed pages, or `None` when the pool has no
    /// such run.
    pub fn alloc(self: &Arc<Self>, count: usize) -> Option<ReservedPages> {
        if count == 0 {
            return None;
        }
        let mut pool = self.pool();
        let now = Instant::now();
        let (expired, kept): (Vec<_>, Vec<_>) = pool
            .quarantined
            .drain(..)
            .partition(|(at, _, _)| now.duration_since(*at) >= QUARANTINE);
        pool.quarantined = kept;
        for (_, first, pages) in expired {
            pool.free
                .extend((0..pages as u64).map(|k| first + k * PAGE_SIZE));
        }
        pool.free.sort_unstable();
        let run = (count as u64 - 1) * PAGE_SIZE;
        let at = pool
            .free
            .windows(count)
            .position(|w| w[count - 1] - w[0] == run)?;
        let gpa = pool.free[at];
        pool.free.drain(at..at + count);
        drop(pool);
        self.ram.zero(gpa, count as u64 * PAGE_SIZE);
        Some(ReservedPages {
            reserved: Arc::clone(self),
            gpa,
            count,
            quarantine: false,
        })
    }

    /// A free foreign-window slot.
    pub fn alloc_window(&self) -> Option<usize> {
        let mut pool = self.pool();
        let slot = pool.windows.iter().position(Option::is_none)?;
        pool.windows[slot] = Some(kvm_userspace_memory_region::default());
        Some(slot)
    }

    /// Sets window `slot`'s memory slot to `region` in Dom0's VM (a zero
    /// size deletes it), and keeps the region to set it again in a
    /// restarted Domain-0.
    ///
    /// # Safety
    ///
    /// A region that maps memory must keep it mapped until the slot is
    /// set again with a zero size.
    pub unsafe fn set_window(
        &self,
        slot: usize,
        region: kvm_userspace_memory_region,
    ) -> Result<(), kvm_ioctls::Error> {
        let mut pool = self.pool();
        // SAFETY: per this function's contract.
        unsafe { self.vm().set_user_memory_region(region) }?;
        pool.windows[slot] = Some(region);
        Ok(())
    }

    /// Frees a foreign-window slot.
    pub fn free_window(&self, slot: usize) {
        self.pool().windows[slot] = None;
    }

    /// Hands the backend ring page out, the first time only.
    pub fn take_backend_ring(self: &Arc<Self>) -> Option<BackendRingPage> {
        let taken = self.ring_taken.swap(true, Ordering::AcqRel);
        (!taken).then(|| BackendRingPage {
            reserved: Arc::clone(self),
        })
    }

    /// Raises the backend vector in Dom0.
    pub fn raise_backend(&self) {
        let _ = self.backend_irq.write(1);
    }
}

/// Writes the foreign windows' page directories (from the page after the
/// backend ring at `start`) and their entries in Dom0's page-directory
/// pointer table; returns the first page after them (the pool's).
fn write_window_tables(ram: &GuestRam, start: u64) -> u64 {
    let mut page = start + PAGE_SIZE;
    for slot in 0..MAX_FOREIGN_WINDOWS as u64 {
        let base = FOREIGN_BASE + slot * FOREIGN_STRIDE;
        let entries: Vec<u8> = (0..512u64)
            .flat_map(|i| ((base + (i << 21)) | WINDOW_PDE).to_le_bytes())
            .collect();
        ram.write(page, &entries);
        ram.write(
            PDPT_ADDR + (base >> 30) * 8,
            &(page | WINDOW_PDPTE).to_le_bytes(),
        );
        page += PAGE_SIZE;
    }
    page
}

/// Contiguous pages of Domain-0's reserved RAM, lent by the core until
/// dropped (and then given back at once, or after a
/// [quarantine](ReservedPages::quarantine_when_dropped)).
pub struct ReservedPages {
    reserved: Arc<ReservedRam>,
    gpa: u64,
    count: usize,
    /// Given back through the quarantine when dropped.
    quarantine: bool,
}

impl std::fmt::Debug for ReservedPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReservedPages({:#x}, {} pages)", self.gpa, self.count)
    }
}

impl ReservedPages {
    /// Dom0-physical address of the first page.
    pub fn gpa(&self) -> u64 {
        self.gpa
    }

    /// Bytes lent.
    pub fn bytes(&self) -> u64 {
        self.count as u64 * PAGE_SIZE
    }

    /// Address of the first page in this process (Dom0's RAM mapping).
    pub fn host_addr(&self) -> u64 {
        self.reserved.ram.host_address() + self.gpa
    }

    /// Writes a protocol struct `offset` bytes into the pages; false if it
    /// does not fit.
    pub fn write_struct<T: Plain>(&self, offset: u64, value: &T) -> bool {
        let fits = offset
            .checked_add(std::mem::size_of::<T>() as u64)
            .is_some_and(|end| end <= self.bytes());
        fits && self.reserved.ram.write_struct(self.gpa + offset, value)
    }

    /// Makes dropping these pages give them back only after a while: the
    /// host kernel may still write into pages it was given for a while
    /// after their user let go of them, so the next user must not get them
    /// at once.
    pub fn quarantine_when_dropped(&mut self) {
        self.quarantine = true;
    }
}

impl Drop for ReservedPages {
    fn drop(&mut self) {
        let (gpa, count) = (self.gpa, self.count);
        let mut pool = self.reserved.pool();
        if self.quarantine {
            pool.quarantined.push((Instant::now(), gpa, count));
        } else {
            pool.free
                .extend((0..count as u64).map(|k| gpa + k * PAGE_SIZE));
        }
    }
}

/// The backend ring's page in Domain-0 (see [`protocol::backend_ring`]):
/// the core reserves it and names it in Dom0's boot info; whoever tells
/// Dom0 about devices produces into it. The core hands it out once, so it
/// has one producer.
pub struct BackendRingPage {
    reserved: Arc<ReservedRam>,
}

impl BackendRingPage {
    /// Address of the page in this process (Dom0's RAM mapping). It stays
    /// mapped while this value lives.
    pub fn host_addr(&self) -> u64 {
        self.reserved.ram.host_address() + self.reserved.backend_ring()
    }

    /// Raises [`protocol::evtchn::BACKEND_VECTOR`] in Dom0.
    pub fn raise(&self) {
        self.reserved.raise_backend();
    }
}
