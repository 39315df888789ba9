//! Waiting for a device to return chains: a short adaptive spin in ring 3,
//! then sleep until the device's interrupt.
//!
//! A sleep costs two interrupt deliveries' worth of emulated ring 0 and a
//! halt and wake-up across host CPUs (tens of microseconds here), so when
//! completions come quickly it is cheaper to watch the used index for a
//! while. How long is adapted as in Linux's `haltpoll` governor: a wait
//! that had to sleep but ended within the longest allowed spin grows the
//! spin (spinning longer would have caught it); a sleep longer than that
//! shrinks it (the spin was wasted). With `VIRTIO_F_EVENT_IDX` the device
//! sends no interrupt at all for a completion caught while spinning,
//! because the driver writes `used_event` only right before it sleeps.
//!
//! [`AdaptivePoll::wait`] waits for one queue with a timeout (the block and
//! console drivers); [`AdaptivePoll::wait_on`] waits for anything a
//! [`Waitable`] reports, or a deadline (the network stack, whose timers
//! set the deadline). Both keep the network served: a block wait polls
//! the stack when it starts and before each sleep, and lets the stack's
//! interrupt and next timer end the sleep, through the [`Background`]
//! work the network registers at boot ([`serve_on_the_side`]); with no
//! network device that is one load.

use core::sync::atomic::{AtomicPtr, Ordering};

use guest_runtime::{control, event, time};

use super::mmio::{Transport, TransportError};
use super::queue::VirtQueue;

/// Work every wait serves on the side: the network's stacks, which
/// register it at boot, so that block and console waits keep the network
/// served without this module knowing the network.
pub struct Background {
    /// Serves what is due (cheap when nothing is).
    pub poll: fn(),
    /// Serves what is due, arms the interrupts it waits for, and returns
    /// the TSC by which a sleep must end (`u64::MAX`: no bound).
    pub before_sleep: fn() -> u64,
}

/// The registered [`Background`], or null.
static BACKGROUND: AtomicPtr<Background> = AtomicPtr::new(core::ptr::null_mut());

/// Makes `work` what every wait serves on the side.
pub fn serve_on_the_side(work: &'static Background) {
    BACKGROUND.store(
        work as *const Background as *mut Background,
        Ordering::Release,
    );
}

/// The registered background work, if any.
fn background() -> Option<&'static Background> {
    // SAFETY: the pointer is null or was made from a `&'static
    // Background` (`serve_on_the_side`), never freed nor written through.
    unsafe { BACKGROUND.load(Ordering::Acquire).as_ref() }
}

/// How often a wait with no progress reads the status register to see
/// whether the device gave up (DEVICE_NEEDS_RESET).
const STATUS_CHECK_NS: u64 = 50_000_000;

/// Spin length at start.
const INITIAL_SPIN_NS: u64 = 10_000;
/// Shortest spin once adapting.
const MIN_SPIN_NS: u64 = 2_000;

/// Why a wait ended without a completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// Nothing came back before the deadline.
    Timeout,
    /// The device set DEVICE_NEEDS_RESET.
    Device(TransportError),
}

/// A device a driver sleeps on: work is ready, or an interrupt is asked
/// for before sleeping.
pub trait Waitable {
    /// True if there is work.
    fn ready(&self) -> bool;
    /// Asks for an interrupt when work comes; returns true if it is
    /// already there (then do not sleep).
    fn arm(&mut self) -> bool;
    /// Withdraws the request (where the device needs to be told).
    fn disarm(&mut self);
}

/// The adaptive spin and what it observed.
#[derive(Clone, Copy, Debug, Default)]
pub struct AdaptivePoll {
    spin_ns: u64,
    max_ns: u64,
    /// Waits answered while spinning.
    pub spin_hits: u64,
    /// Waits that slept.
    pub sleeps: u64,
    /// Device interrupts taken while waiting.
    pub interrupts: u64,
}

impl AdaptivePoll {
    /// A poller that spins at most `max_ns` (0: never spin).
    pub fn new(max_ns: u64) -> Self {
        Self {
            spin_ns: INITIAL_SPIN_NS.min(max_ns),
            max_ns,
            ..Self::default()
        }
    }

    /// The current spin length in nanoseconds.
    pub fn spin_ns(&self) -> u64 {
        self.spin_ns
    }

