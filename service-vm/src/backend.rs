//! A [`Backend`]: one device Dom0 serves, that is the backend model (a
//! virtio-mmio transport around virtio-blk, virtio-console or virtio-net)
//! and the platform it runs on. [`crate::device_table`] keeps them and
//! routes ports to them; a network device's frames are switched by
//! [`crate::switches`].

use alloc::collections::vec_deque;
use alloc::vec::Vec;

use backends::{
    BlkConfig, DeviceModel, DropReason, FrameSource, IoResult, NetConfig, PortStats, Received,
    TxFrame,
};
use guest_runtime::{hypercall, println};
use protocol::device::{kind, BackendEvent, VDEV_LEN};
use protocol::domain::DomId;
use protocol::report::{heapless_name::Name, BackendStats, Report};
use protocol::trace::{Step, BATCH};
use protocol::virtio::blk::ID_BYTES;
use protocol::virtio::mmio::{OFFERED_QUEUE_SIZE, WINDOW_SIZE};

use crate::platform::GuestPlatform;
use protocol::ioreq::Access;

/// The backend model for a device of `event.kind`, if Dom0 has one.
pub fn model_for(event: &BackendEvent) -> Option<DeviceModel> {
    match event.kind {
        kind::BLOCK => {
            let mut id = [0u8; ID_BYTES];
            let n = ID_BYTES.min(VDEV_LEN);
            id[..n].copy_from_slice(&event.vdev[..n]);
            let config = BlkConfig {
                read_only: event.readonly != 0,
                id,
                ..BlkConfig::new(event.disk_bytes)
            };
            Some(DeviceModel::blk(config))
        }
        kind::CONSOLE => Some(DeviceModel::console(OFFERED_QUEUE_SIZE)),
        kind::NET => Some(DeviceModel::net(NetConfig::new(event.net.mac))),
        _ => None,
    }
}

/// The name of a device kind, for messages.
pub fn kind_name(kind: u32) -> &'static str {
    match kind {
        kind::BLOCK => "block",
        kind::CONSOLE => "console",
        kind::NET => "network",
        kind::UPLINK => "uplink",
        _ => "unknown",
    }
}

/// A NUL-padded device name as text.
pub fn vdev_name(vdev: &[u8; VDEV_LEN]) -> &str {
    let len = vdev.iter().position(|&b| b == 0).unwrap_or(VDEV_LEN);
    core::str::from_utf8(&vdev[..len]).unwrap_or("?")
}

/// The backend of one device of a guest, with everything needed to serve
/// it.
#[derive(Debug)]
pub struct Backend {
    /// The event that announced it (ports, window, ioreq page).
    pub event: BackendEvent,
    platform: GuestPlatform,
    model: DeviceModel,
    done: Vec<(u64, IoResult)>,
    reset_logged: bool,
    accesses: u64,
    /// Domain-0's wake-ups and port events when the device arrived.
    baseline: Dom0Activity,
}

/// Domain-0's own activity, counted by its main loop.
#[derive(Clone, Copy, Debug, Default)]
pub struct Dom0Activity {
    /// Halts that ended (Domain-0 woke to serve).
    pub wakeups: u64,
    /// Event-channel ports found pending (interrupts taken).
    pub port_events: u64,
}

impl Backend {
    /// A device announced by `event`, with its `model` on `platform`.
    pub fn new(
        event: BackendEvent,
        platform: GuestPlatform,
        model: DeviceModel,
        baseline: Dom0Activity,
    ) -> Self {
        Self {
            event,
            platform,
            model,
            done: Vec::new(),
            reset_logged: false,
            accesses: 0,
            baseline,
        }
    }

    /// Takes the device over from the state an earlier Domain-0 left in
    /// its page, if any, and serves its queues at once: `Some(chains to
    /// take again)` if it did, `None` for a new device.
    pub fn resume(&mut self) -> Option<usize> {
        let redo = self.model.resume(&mut self.platform)?;
        self.notify();
        Some(redo)
    }

