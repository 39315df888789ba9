//! The [`DeviceTable`]: the devices Dom0 serves (a [`Backend`] each), and
//! which of its ports leads to which.
//!
//! Every port named in a [`BackendEvent`] gets a [`Route`]: a guest's
//! ioreq ports (shared by all devices of that guest; an access goes to the
//! device whose window holds its address), each device's notify port, its
//! hardware-queue port and its interrupt port (Dom0 only sends on that
//! one). A port of a removed device is [`Route::Retired`]: Dom0 never
//! touches it again, until the core hands it out for something else.
//!
//! Network devices also hold a port of one of Domain-0's switches
//! ([`Switches`]), which move their frames; a switch's uplink (a
//! [`kind::UPLINK`] event, Domain-0's own) is no guest's device: its
//! queue port is a [`Route::Uplink`].

use alloc::vec::Vec;

use guest_runtime::{evtchn, println, time};
use protocol::device::{kind, BackendEvent};
use protocol::domain::{DomId, DOM0, MAX_VCPUS};
use protocol::evtchn::{is_valid_port, NR_PORTS};
use protocol::ioreq::SLOT_SIZE;
use protocol::virtio::mmio::WINDOW_SIZE;
use protocol::virtio::saved::SavedDevice;

use crate::backend::{kind_name, model_for, vdev_name, Backend, Dom0Activity};
use crate::hwqueue::HwQueue;
use crate::ioreq::Slot;
use crate::platform::GuestPlatform;
use crate::reserved::Reserved;
use crate::switches::Switches;
use crate::window::Window;

/// What a Dom0 port is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// No device uses it (a guest's control channel, or nothing).
    Free,
    /// A port of a removed device of this guest: ignore it.
    Retired(DomId),
    /// The ioreq slot of one vCPU of guest `domid`.
    Ioreq {
        /// The guest.
        domid: DomId,
        /// Its slot.
        slot: Slot,
    },
    /// The queue-notify port of the device at this index.
    Notify(usize),
    /// The hardware-queue port of the device at this index.
    Queue(usize),
    /// The interrupt port of the device at this index (send only).
    Irq(usize),
    /// The queue port of the uplink of the switch at this index.
    Uplink(usize),
}

/// Nanoseconds on the TSC: the switches' clock.
fn now_ns() -> u64 {
    time::ticks_to_ns(time::rdtsc())
}

/// The table of backends and port routes.
#[derive(Debug)]
pub struct DeviceTable {
    slots: Vec<Option<Backend>>,
    routes: [Route; NR_PORTS as usize],
    ioreq_ports: Vec<u32>,
    switches: Switches,
    reserved: Reserved,
    send_failed: bool,
    polling: bool,
    /// Domain-0's activity so far (the main loop counts it).
    pub activity: Dom0Activity,
}

impl DeviceTable {
    /// An empty table; pointers in backend events must lie in `reserved`.
    pub fn new(reserved: Reserved) -> Self {
        Self {
            slots: Vec::new(),
            routes: [Route::Free; NR_PORTS as usize],
            ioreq_ports: Vec::new(),
            switches: Switches::default(),
            reserved,
            send_failed: false,
            polling: false,
            activity: Dom0Activity::default(),
        }
    }

    /// Applies one entry of the backend ring.
    pub fn apply(&mut self, event: &BackendEvent) {
        match event.event {
            protocol::device::event::ADDED => {
                let added = if event.kind == kind::UPLINK {
                    self.add_uplink(event)
                } else {
                    self.add(event)
                };
                if let Err(why) = added {
                    println!(
                        "service-vm: refused {} device {} ({}) of domain {}: {why}",
                        kind_name(event.kind),
                        event.device_id,
                        vdev_name(&event.vdev),
                        event.domid
                    );
                }
            }
            protocol::device::event::REMOVED => self.remove(event.device_id),
            other => println!("service-vm: unknown backend event {other}: ignored"),
        }
    }

    /// The route of `port` (an out-of-range port is [`Route::Free`]).
    pub fn route(&self, port: u32) -> Route {
        self.routes
            .get(port as usize)
            .copied()
            .unwrap_or(Route::Free)
    }

    /// Forgets that `port` belonged to a removed device.
    pub fn forget(&mut self, port: u32) {
        if let Some(route @ Route::Retired(_)) = self.routes.get_mut(port as usize) {
            *route = Route::Free;
        }
    }

