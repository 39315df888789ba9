//! The service VM kernel (Dom0): the device model.
//!
//! Dom0 is the privileged domain that hosts the device backends. Its main
//! loop runs in ring 3 on vCPU 0, where every interrupt of the I/O path
//! arrives, and serves, in each round:
//!
//! 1. the backend ring ([`backend_ring`]): devices `hypd` added or
//!    removed (checked on every wake-up, whatever woke Dom0);
//! 2. the event-channel ports that fired, by their [`device_table::Route`]:
//!    * an ioreq port: a guest vCPU's trapped register access waits in its
//!      slot ([`ioreq`]); the device whose window holds the address
//!      performs it on its virtio-mmio transport, Dom0 answers;
//!    * a notify port: the guest kicked a queue of the device;
//!    * a hardware-queue port: the host completed block I/O ([`hwqueue`]);
//!    * an uplink's queue port: frames came from the host's bridge, or
//!      went to it ([`uplink`]);
//!    * any other port (a guest's control channel): an echo on the same
//!      port, as before devices existed;
//! 3. a sweep of the ioreq slots and the completion rings (and, while
//!    polling, the guests' available rings), for work that is there before
//!    (or without) its interrupt, then the switches' pump ([`switches`]):
//!    the frames guests transmitted go to other guests and the uplink;
//! 4. the end of the round: one doorbell per hardware queue that got SQEs,
//!    console output passed on.
//!
//! After a round that found work, Dom0 keeps polling for
//! [`ADAPTIVE_POLL_NS`], since a halt and a wake-up cost far more here than
//! a short spin. While it polls, the hardware queues' completions raise no
//! interrupt and the guests are asked not to notify their queues (the sweep
//! reads the rings' indices instead); then it turns both back on, looks
//! once more, and halts: until an interrupt, or until a vif's `rate=`
//! credit returns for frames it holds. A round that switched frames is
//! work. A control request
//! from the core (`xl shutdown`) shuts Dom0 down.
#![no_std]
#![no_main]

extern crate alloc;

mod backend;
mod backend_ring;
mod device_table;
mod hwqueue;
mod hwring;
mod ioreq;
mod platform;
mod reserved;
mod switches;
mod uplink;
mod window;

use guest_runtime::{control, event, evtchn, hypercall, println, time, BootInfo};
use protocol::domain::DomId;
use protocol::evtchn::{PortStatus, NR_PORTS};

use backend_ring::BackendRing;
use device_table::{DeviceTable, Route};
use reserved::Reserved;

guest_runtime::entry!(main);

/// How long Dom0 keeps polling (ring 3, no halt) after the last round that
/// found work, in nanoseconds. A halt and the wake-up after it cost tens
/// of microseconds on this machine. The window covers a guest's next
/// request at depth 1 and a hardware-queue batch at depth 32: measured
/// with `xl bench`, 100 µs instead of 30 µs took Dom0's wake-ups from
/// about 1 per request to under 0.01 and the depth-1 read latency from
/// 125 µs to 70 µs (docs/io-path.md). Dom0 spins on a core only while I/O
/// keeps coming; an idle Dom0 halts.
pub const ADAPTIVE_POLL_NS: u64 = 100_000;

/// How long Domain-0 waits for its host I/O in flight before it shuts
/// down or reboots (`xl shutdown 0`, `xl reboot 0`), in milliseconds.
const FINISH_MS: u64 = 2_000;

