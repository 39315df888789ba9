//! [`Switches`]: Domain-0's learning L2 switches, one per bridge (numbered
//! by `hypd`), with a port per vif and one for the switch's [`Uplink`];
//! and the pump that moves frames between them.
//!
//! A switch comes into being with its uplink (the [`kind::UPLINK`] event
//! `hypd` sends before the first vif on a bridge). A vif whose switch has
//! no uplink is refused: its frames could reach no one but other guests,
//! which is not what its `bridge=` asked for, and `hypd` never does it.
//!
//! **The pump**, at the end of every round of the main loop, for each
//! vif (a different one first each round) with frames its driver
//! transmitted (after a notification, a poll, a register access:
//! whatever made the device take chains): each frame in order goes
//! through [`Switch::ingress`]. [`Forward::Later`] (the
//! vif's `rate=` credit is spent) stops the vif there until that time:
//! the frames stay outstanding, and Domain-0 does not halt past it
//! ([`Switches::deadline`]). A frame that may go to the bridge while
//! every uplink write buffer is in flight stops the vif too, until a
//! write completes. Otherwise the frame is delivered to each destination
//! (a drop is counted by the switch): another vif's receive buffer,
//! copied once from the sender's memory to the receiver's
//! ([`backends::GuestFrame`], through the foreign windows), or the
//! uplink (copied into a write buffer). Then the frames taken go back to
//! the sender's driver ([`Backend::finish_tx`]), in one call.
//!
//! **From the bridge**, each frame the uplink reads goes through
//! [`Switch::ingress`] on the uplink's port and into the vifs' receive
//! buffers, straight from the read buffer, before the read is posted
//! again.
//!
//! A vif whose device stopped (a hostile guest's, needing a reset) shows
//! no frames and takes none: it is dropped at, like a full one; the
//! others keep going. A removed vif's port goes, and with it every MAC
//! learned on it.
//!
//! [`kind::UPLINK`]: protocol::device::kind::UPLINK

use alloc::vec::Vec;

use backends::{
    DropReason, Forward, GuestFrame, PortConfig, PortId, PortStats, Switch, SwitchConfig,
    SwitchError,
};
use guest_runtime::println;
use protocol::device::BackendEvent;
use protocol::domain::DOM0;
use protocol::virtio::net::{is_group, FrameHeader};

use crate::backend::{log_port, Backend};
use crate::reserved::Reserved;
use crate::uplink::Uplink;

/// Who is behind a switch port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member {
    /// The network device at this index of the device table.
    Vif(usize),
    /// The switch's uplink.
    Uplink,
}

/// One switch and the parties on its ports.
#[derive(Debug)]
struct Dom0Switch {
    /// `hypd`'s number for it ([`protocol::device::NetParams::switch`]).
    number: u16,
    switch: Switch,
    /// By [`PortId::slot`].
    members: Vec<Option<Member>>,
    uplink: Option<(PortId, Uplink)>,
}

/// A vif's place on its switch.
#[derive(Clone, Copy, Debug)]
struct Vif {
    /// Index in [`Switches::switches`].
    switch: usize,
    port: PortId,
    /// Its credit returns then (ns): not pumped before.
    retry_at: Option<u64>,
    /// Stopped at a frame for the bridge, every uplink buffer in flight.
    stalled: bool,
}

/// Domain-0's switches and the vifs on them.
#[derive(Debug, Default)]
pub struct Switches {
    switches: Vec<Dom0Switch>,
    /// By device-table index.
    vifs: Vec<Option<Vif>>,
    /// The vif the next sweep pumps first: each in turn, so no vif always
    /// finds the uplink's free buffers taken.
    first: usize,
}

/// The devices other than a sender: the table's slots before and after
/// it.
struct Others<'a> {
    before: &'a mut [Option<Backend>],
    after: &'a mut [Option<Backend>],
}

impl Others<'_> {
    /// The device at table index `index`, unless it is the sender's.
    fn get_mut(&mut self, index: usize) -> Option<&mut Backend> {
        let n = self.before.len();
        if index < n {
            self.before[index].as_mut()
        } else {
            self.after.get_mut(index.checked_sub(n + 1)?)?.as_mut()
        }
    }
}

