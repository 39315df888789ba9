//! The guest's network: smoltcp over the virtio-net driver, and the
//! services every workload keeps running ([`services`], [`http`]).
//!
//! Every network device is an interface of its own: its own smoltcp
//! [`Stack`] (address, ARP cache, sockets and services), with no routing
//! between them. [`init`] brings up the devices the guest booted with,
//! before the workload starts; [`attach`] and [`detach`] add and remove
//! one as `xl network-attach` and `network-detach` change the device
//! table ([`crate::hotplug`]). The stacks live in one global slot
//! (see [`with`]); whoever waits polls them all:
//!
//! * the idle loop ([`serve_once`], also where `workload=net` and the
//!   misbehaving network workloads end up);
//! * every block and console wait ([`crate::virtio::wait`], through the
//!   [`Background`] registered by [`init`]): [`poll`]
//!   when the wait starts and [`before_sleep`] before each sleep, whose
//!   answer (the stacks' next timer) bounds the sleep, and which arms the
//!   devices so that a frame ends it;
//! * the other waiting loops (`pingpong`, `vcpus`) and `spin`.
//!
//! A workload that drives a stack itself ([`with`]: the first one, the
//! oldest) waits on that stack alone; the others are served again when
//! it is done.
//!
//! A poll does nothing unless a frame came, buffers the driver waits for
//! came back, or a timer of the stack is due; without a network device
//! it is one load. The slot is taken for the length of a poll, so a poll
//! reached from inside another (a console line written while the stack
//! works) returns at once.
//!
//! The address is the device's (`ip=` in the vif, via the device table);
//! without one it is `169.254.(1 + domid / 254 % 254).(1 + domid % 254)/16`
//! (link-local, never `.0` or `.255`). There is no gateway: peers are on
//! the same segment. The status page names the domain as the core gave
//! its name at creation ([`guest_runtime::BootInfo::name`]).

pub mod frames;
mod http;
mod phy;
mod raw;
mod services;
mod stack;

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use guest_runtime::{println, BootInfo};
use protocol::device::{kind, GuestDevice};

use crate::cmdline::Args;
use crate::virtio::net::NetError;
use crate::virtio::wait::Background;
use stack::{wait_all, Guest};

pub use http::MAX_HEAD;
pub use services::{buffer, tcp_socket, DISCARD_PORT, ECHO_PORT, HTTP_PORT};
pub use stack::Stack;

/// The stacks, and what a new one is opened with.
struct Stacks {
    /// What every stack is opened with.
    guest: Guest,
    /// One per interface, oldest first.
    list: Vec<Stack>,
}

/// The stacks, taken for the length of each use.
struct Slot {
    /// Set while at least one stack is in the slot.
    present: AtomicBool,
    /// Set while someone uses the stacks.
    busy: AtomicBool,
    /// The stacks, once [`init`] has run.
    stacks: UnsafeCell<Option<Stacks>>,
}

// SAFETY: only vCPU 0 runs the kernel's main loop (the others only idle),
// interrupt handlers never touch the slot, and `with_stacks` hands out the
// stacks only to the caller that set `busy`, so no two references
// coexist.
unsafe impl Sync for Slot {}

/// Every interface of this guest.
static SLOT: Slot = Slot {
    present: AtomicBool::new(false),
    busy: AtomicBool::new(false),
    stacks: UnsafeCell::new(None),
};

/// Runs `f` on the stacks; `None` before [`init`] or while they are in
/// use further up this call chain.
fn with_stacks<R>(f: impl FnOnce(&mut Stacks) -> R) -> Option<R> {
    if SLOT.busy.swap(true, Ordering::Acquire) {
        return None;
    }
    // SAFETY: `busy` was clear and is now set by this call, so no other
    // reference to the stacks exists until it is cleared below (see
    // `Slot`).
    let stacks = unsafe { &mut *SLOT.stacks.get() };
    let result = stacks.as_mut().map(|s| {
        let r = f(s);
        SLOT.present.store(!s.list.is_empty(), Ordering::Relaxed);
        r
    });
    SLOT.busy.store(false, Ordering::Release);
    result
}

/// Runs `f` on the first (oldest) stack; `None` if there is none, or the
/// stacks are in use further up this call chain.
pub fn with<R>(f: impl FnOnce(&mut Stack) -> R) -> Option<R> {
    if !SLOT.present.load(Ordering::Relaxed) {
        return None;
    }
    with_stacks(|s| s.list.first_mut().map(f)).flatten()
}