    /// The routes the device of `event` needs, checked against each other
    /// and against the table.
    fn wanted(
        &self,
        event: &BackendEvent,
        index: usize,
    ) -> Result<Vec<(u32, Route)>, &'static str> {
        let mut wanted = Vec::new();
        for vcpu in 0..event.ioreq_slots as usize {
            // SAFETY: `add` checked that the page lies in the reserved RAM
            // with room for `ioreq_slots` slots.
            let slot = unsafe { Slot::new(event.ioreq_page, vcpu) };
            let domid = event.domid;
            wanted.push((slot.port(), Route::Ioreq { domid, slot }));
        }
        if wanted.is_empty() {
            return Err("no ioreq port");
        }
        wanted.push((event.notify_port, Route::Notify(index)));
        wanted.push((event.irq_port, Route::Irq(index)));
        if event.kind == kind::BLOCK {
            wanted.push((event.queue_port, Route::Queue(index)));
        }
        for (i, &(port, route)) in wanted.iter().enumerate() {
            if !is_valid_port(port) || wanted[..i].iter().any(|&(p, _)| p == port) {
                return Err("invalid or repeated port");
            }
            match self.route(port) {
                Route::Free | Route::Retired(_) => {}
                existing @ Route::Ioreq { .. } if existing == route => {}
                _ => return Err("port already serves another device"),
            }
        }
        Ok(wanted)
    }

    fn add(&mut self, event: &BackendEvent) -> Result<(), &'static str> {
        let live = || self.slots.iter().flatten();
        if live().any(|d| d.event.device_id == event.device_id) {
            return Err("device id already in use");
        }
        let window = Window::new(event.window_base, event.window_bytes)
            .ok_or("implausible foreign window")?;
        let mmio_end = event.guest_mmio_base.checked_add(WINDOW_SIZE);
        if mmio_end.is_none() || !event.guest_mmio_base.is_multiple_of(WINDOW_SIZE) {
            return Err("misaligned register window");
        }
        // Windows are aligned to their size: two overlap only if they start
        // at the same address.
        let same_window = |d: &Backend| d.event.guest_mmio_base == event.guest_mmio_base;
        if live().any(|d| d.domid() == event.domid && same_window(d)) {
            return Err("register window overlaps another device");
        }
        if event.ioreq_slots as usize > MAX_VCPUS {
            return Err("more ioreq slots than a domain has vCPUs");
        }
        let slots_bytes = u64::from(event.ioreq_slots) * SLOT_SIZE as u64;
        if !self.reserved.holds(event.ioreq_page, slots_bytes, 8) {
            return Err("ioreq page outside the reserved RAM");
        }
        let saved = self.saved_state(event.state_page)?;
        let model = model_for(event).ok_or("unknown device kind")?;
        let index = self
            .slots
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.slots.len());
        let wanted = self.wanted(event, index)?;
        let hw = if event.kind == kind::BLOCK {
            let same = |d: &Backend| {
                d.event.kind == kind::BLOCK && d.event.queue_layout == event.queue_layout
            };
            if live().any(same) || self.switches.uses_layout(event.queue_layout) {
                return Err("hardware queue already in use");
            }
            // SAFETY: no live device uses this queue (checked above), and
            // the device that will own the view is the queue's only user.
            let hw = unsafe {
                HwQueue::new(
                    event.queue_layout,
                    event.queue_port,
                    event.device_id,
                    self.reserved,
                )
            };
            Some(hw?)
        } else {
            None
        };
        if event.kind == kind::NET {
            // The last step that may refuse: nothing to undo after it.
            self.switches.join(index, event)?;
        }
        let platform = GuestPlatform::new(
            event.domid,
            event.guest_mmio_base,
            window,
            event.irq_port,
            hw,
            saved,
        );
        for (port, route) in wanted {
            self.routes[port as usize] = route;
            if matches!(route, Route::Ioreq { .. }) && !self.ioreq_ports.contains(&port) {
                self.ioreq_ports.push(port);
            }
        }
        let mut device = Backend::new(*event, platform, model, self.activity);
        let resumed = device.resume();
        println!(
            "service-vm: {} {} ({}) of domain {} (device {}, {} MiB RAM{})",
            match resumed {
                Some(_) => "took over",
                None => "serving",
            },
            device.name(),
            kind_name(event.kind),
            event.domid,
            event.device_id,
            event.window_bytes >> 20,
            if event.kind == kind::BLOCK && event.readonly != 0 {
                ", read-only"
            } else {
                ""
            },
        );
        if let Some(redo) = resumed.filter(|&n| n > 0) {
            println!(
                "service-vm: {} of domain {}: {redo} requests taken again",
                device.name(),
                event.domid
            );
        }
        if index == self.slots.len() {
            self.slots.push(Some(device));
        } else {
            self.slots[index] = Some(device);
        }
        Ok(())
    }

    /// The device state page at `gpa` (none for 0), checked to lie in
    /// the reserved RAM and to be no other device's.
    fn saved_state(&self, gpa: u64) -> Result<Option<&'static SavedDevice>, &'static str> {
        if gpa == 0 {
            return Ok(None);
        }
        let bytes = core::mem::size_of::<SavedDevice>() as u64;
        if !self.reserved.holds(gpa, bytes, 8) {
            return Err("state page outside the reserved RAM");
        }
        if self
            .slots
            .iter()
            .flatten()
            .any(|d| d.event.state_page == gpa)
        {
            return Err("state page already in use");
        }
        // SAFETY: the page lies in the reserved RAM (checked above), which
        // Dom0's identity map covers for its whole life; the core lent it
        // to this device alone (no other device uses it, checked above),
        // and `SavedDevice` is made of atomics, valid for any bytes.
        Ok(Some(unsafe { &*(gpa as *const SavedDevice) }))
    }

    /// Gives Domain-0's switch `event.net.switch` the uplink `event`
    /// announces (the switch is made if it is new).
    fn add_uplink(&mut self, event: &BackendEvent) -> Result<(), &'static str> {
        let port = event.queue_port;
        if !is_valid_port(port) || !matches!(self.route(port), Route::Free | Route::Retired(_)) {
            return Err("invalid port, or one in use");
        }
        let live = || self.slots.iter().flatten();
        let same =
            |d: &Backend| d.event.kind == kind::BLOCK && d.event.queue_layout == event.queue_layout;
        if live().any(same) || self.switches.uses_layout(event.queue_layout) {
            return Err("hardware queue already in use");
        }
        // SAFETY: no device and no other uplink uses this queue (checked
        // above); the uplink is its only user from now on.
        let at = unsafe { self.switches.add_uplink(event, self.reserved) }?;
        self.routes[port as usize] = Route::Uplink(at);
        Ok(())
    }

    fn remove(&mut self, device_id: u32) {
        if let Some(at) = self.switches.remove_uplink(device_id) {
            for route in self.routes.iter_mut() {
                if *route == Route::Uplink(at) {
                    *route = Route::Retired(DOM0);
                }
            }
            return;
        }
        let found = self
            .slots
            .iter()
            .position(|d| d.as_ref().is_some_and(|d| d.event.device_id == device_id));
        let Some((index, device)) = found.and_then(|i| Some((i, self.slots[i].take()?))) else {
            println!("service-vm: removal of unknown device {device_id}: ignored");
            return;
        };
        let switch_port = self.switches.leave(index);
        let domid = device.domid();
        let e = &device.event;
        for port in [e.notify_port, e.irq_port, e.queue_port] {
            if let Some(route @ (Route::Notify(_) | Route::Queue(_) | Route::Irq(_))) =
                self.routes.get_mut(port as usize)
            {
                *route = Route::Retired(domid);
            }
        }
        let others = self.slots.iter().flatten().any(|d| d.domid() == domid);
        if !others {
            for route in self.routes.iter_mut() {
                if matches!(route, Route::Ioreq { domid: d, .. } if *d == domid) {
                    *route = Route::Retired(domid);
                }
            }
            let routes = &self.routes;
            self.ioreq_ports
                .retain(|&p| matches!(routes[p as usize], Route::Ioreq { .. }));
        }
        device.log_removal(self.activity, switch_port);
    }

    /// Serves the request waiting in the ioreq slot of `port`, if any, and
    /// answers on the port. Returns true if there was one.
    pub fn serve_ioreq(&mut self, port: u32) -> bool {
        let Route::Ioreq { domid, slot } = self.route(port) else {
            return false;
        };
        let Some(request) = slot.take() else {
            return false;
        };
        let answer = request.access().and_then(|access| {
            self.slots
                .iter_mut()
                .flatten()
                .find(|d| d.domid() == domid && d.window_holds(&access))
                .and_then(|d| d.access(&access))
        });
        let data = match answer {
            Some(data) => data,
            None if request.is_read() => request.all_ones(),
            None => request.data(),
        };
        slot.answer(&request, data);
        if let Err(errno) = evtchn::send(port) {
            if !core::mem::replace(&mut self.send_failed, true) {
                println!(
                    "service-vm: ioreq answer on port {port} failed: {}",
                    errno.name()
                );
            }
        }
        true
    }

    /// Reaps the uplink of the switch at `at` (its queue port fired):
    /// frames from the bridge go to the guests. Returns the completions
    /// popped.
    pub fn reap_uplink(&mut self, at: usize) -> usize {
        self.switches.reap(at, &mut self.slots, now_ns())
    }

    /// The device at `index`, if it is still there.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut Backend> {
        self.slots.get_mut(index).and_then(Option::as_mut)
    }

    /// Serves what waits without an event having arrived (yet): ready
    /// ioreq slots, posted completions and, while polling, the requests
    /// guests queued without a notification; then the uplinks'
    /// completions and the frames guests transmitted (the switches'
    /// pump). Returns how many were served.
    pub fn sweep(&mut self) -> usize {
        let mut served = 0;
        for i in 0..self.ioreq_ports.len() {
            let port = self.ioreq_ports[i];
            if let Route::Ioreq { slot, .. } = self.routes[port as usize] {
                if slot.is_ready() && self.serve_ioreq(port) {
                    served += 1;
                }
            }
        }
        for device in self.slots.iter_mut().flatten() {
            if device.has_completions() {
                served += device.complete();
            }
            if self.polling {
                served += device.poll();
            }
        }
        served + self.switches.sweep(&mut self.slots, now_ns())
    }

    /// Waits (up to `ms` milliseconds) for the host I/O in flight on every
    /// hardware queue to complete, and returns its requests to the
    /// guests: what Domain-0 does before it shuts down or reboots, so the
    /// next Domain-0 has less to do again. Returns what is still in
    /// flight.
    pub fn finish_in_flight(&mut self, ms: u64) -> usize {
        let deadline = time::rdtsc() + time::ns_to_ticks(ms * 1_000_000);
        loop {
            let mut left = 0;
            for device in self.slots.iter_mut().flatten() {
                device.complete();
                device.flush();
                left += device.in_flight();
            }
            if left == 0 || time::rdtsc() > deadline {
                return left;
            }
            core::hint::spin_loop();
        }
    }

    /// True if a ready ioreq, a completion or frames to switch wait
    /// (checked before halting).
    pub fn has_work(&self) -> bool {
        let ioreq = self.ioreq_ports.iter().any(|&port| {
            matches!(self.routes[port as usize], Route::Ioreq { slot, .. } if slot.is_ready())
        });
        ioreq
            || self.slots.iter().flatten().any(Backend::has_completions)
            || self.switches.has_work(&self.slots, now_ns())
    }

    /// The TSC deadline a halt must end by (0: none): when a vif's
    /// `rate=` credit returns for the frames it holds.
    pub fn wake_at(&self) -> u64 {
        self.switches.deadline(&self.slots).map_or(0, |ns| {
            // A microsecond late rather than early: early finds no credit.
            time::ns_to_ticks(ns) + time::ns_to_ticks(1_000)
        })
    }

    /// End of a round: doorbells and console output.
    pub fn flush(&mut self) {
        for device in self.slots.iter_mut().flatten() {
            device.flush();
        }
        self.switches.flush();
    }

    /// Enters or leaves polling on every device ([`Backend::set_polling`])
    /// and uplink: no completion interrupts and no queue notifications
    /// while Dom0 polls; both back on before it halts. Returns the work
    /// leaving found (served already, frames switched included).
    pub fn set_polling(&mut self, polling: bool) -> usize {
        self.polling = polling;
        self.switches.set_interrupts(!polling);
        let work: usize = self
            .slots
            .iter_mut()
            .flatten()
            .map(|device| device.set_polling(polling))
            .sum();
        if polling {
            work
        } else {
            work + self.switches.sweep(&mut self.slots, now_ns())
        }
    }
}