/// The device at `index` and, apart, all the others.
fn split(slots: &mut [Option<Backend>], index: usize) -> Option<(&mut Backend, Others<'_>)> {
    let (before, rest) = slots.split_at_mut_checked(index)?;
    let (sender, after) = rest.split_first_mut()?;
    Some((sender.as_mut()?, Others { before, after }))
}

/// True if a frame with `header` may go out of `uplink`: a group or
/// unknown destination, or one learned there.
fn may_reach(switch: &Switch, header: &FrameHeader, uplink: PortId, now: u64) -> bool {
    is_group(&header.dst) || switch.learned(&header.dst, now).is_none_or(|p| p == uplink)
}

/// Why a port could not be added, for messages.
fn port_refusal(e: SwitchError) -> &'static str {
    match e {
        SwitchError::TooManyPorts => "every port of the switch is in use",
        SwitchError::BadRate => "rate outside what a port takes",
        SwitchError::BadAddress => "ip with no address",
        SwitchError::NoSuchPort => "no such port",
    }
}

impl Dom0Switch {
    /// Adds a port for `member`.
    fn add(&mut self, member: Member, config: PortConfig) -> Result<PortId, SwitchError> {
        let id = self.switch.add_port(config)?;
        if self.members.len() <= id.slot() {
            self.members.resize(id.slot() + 1, None);
        }
        self.members[id.slot()] = Some(member);
        Ok(id)
    }

    /// Removes port `id`; returns its final counters.
    fn remove(&mut self, id: PortId) -> Option<PortStats> {
        let stats = self.switch.remove_port(id).ok()?;
        if let Some(member) = self.members.get_mut(id.slot()) {
            *member = None;
        }
        Some(stats)
    }

    /// Reaps the uplink: frames from the bridge go to the vifs. Returns
    /// the completions popped.
    fn reap(&mut self, slots: &mut [Option<Backend>], now: u64) -> usize {
        let Self {
            switch,
            members,
            uplink: Some((from, uplink)),
            ..
        } = self
        else {
            return 0;
        };
        let from = *from;
        uplink.reap(|bytes| {
            let Some(header) = FrameHeader::parse(bytes) else {
                switch.dropped(from, DropReason::Malformed);
                return;
            };
            let forward = switch
                .ingress(from, &header, bytes.len(), now)
                .unwrap_or(Forward::Drop(DropReason::Malformed));
            switch.deliver(from, forward, bytes.len(), |to| {
                match members.get(to.slot()).copied().flatten() {
                    Some(Member::Vif(j)) => slots
                        .get_mut(j)
                        .and_then(Option::as_mut)
                        .map_or(Err(DropReason::NoBuffer), |rx| rx.receive(bytes)),
                    _ => Err(DropReason::NoBuffer),
                }
            });
        })
    }
}