/// What the block and console waits serve on the side.
static BACKGROUND: Background = Background { poll, before_sleep };

/// Brings up every network device the guest booted with, each saying so
/// on the console; a device that fails is reported and left alone.
/// Devices attached later come through [`attach`].
pub fn init(boot: &'static BootInfo, args: &Args) {
    crate::virtio::wait::serve_on_the_side(&BACKGROUND);
    let guest = Guest {
        domid: boot.domid,
        name: boot.name(),
        spin_max_ns: args.poll_ns(),
    };
    let mut list = Vec::new();
    for dev in crate::virtio::devices() {
        if dev.kind != kind::NET {
            continue;
        }
        let heap_before = guest_runtime::heap::used();
        let stack = match Stack::open(&dev, guest) {
            Ok(stack) => stack,
            Err(e) => {
                println!("frontends: {}: network device unusable: {e}", dev.vdev());
                continue;
            }
        };
        let info = stack.info();
        println!(
            "frontends: {}: {}, mtu {}, link {}, queues {}+{}, features {:#x}, {} register accesses, {} KiB of heap; serving icmp-echo tcp-echo/7 udp-echo/7 tcp-discard/9 http/80",
            dev.vdev(),
            stack.identity(),
            info.mtu,
            if info.link_up { "up" } else { "down" },
            info.rx_size,
            info.tx_size,
            info.features,
            stack.net.accesses(),
            guest_runtime::heap::used().saturating_sub(heap_before) >> 10,
        );
        list.push(stack);
    }
    // `init` runs once, before anything else looks at the slot.
    if !SLOT.busy.swap(true, Ordering::Acquire) {
        SLOT.present.store(!list.is_empty(), Ordering::Relaxed);
        // SAFETY: `busy` was clear and is now set by this call (see `Slot`).
        unsafe { *SLOT.stacks.get() = Some(Stacks { guest, list }) };
        SLOT.busy.store(false, Ordering::Release);
    }
}

/// Brings up the network device `dev`, attached while the guest runs, as
/// an interface of its own. Returns what the console line shows of it
/// (`mac ..., ipv4 ..., mtu 1500, link up`); `None` if the stacks are in
/// use further up this call chain (try again later).
pub fn attach(dev: &GuestDevice) -> Option<Result<String, NetError>> {
    with_stacks(|s| {
        let stack = Stack::open(dev, s.guest)?;
        let info = stack.info();
        let text = alloc::format!(
            "{}, mtu {}, link {}",
            stack.identity(),
            info.mtu,
            if info.link_up { "up" } else { "down" }
        );
        s.list.push(stack);
        Ok(text)
    })
}

/// Stops using the network device whose window is at `mmio_base` (it
/// left the device table): resets it, so that it no longer writes into
/// the driver's buffers, and drops its stack (if one used it). `None` if
/// the stacks are in use further up this call chain (try again later:
/// the device may still be in use).
pub fn detach(mmio_base: u64) -> Option<()> {
    with_stacks(|s| {
        // Dropping the stack drops its driver, which resets the device.
        s.list.retain(|st| st.dev.mmio_base != mmio_base);
    })
}

/// Polls every stack that has work (cheap when none has).
pub fn poll() {
    if !SLOT.present.load(Ordering::Relaxed) {
        return;
    }
    with_stacks(|s| s.list.iter_mut().for_each(Stack::poll_if_due));
}

/// Polls every stack that has work, then asks each device for an
/// interrupt when a frame comes. Returns the TSC by which the caller's
/// sleep must end: now if work is already there, the stacks' next timer
/// otherwise, `u64::MAX` without a stack.
pub fn before_sleep() -> u64 {
    if !SLOT.present.load(Ordering::Relaxed) {
        return u64::MAX;
    }
    with_stacks(|s| {
        (s.list.iter_mut())
            .map(Stack::before_sleep)
            .fold(u64::MAX, u64::min)
    })
    .unwrap_or(u64::MAX)
}

/// Serves the network until something happens: polls every stack, then
/// waits for a frame, a timer or any interrupt. Returns false at once if
/// there is no stack.
pub fn serve_once() -> bool {
    if !SLOT.present.load(Ordering::Relaxed) {
        return false;
    }
    with_stacks(|s| {
        s.list.iter_mut().for_each(Stack::poll);
        wait_all(&mut s.list, u64::MAX);
    })
    .is_some()
}