fn main(boot: &'static BootInfo) -> ! {
    println!(
        "service-vm: Domain-0 up: {} MiB, {} vCPU(s), TSC {} kHz, privileged={}",
        boot.ram_bytes >> 20,
        boot.vcpus,
        boot.tsc_khz,
        boot.is_privileged()
    );
    let reserved = Reserved::from_boot(boot);
    let mut ring = BackendRing::from_boot(boot, reserved);
    let mut devices = DeviceTable::new(reserved);
    let mut channels = Channels::new();
    let poll_ticks = time::ns_to_ticks(ADAPTIVE_POLL_NS);
    let mut served: u64 = 0;
    let mut last_work: u64 = 0;
    let mut polling = false;
    // The first round looks at the backend ring before any halt: devices
    // may have been added before this vCPU took interrupts.
    let mut halt = false;
    loop {
        let events = if halt {
            devices.activity.wakeups += 1;
            event::wait_until(devices.wake_at())
        } else {
            event::poll()
        };
        if events.control() {
            println!(
                "service-vm: answered {} notifications, served {served} events",
                channels.echoed
            );
            if control::pending() {
                let left = devices.finish_in_flight(FINISH_MS);
                if left > 0 {
                    println!("service-vm: {left} requests still in flight: the next Domain-0 does them again");
                }
            }
            control::obey("service-vm");
        }
        let mut work = 0;
        if let Some(ring) = ring.as_mut() {
            while let Some(entry) = ring.next() {
                devices.apply(&entry);
                work += 1;
            }
        }
        for port in events.ports() {
            devices.activity.port_events += 1;
            work += dispatch(port, &mut devices, &mut channels);
        }
        work += devices.sweep();
        devices.flush();

        let now = time::rdtsc();
        if work > 0 {
            served += work as u64;
            control::set_progress(served);
            last_work = now;
        }
        if now.wrapping_sub(last_work) < poll_ticks {
            if !polling {
                devices.set_polling(true);
                polling = true;
            }
            halt = false;
            core::hint::spin_loop();
            continue;
        }
        if polling {
            polling = false;
            if devices.set_polling(false) > 0 {
                // Requests queued unannounced while polling stopped: they
                // were served, so poll on.
                devices.flush();
                last_work = time::rdtsc();
                halt = false;
                continue;
            }
        }
        // With completion interrupts back on, whatever is not seen here
        // raises an interrupt that ends the halt.
        let pending = devices.has_work() || ring.as_ref().is_some_and(BackendRing::has_events);
        halt = !pending;
    }
}

/// Serves an event on `port`; returns how much work it was.
fn dispatch(port: u32, devices: &mut DeviceTable, channels: &mut Channels) -> usize {
    match devices.route(port) {
        Route::Ioreq { .. } => usize::from(devices.serve_ioreq(port)),
        Route::Notify(index) => devices.get_mut(index).map_or(0, |d| {
            d.notify();
            1
        }),
        Route::Queue(index) => devices.get_mut(index).map_or(0, |d| d.complete()),
        Route::Uplink(at) => devices.reap_uplink(at),
        // Dom0 only sends on a device's interrupt port.
        Route::Irq(_) => 0,
        Route::Retired(domid) => {
            if channels.reused(port, domid) {
                devices.forget(port);
                channels.echo(port)
            } else {
                0
            }
        }
        Route::Free => channels.echo(port),
    }
}

/// The guests' control channels: interdomain ports no device uses, on
/// which Dom0 answers every notification with one back.
struct Channels {
    known: [bool; NR_PORTS as usize],
    echoed: u64,
}

impl Channels {
    fn new() -> Self {
        Self {
            known: [false; NR_PORTS as usize],
            echoed: 0,
        }
    }

    /// Echoes on `port` (introducing it the first time it fires).
    fn echo(&mut self, port: u32) -> usize {
        let Some(known) = self.known.get_mut(port as usize) else {
            return 0;
        };
        if !*known {
            if !introduce(port) {
                return 0;
            }
            *known = true;
        }
        if let Err(errno) = evtchn::send(port) {
            println!("service-vm: echo on port {port} failed: {}", errno.name());
        }
        self.echoed += 1;
        1
    }

    /// True if `port`, once a port of a removed device of `domid`, now
    /// connects to another domain (the core reused it).
    fn reused(&mut self, port: u32, domid: DomId) -> bool {
        match evtchn::status(port) {
            Ok((PortStatus::Interdomain, remote, _)) if remote != domid => {
                if let Some(known) = self.known.get_mut(port as usize) {
                    *known = false;
                }
                true
            }
            _ => false,
        }
    }
}

/// Logs who is on the other end of a port the first time it fires;
/// false if it is not an interdomain port (nothing to answer).
fn introduce(port: u32) -> bool {
    match evtchn::status(port) {
        Ok((PortStatus::Interdomain, remote, remote_port)) => {
            match hypercall::domain_info(remote) {
                Ok(info) => println!(
                    "service-vm: port {port} <-> domain {remote} port {remote_port} ({} MiB, {} vCPU)",
                    info.ram_bytes >> 20,
                    info.vcpus
                ),
                Err(errno) => println!(
                    "service-vm: port {port} <-> domain {remote}: info: {}",
                    errno.name()
                ),
            }
            true
        }
        Ok((status, remote, _)) => {
            println!("service-vm: event on port {port} ({status:?}, domain {remote})");
            false
        }
        Err(errno) => {
            println!("service-vm: status of port {port}: {}", errno.name());
            true
        }
    }
}