impl Switches {
    /// Makes switch `event.net.switch` (if it is new) and gives it the
    /// uplink `event` announces; returns the switch's index, the route of
    /// the uplink's queue port.
    ///
    /// # Safety
    ///
    /// No other user of the uplink's queue may exist while this one does.
    pub unsafe fn add_uplink(
        &mut self,
        event: &BackendEvent,
        reserved: Reserved,
    ) -> Result<usize, &'static str> {
        let number = event.net.switch;
        let at = match self.switches.iter().position(|s| s.number == number) {
            Some(at) if self.switches[at].uplink.is_some() => {
                return Err("the switch already has an uplink")
            }
            Some(at) => at,
            None => {
                self.switches.push(Dom0Switch {
                    number,
                    switch: Switch::new(SwitchConfig::default()),
                    members: Vec::new(),
                    uplink: None,
                });
                self.switches.len() - 1
            }
        };
        // SAFETY: the caller's guarantee, passed on.
        let uplink = unsafe { Uplink::new(event, reserved) }?;
        let sw = &mut self.switches[at];
        let port = sw
            .add(Member::Uplink, PortConfig::uplink())
            .map_err(port_refusal)?;
        let (reads, writes) = uplink.buffers();
        println!(
            "service-vm: switch {number} (bridge {}): uplink up (device {}), {reads} reads posted, {writes} write buffers",
            uplink.bridge(),
            event.device_id
        );
        sw.uplink = Some((port, uplink));
        Ok(at)
    }

    /// Takes the uplink announced as `device_id` off its switch (Domain-0
    /// is going) and logs what it did; the switch's vifs keep switching
    /// among themselves. Returns the switch's index, `None` if no uplink
    /// has that id.
    pub fn remove_uplink(&mut self, device_id: u32) -> Option<usize> {
        let at = self.switches.iter().position(|s| {
            s.uplink
                .as_ref()
                .is_some_and(|(_, u)| u.device_id() == device_id)
        })?;
        let sw = &mut self.switches[at];
        let (port, uplink) = sw.uplink.take()?;
        let stats = sw.remove(port);
        let (u, ring) = uplink.stats();
        println!(
            "service-vm: removed the uplink of switch {} (bridge {}): {} frames read ({} bytes), {} written ({} bytes), {} read errors, {} write errors, {} stray, {} SQEs, {} doorbells",
            sw.number,
            uplink.bridge(),
            u.rx_frames,
            u.rx_bytes,
            u.tx_frames,
            u.tx_bytes,
            u.rx_errors,
            u.tx_errors,
            u.stray,
            ring.sqes,
            ring.doorbells
        );
        if let Some(stats) = stats {
            log_port("the uplink", DOM0, &stats);
        }
        Some(at)
    }

    /// True if an uplink uses the hardware queue whose layout is at
    /// `layout`.
    pub fn uses_layout(&self, layout: u64) -> bool {
        self.switches
            .iter()
            .any(|s| s.uplink.as_ref().is_some_and(|(_, u)| u.layout() == layout))
    }

    /// Puts the network device at table index `index` on the switch
    /// `event` names, as a port policing what `event.net` says.
    pub fn join(&mut self, index: usize, event: &BackendEvent) -> Result<(), &'static str> {
        let at = self
            .switches
            .iter()
            .position(|s| s.number == event.net.switch && s.uplink.is_some())
            .ok_or("no uplink for its switch")?;
        let port = self.switches[at]
            .add(Member::Vif(index), PortConfig::vif(&event.net))
            .map_err(port_refusal)?;
        if self.vifs.len() <= index {
            self.vifs.resize(index + 1, None);
        }
        self.vifs[index] = Some(Vif {
            switch: at,
            port,
            retry_at: None,
            stalled: false,
        });
        Ok(())
    }

    /// Takes the network device at table index `index` off its switch
    /// (forgetting the MACs learned on its port); returns the port's final
    /// counters.
    pub fn leave(&mut self, index: usize) -> Option<PortStats> {
        let vif = self.vifs.get_mut(index)?.take()?;
        self.switches.get_mut(vif.switch)?.remove(vif.port)
    }

    /// Reaps the uplink of switch `at` (its queue port fired). Returns the
    /// completions popped.
    pub fn reap(&mut self, at: usize, slots: &mut [Option<Backend>], now: u64) -> usize {
        self.switches
            .get_mut(at)
            .map_or(0, |sw| sw.reap(slots, now))
    }

    /// Reaps every uplink with completions waiting, then pumps every vif.
    /// Returns the completions popped and frames switched.
    pub fn sweep(&mut self, slots: &mut [Option<Backend>], now: u64) -> usize {
        let mut work = 0;
        for sw in &mut self.switches {
            if sw.uplink.as_ref().is_some_and(|(_, u)| u.has_completions()) {
                work += sw.reap(slots, now);
            }
        }
        let n = self.vifs.len();
        for k in 0..n {
            work += self.pump(slots, (self.first + k) % n, now);
        }
        self.first = (self.first + 1) % n.max(1);
        work
    }

    /// Switches the frames the vif at table index `index` transmitted (see
    /// the module documentation). Returns how many it took.
    fn pump(&mut self, slots: &mut [Option<Backend>], index: usize, now: u64) -> usize {
        let Some(Some(vif)) = self.vifs.get_mut(index) else {
            return 0;
        };
        if vif.retry_at.is_some_and(|at| now < at) {
            return 0;
        }
        let Some((sender, mut others)) = split(slots, index) else {
            return 0;
        };
        vif.retry_at = None;
        vif.stalled = false;
        if sender.tx_frames().len() == 0 {
            return 0;
        }
        let Some(sw) = self.switches.get_mut(vif.switch) else {
            return 0;
        };
        let Dom0Switch {
            switch,
            members,
            uplink,
            ..
        } = sw;
        let from = vif.port;
        let mut taken = 0;
        for frame in sender.tx_frames() {
            let (header, len) = (frame.header(), frame.len());
            if let Some((to, link)) = uplink.as_ref() {
                if !link.has_tx_buffer() && may_reach(switch, header, *to, now) {
                    vif.stalled = true;
                    break;
                }
            }
            let forward = match switch.ingress(from, header, len, now) {
                Ok(Forward::Later(at)) => {
                    vif.retry_at = Some(at);
                    break;
                }
                Ok(forward) => forward,
                // The port is gone (it cannot be while the vif is here):
                // the frame goes nowhere.
                Err(_) => Forward::Drop(DropReason::Malformed),
            };
            taken += 1;
            let platform = sender.platform();
            let source = GuestFrame { platform, frame };
            switch.deliver(from, forward, len, |to| {
                match members.get(to.slot()).copied().flatten() {
                    Some(Member::Vif(j)) => others
                        .get_mut(j)
                        .map_or(Err(DropReason::NoBuffer), |rx| rx.receive(&source)),
                    Some(Member::Uplink) => match uplink {
                        Some((_, link)) => link.send(len, |buf| frame.read(platform, 0, buf)),
                        None => Err(DropReason::NoBuffer),
                    },
                    None => Err(DropReason::NoBuffer),
                }
            });
        }
        if taken > 0 {
            sender.finish_tx(taken);
        }
        taken
    }

    /// True if a pump or a reap has work now: an uplink's completions, or
    /// a vif's frames that neither wait for credit nor for an uplink
    /// buffer.
    pub fn has_work(&self, slots: &[Option<Backend>], now: u64) -> bool {
        let completions = self
            .switches
            .iter()
            .any(|s| s.uplink.as_ref().is_some_and(|(_, u)| u.has_completions()));
        completions
            || self
                .waiting(slots)
                .any(|vif| !vif.stalled && vif.retry_at.is_none_or(|at| at <= now))
    }

    /// The earliest time (ns) a vif's credit returns for frames it holds:
    /// Domain-0 must not halt past it.
    pub fn deadline(&self, slots: &[Option<Backend>]) -> Option<u64> {
        self.waiting(slots).filter_map(|vif| vif.retry_at).min()
    }

    /// The vifs with frames waiting to be switched.
    fn waiting<'a>(&'a self, slots: &'a [Option<Backend>]) -> impl Iterator<Item = &'a Vif> + 'a {
        self.vifs.iter().zip(slots).filter_map(|(vif, device)| {
            let vif = vif.as_ref()?;
            (device.as_ref()?.tx_frames().len() > 0).then_some(vif)
        })
    }

    /// End of a round: the uplinks' doorbells.
    pub fn flush(&mut self) {
        for (_, uplink) in self.switches.iter_mut().filter_map(|s| s.uplink.as_mut()) {
            uplink.flush();
        }
    }

    /// Turns the uplinks' completion interrupts on or off (off while
    /// Domain-0 polls: the sweep reaps them).
    pub fn set_interrupts(&mut self, enabled: bool) {
        for (_, uplink) in self.switches.iter_mut().filter_map(|s| s.uplink.as_mut()) {
            uplink.set_interrupts(enabled);
        }
    }
}