    /// Host I/O requests in flight on the device's hardware queue.
    pub fn in_flight(&self) -> usize {
        self.platform.hw_ref().map_or(0, |hw| hw.in_flight())
    }

    /// The guest the device belongs to.
    pub fn domid(&self) -> DomId {
        self.event.domid
    }

    /// The device's name (`xvda`, `console`).
    pub fn name(&self) -> &str {
        vdev_name(&self.event.vdev)
    }

    /// True if all of `access` falls in the device's register window.
    pub fn window_holds(&self, access: &Access) -> bool {
        access
            .offset_in(self.event.guest_mmio_base, WINDOW_SIZE)
            .is_some()
    }

    /// Performs a register access and returns the data to answer with;
    /// `None` if the access is not inside the window
    /// ([`Backend::window_holds`]).
    pub fn access(&mut self, access: &Access) -> Option<u64> {
        let offset = access.offset_in(self.event.guest_mmio_base, WINDOW_SIZE)?;
        self.accesses += 1;
        let p = &mut self.platform;
        let data = match access.write {
            None => self.model.read(offset, access.size),
            Some(value) => {
                self.model.write(p, offset, access.size, value);
                value
            }
        };
        self.check_health();
        Some(data)
    }

    /// The guest notified one of the device's queues (which one is not
    /// known): process every queue that is running.
    pub fn notify(&mut self) {
        self.model.notify_all(&mut self.platform);
        self.check_health();
    }

    /// Reaps the hardware queue and completes every request whose parts
    /// have all finished. Returns the number of completions popped.
    pub fn complete(&mut self) -> usize {
        let Some(hw) = self.platform.hw() else {
            return 0;
        };
        let popped = hw.reap(&mut self.done);
        for (tag, result) in self.done.drain(..) {
            self.model.complete(&mut self.platform, tag, result);
        }
        self.check_health();
        popped
    }

    /// True if the hardware queue has completions waiting.
    pub fn has_completions(&self) -> bool {
        self.platform
            .hw_ref()
            .is_some_and(|hw| hw.has_completions())
    }

    /// End of a round of the main loop: ring the hardware queue's doorbell
    /// if SQEs were pushed, and pass console output on.
    pub fn flush(&mut self) {
        let trace = self.platform.tracer();
        if let Some(hw) = self.platform.hw() {
            hw.flush(|sqes| trace.emit(Step::Doorbell, BATCH, sqes));
        }
        self.platform.flush_console();
    }

    /// Enters or leaves polling. While Dom0 polls, the hardware queue's
    /// completions raise no interrupt and the guest is asked for no queue
    /// notifications: [`Backend::poll`] and the sweep of the completion ring
    /// find the work instead. Leaving serves what arrived unannounced;
    /// returns 1 if there was such work.
    pub fn set_polling(&mut self, polling: bool) -> usize {
        if let Some(hw) = self.platform.hw() {
            hw.set_interrupts(!polling);
        }
        let work = self.model.set_polling(&mut self.platform, polling);
        self.check_health();
        usize::from(work)
    }

    /// While Dom0 polls: serves the queues the guest added to. Returns 1
    /// if there was work.
    pub fn poll(&mut self) -> usize {
        let work = self.model.poll(&mut self.platform);
        self.check_health();
        usize::from(work)
    }