    fn slept(&mut self, waited_ns: u64) {
        self.sleeps += 1;
        if waited_ns <= self.max_ns {
            self.spin_ns = (self.spin_ns * 2).clamp(MIN_SPIN_NS.min(self.max_ns), self.max_ns);
        } else {
            self.spin_ns = (self.spin_ns / 2).max(MIN_SPIN_NS.min(self.max_ns));
        }
    }

    /// Counts a device interrupt noted but not yet collected (one that
    /// arrived after its completion had been caught by spinning), so a
    /// measurement's count is complete. Other ports' events are dropped;
    /// a control request is obeyed.
    pub fn collect(&mut self, port: u32) {
        let events = event::poll();
        if events.control() {
            control::obey("frontends");
        }
        if events.has_port(port) {
            self.interrupts += 1;
        }
    }

    /// Waits until `q` has used chains to harvest, for at most
    /// `timeout_ns`. The caller has published (kicked) what it waits for.
    pub fn wait(
        &mut self,
        q: &mut VirtQueue,
        t: &mut Transport,
        timeout_ns: u64,
    ) -> Result<(), WaitError> {
        if q.has_used() {
            return Ok(());
        }
        if let Some(work) = background() {
            (work.poll)();
        }
        let start = time::rdtsc();
        let spin_end = start + time::ns_to_ticks(self.spin_ns);
        while time::rdtsc() < spin_end {
            if q.has_used() {
                self.spin_hits += 1;
                return Ok(());
            }
            core::hint::spin_loop();
        }
        let deadline = start + time::ns_to_ticks(timeout_ns);
        let mut check_at = start + time::ns_to_ticks(STATUS_CHECK_NS);
        let mut idle_interrupts = 0;
        loop {
            if q.arm() {
                q.disarm();
                self.slept(time::ticks_to_ns(time::rdtsc() - start));
                return Ok(());
            }
            let net_at = background().map_or(u64::MAX, |work| (work.before_sleep)());
            let events = event::wait_until(deadline.min(check_at).min(net_at));
            if events.control() {
                control::obey("frontends");
            }
            let irq = events.has_port(t.irq_port());
            if irq {
                self.interrupts += 1;
            }
            let now = time::rdtsc();
            if q.has_used() {
                q.disarm();
                self.slept(time::ticks_to_ns(now - start));
                return Ok(());
            }
            if irq {
                // Either left over from a completion caught earlier, or
                // the device reporting a problem: look after the second.
                idle_interrupts += 1;
            }
            if idle_interrupts >= 2 || now >= check_at {
                t.check().map_err(WaitError::Device)?;
                idle_interrupts = 0;
                check_at = now + time::ns_to_ticks(STATUS_CHECK_NS);
            }
            if now >= deadline {
                q.disarm();
                return Err(WaitError::Timeout);
            }
        }
    }

    /// Waits until `w` is ready or the TSC reaches `deadline` (`u64::MAX`:
    /// no deadline): spins (not past the deadline), then arms `w` and
    /// sleeps until an interrupt. Returns true if `w` is ready. A control
    /// request is obeyed; `port`'s interrupts are counted in
    /// `interrupts`, any interrupt ends the wait.
    pub fn wait_on(&mut self, w: &mut impl Waitable, port: u32, deadline: u64) -> bool {
        if w.ready() {
            return true;
        }
        let start = time::rdtsc();
        let spin_end = (start + time::ns_to_ticks(self.spin_ns)).min(deadline);
        while time::rdtsc() < spin_end {
            if w.ready() {
                self.spin_hits += 1;
                return true;
            }
            core::hint::spin_loop();
        }
        if time::rdtsc() >= deadline {
            return false;
        }
        if w.arm() {
            w.disarm();
            self.slept(time::ticks_to_ns(time::rdtsc() - start));
            return true;
        }
        let events = event::wait_until(if deadline == u64::MAX { 0 } else { deadline });
        if events.control() {
            control::obey("frontends");
        }
        if events.has_port(port) {
            self.interrupts += 1;
        }
        w.disarm();
        let ready = w.ready();
        if ready {
            self.slept(time::ticks_to_ns(time::rdtsc() - start));
        }
        ready
    }
}