    /// The frames a network device's driver transmitted and the switch has
    /// not taken yet, oldest first; none for another kind of device, or a
    /// network device that is not running (a hostile guest's device that
    /// needs a reset is not pumped).
    pub fn tx_frames(&self) -> vec_deque::Iter<'_, TxFrame> {
        self.model.tx_frames()
    }

    /// The device's platform: the sender's memory, for
    /// [`backends::GuestFrame`].
    pub fn platform(&self) -> &GuestPlatform {
        &self.platform
    }

    /// Delivers a frame into the network device's next receive buffer;
    /// anything but [`Received::Delivered`] is a drop for want of a
    /// (usable) buffer at this port.
    pub fn receive<S>(&mut self, source: &S) -> Result<(), DropReason>
    where
        S: FrameSource<GuestPlatform> + ?Sized,
    {
        let received = self
            .model
            .with_net(&mut self.platform, |net, p, q| net.receive(p, q, source));
        self.check_health();
        match received {
            Some(Received::Delivered) => Ok(()),
            _ => Err(DropReason::NoBuffer),
        }
    }

    /// Returns the `n` oldest transmitted frames' chains to the driver
    /// (they were switched).
    pub fn finish_tx(&mut self, n: usize) {
        self.model
            .with_net(&mut self.platform, |net, p, q| net.finish_tx(p, q, n));
        self.check_health();
    }

    /// Logs, once per occurrence, a device that gave up on its guest's
    /// rings (`DEVICE_NEEDS_RESET`). It stays stopped until the guest
    /// resets it; nothing else is affected.
    fn check_health(&mut self) {
        let (broken, error) = (self.model.needs_reset(), self.model.last_error());
        if broken && !self.reset_logged {
            match error {
                Some(e) => println!(
                    "service-vm: domain {} {}: device needs reset: {e:?}; still serving the others",
                    self.event.domid,
                    self.name()
                ),
                None => println!(
                    "service-vm: domain {} {}: device needs reset; still serving the others",
                    self.event.domid,
                    self.name()
                ),
            }
        }
        self.reset_logged = broken;
    }

    /// Logs what the device did, when it is removed, and reports it (a
    /// [`Report::BackendStats`]) to whoever watches Domain-0; `now` is
    /// Domain-0's activity at the removal, `port` the final counters of a
    /// network device's switch port.
    pub fn log_removal(&self, now: Dom0Activity, port: Option<PortStats>) {
        let s = self.model.stats();
        println!(
            "service-vm: removed {} of domain {}: {} notifies, {} found by polling, {} interrupts, {} bad accesses",
            self.name(),
            self.event.domid,
            s.notifies,
            s.polled,
            s.interrupts,
            s.bad_accesses
        );
        let mut stats = BackendStats {
            domid: self.event.domid,
            vdev: Name::new(self.name()),
            notifies: s.notifies,
            polled: s.polled,
            interrupts: s.interrupts,
            register_accesses: self.accesses,
            wakeups: now.wakeups - self.baseline.wakeups,
            backend_interrupts: now.port_events - self.baseline.port_events,
            ..Default::default()
        };
        if let Some(hw) = self.platform.hw_ref() {
            let h = hw.stats();
            println!(
                "service-vm: {} of domain {}: {} requests, {} SQEs, {} doorbells, {} fsyncs, {} overflowed, {} stray, {} dropped in flight",
                self.name(),
                self.event.domid,
                h.completed,
                h.sqes,
                h.doorbells,
                h.fsyncs,
                h.overflowed,
                h.stray,
                hw.in_flight()
            );
            stats.requests = h.completed;
            stats.sqes = h.sqes;
            stats.submits = h.doorbells;
            stats.fsyncs = h.fsyncs;
        }
        if let Some(net) = self.model.as_net() {
            println!(
                "service-vm: {} of domain {}: {}",
                self.name(),
                self.event.domid,
                net.stats()
            );
        }
        if let Some(p) = port {
            log_port(self.name(), self.event.domid, &p);
        }
        if let Err(errno) = hypercall::report(&Report::BackendStats(stats)) {
            println!("service-vm: report of {}: {}", self.name(), errno.name());
        }
    }
}

/// Logs a switch port's final counters (`name` of domain `domid`: a vif,
/// or the uplink, domain 0).
pub fn log_port(name: &str, domid: DomId, p: &PortStats) {
    println!("service-vm: port of {name} (domain {domid}): {p}");
}
