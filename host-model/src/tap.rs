//! A vif served by the host model: its tap, read and written through the
//! device's io_uring, QEMU/KVM style.
//!
//! The tap is fixed file 0 of the device's ring, made non-blocking. A
//! multishot poll on the ring says when it has frames; the worker then
//! reads them itself, one `read` each, in order, into [`RX_SLOTS`] buffers
//! of this process, until the tap is empty or every buffer holds a frame.
//! (Reads posted on the ring side by side would come back out of order:
//! each frame wakes all of them, the kernel hands the losers of each race
//! to io-wq threads blocked in the tap's read, and those complete in
//! whatever order they are scheduled. A smoltcp sender that sees the
//! zero-window ACK after the window update sent right behind it waits a
//! second for its zero-window probe.)
//!
//! A frame read waits in its buffer until the guest has a receive buffer
//! (the tap's queue in the kernel holds the rest, as QEMU stops reading
//! when the guest has no room; meanwhile the guest is asked to kick its
//! receive queue when it posts a buffer), is copied into the guest, and
//! the buffer is free for the next read. A frame the guest sends is
//! copied out of its memory into one of [`TX_SLOTS`] buffers and written
//! to the tap through the ring; its chain goes back to the guest at once.
//!
//! Both directions cross a two-port [`Switch`] (the vif and the tap), the
//! same code as Domain-0's: so the vif's `mac`, `ip=` and `rate=` are
//! policed and counted the same way in both placements. A frame held back
//! by `rate=` leaves its chain with the guest's driver until a timeout on
//! the ring says the credit is back.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::time::Instant;

use backends::switch::{DropReason, Forward, PortConfig, PortId, PortStats, Switch, SwitchConfig};
use backends::{DeviceModel, Received};
use io_uring::{cqueue, opcode, squeue, types};
use protocol::device::NetParams;
use protocol::virtio::net::{FrameHeader, MAX_FRAME};

use crate::error::{host, HostModelError};
use crate::platform::HostPlatform;
use crate::uring::{CANCEL_TAG, POLL_TAG, TIMER_TAG, TX_TAG};

/// Buffers frames are read from the tap into.
pub const RX_SLOTS: usize = 64;
/// Writes to the tap in flight at most.
pub const TX_SLOTS: usize = 64;

/// Failed reads (or polls) in a row after which the tap is not read or
/// polled again: a tap that fails at once must not keep the worker
/// spinning.
const MAX_FAILED_READS: u32 = 1024;

/// Counters of the tap's side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapStats {
    /// Frames read from the tap.
    pub reads: u64,
    /// Frames written to the tap.
    pub writes: u64,
    /// Reads or writes the kernel failed.
    pub errors: u64,
    /// Times a frame read had to wait for a guest receive buffer.
    pub held: u64,
    /// Times every tap write buffer was busy.
    pub tx_full: u64,
}

/// One vif's tap, its buffers and its two-port switch.
pub struct TapIo {
    switch: Switch,
    vif: PortId,
    uplink: PortId,
    /// The tap (non-blocking), read with `read`.
    fd: RawFd,
    rx: Box<[[u8; MAX_FRAME]]>,
    /// Buffers holding a frame: (buffer, length), oldest first.
    rx_ready: VecDeque<(usize, usize)>,
    /// Buffers free for the next read.
    rx_free: Vec<usize>,
    /// The tap may have frames: the last read did not find it empty, or
    /// the poll said so since.
    readable: bool,
    /// The multishot poll is posted (and has not ended).
    poll_armed: bool,
    /// Reads in a row that failed.
    failed_reads: u32,
    tx: Box<[[u8; MAX_FRAME]]>,
    tx_free: Vec<usize>,
    /// The rate timer's expiry, boxed so the kernel may read it later.
    timespec: Box<types::Timespec>,
    timer_out: bool,
    stopping: bool,
    start: Instant,
    stats: TapStats,
}

impl std::fmt::Debug for TapIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TapIo({} frames read, {} written)",
            self.stats.reads, self.stats.writes
        )
    }
}

impl TapIo {
    /// A tap's side for the vif `params` describes over `tap`, which is
    /// also fixed file 0 of the device's ring and stays open as long as
    /// this lives; the tap is made non-blocking, and `queue` takes the
    /// poll of it.
    pub fn new(
        params: &NetParams,
        tap: RawFd,
        queue: impl FnOnce(squeue::Entry),
    ) -> Result<Self, HostModelError> {
        set_nonblocking(tap).map_err(host("making the tap non-blocking"))?;
        let mut switch = Switch::new(SwitchConfig::default());
        // Two ports, neither with a bad rate (checked by the toolstack):
        // these cannot fail.
        let vif = switch
            .add_port(PortConfig::vif(params))
            .unwrap_or_else(|_| switch.add_port(PortConfig::uplink()).expect("a first port"));
        let uplink = switch
            .add_port(PortConfig::uplink())
            .expect("a second port");
        let mut tap = Self {
            switch,
            vif,
            uplink,
            fd: tap,
            rx: vec![[0u8; MAX_FRAME]; RX_SLOTS].into_boxed_slice(),
            rx_ready: VecDeque::with_capacity(RX_SLOTS),
            rx_free: (0..RX_SLOTS).rev().collect(),
            readable: true,
            poll_armed: false,
            failed_reads: 0,
            tx: vec![[0u8; MAX_FRAME]; TX_SLOTS].into_boxed_slice(),
            tx_free: (0..TX_SLOTS).rev().collect(),
            timespec: Box::new(types::Timespec::new()),
            timer_out: false,
            stopping: false,
            start: Instant::now(),
            stats: TapStats::default(),
        };
        queue(tap.poll());
        Ok(tap)
    }

    /// The multishot poll of the tap for frames.
    fn poll(&mut self) -> squeue::Entry {
        self.poll_armed = true;
        opcode::PollAdd::new(types::Fixed(0), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(POLL_TAG)
    }

    /// Counters of the tap and of the vif's switch port.
    pub fn stats(&self) -> (TapStats, PortStats) {
        let port = self.switch.port_stats(self.vif).unwrap_or_default();
        (self.stats, port)
    }

    /// The tap's poll completed with `result` (the events, or a negative
    /// errno) and `flags` (whether it goes on). An ended poll is posted
    /// again by the next [`TapIo::pump`].
    pub fn poll_done(&mut self, result: i32, flags: u32) {
        if !cqueue::more(flags) {
            self.poll_armed = false;
        }
        if result >= 0 {
            self.readable = true;
        } else if result != -libc::ECANCELED {
            // Read anyway: a frame must not wait on a poll that failed.
            self.stats.errors += 1;
            self.failed_reads += 1;
            self.readable = true;
        }
    }

    /// Reads frames from the tap into free buffers, in the tap's order,
    /// until it is empty or no buffer is free. True if one came.
    fn read_tap(&mut self) -> bool {
        let mut got = false;
        while self.readable && self.failed_reads < MAX_FAILED_READS {
            let Some(&slot) = self.rx_free.last() else {
                break;
            };
            let buf = &mut self.rx[slot];
            // SAFETY: `buf` is MAX_FRAME writable bytes of this process;
            // the tap (open while this lives) writes at most that many.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), MAX_FRAME) };
            match usize::try_from(n) {
                Ok(len) if len > 0 => {
                    self.rx_free.pop();
                    self.rx_ready.push_back((slot, len));
                    self.stats.reads += 1;
                    self.failed_reads = 0;
                    got = true;
                }
                _ => {
                    let errno = std::io::Error::last_os_error().raw_os_error();
                    match errno {
                        Some(libc::EINTR) if n < 0 => continue,
                        Some(libc::EAGAIN) if n < 0 => {}
                        // Until the poll says otherwise.
                        _ => {
                            self.stats.errors += 1;
                            self.failed_reads += 1;
                        }
                    }
                    self.readable = false;
                }
            }
        }
        got
    }

    /// A tap write finished with `result`.
    pub fn write_done(&mut self, slot: usize, result: i32) {
        if result < 0 {
            self.stats.errors += 1;
        } else {
            self.stats.writes += 1;
        }
        if slot < TX_SLOTS {
            self.tx_free.push(slot);
        }
    }

    /// The rate timer fired.
    pub fn timer_done(&mut self) {
        self.timer_out = false;
    }

    /// Nanoseconds since the tap was set up (the switch's clock).
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Moves frames both ways as far as buffers allow; true if any moved.
    pub fn pump(&mut self, model: &mut DeviceModel, p: &mut HostPlatform) -> bool {
        let now = self.now_ns();
        let mut moved = self.deliver_to_guest(model, p, now);
        // Frames read now are delivered now, if the guest has room.
        if self.read_tap() {
            moved |= self.deliver_to_guest(model, p, now);
        }
        if !self.poll_armed && !self.stopping && self.failed_reads < MAX_FAILED_READS {
            let poll = self.poll();
            p.io.queue(poll);
        }
        self.send_to_tap(model, p, now) || moved
    }

    /// Frames read from the tap into the guest's receive buffers.
    fn deliver_to_guest(
        &mut self,
        model: &mut DeviceModel,
        p: &mut HostPlatform,
        now: u64,
    ) -> bool {
        let mut moved = false;
        while let Some(&(slot, len)) = self.rx_ready.front() {
            let mut room = model.with_net(p, |net, p, queues| net.has_rx_buffer(p, queues));
            if room == Some(false) {
                // Wait for the guest's next receive buffer: ask it to kick
                // (the device asks for no receive kicks otherwise), unless
                // one came meanwhile.
                room = model.with_net(p, |net, p, queues| net.wait_for_rx_buffer(p, queues));
                if room == Some(false) {
                    self.stats.held += 1;
                    break;
                }
            }
            self.rx_ready.pop_front();
            moved = true;
            let frame = &self.rx[slot][..len];
            let forward = match FrameHeader::parse(frame) {
                // A device that is not running drops what arrives.
                Some(header) if room.is_some() => self
                    .switch
                    .ingress(self.uplink, &header, len, now)
                    .unwrap_or(Forward::Drop(DropReason::Malformed)),
                _ => Forward::Drop(DropReason::Malformed),
            };
            let vif = self.vif;
            self.switch.deliver(self.uplink, forward, len, |to| {
                if to != vif {
                    return Err(DropReason::NoBuffer);
                }
                match model.with_net(p, |net, p, queues| net.receive(p, queues, frame)) {
                    Some(Received::Delivered) => Ok(()),
                    _ => Err(DropReason::NoBuffer),
                }
            });
            self.rx_free.push(slot);
        }
        moved
    }

    /// Frames the guest sent, out to the tap.
    fn send_to_tap(&mut self, model: &mut DeviceModel, p: &mut HostPlatform, now: u64) -> bool {
        let mut taken = 0;
        let mut retry_at = None;
        for frame in model.tx_frames() {
            let Some(&slot) = self.tx_free.last() else {
                self.stats.tx_full += 1;
                break;
            };
            let len = frame.len();
            let forward = self
                .switch
                .ingress(self.vif, frame.header(), len, now)
                .unwrap_or(Forward::Drop(DropReason::Malformed));
            if let Forward::Later(at) = forward {
                retry_at = Some(at);
                break;
            }
            taken += 1;
            if frame.read(p, 0, &mut self.tx[slot][..len]).is_err() {
                self.switch.dropped(self.vif, DropReason::Malformed);
                continue;
            }
            let (uplink, buf) = (self.uplink, self.tx[slot].as_ptr());
            let mut write = None;
            self.switch.deliver(self.vif, forward, len, |to| {
                if to != uplink {
                    return Err(DropReason::NoBuffer);
                }
                write = Some(
                    opcode::Write::new(types::Fixed(0), buf, len as u32)
                        .offset(u64::MAX)
                        .build()
                        .user_data(TX_TAG | slot as u64),
                );
                Ok(())
            });
            if let Some(write) = write {
                self.tx_free.pop();
                p.io.queue(write);
            }
        }
        if taken > 0 {
            model.with_net(p, |net, p, queues| net.finish_tx(p, queues, taken));
        }
        if let Some(at) = retry_at.filter(|_| !self.timer_out) {
            let wait = at.saturating_sub(self.now_ns()).max(1_000);
            *self.timespec = types::Timespec::new()
                .sec(wait / 1_000_000_000)
                .nsec((wait % 1_000_000_000) as u32);
            let timer = opcode::Timeout::new(&*self.timespec as *const types::Timespec)
                .build()
                .user_data(TIMER_TAG);
            self.timer_out = true;
            p.io.queue(timer);
        }
        taken > 0
    }

    /// At stop: cancels the poll and the timer. True once nothing the
    /// kernel could still write into is out.
    pub fn wind_down(&mut self, mut queue: impl FnMut(squeue::Entry)) -> bool {
        if !self.stopping {
            self.stopping = true;
            if self.poll_armed {
                queue(
                    opcode::PollRemove::new(POLL_TAG)
                        .build()
                        .user_data(CANCEL_TAG),
                );
            }
            if self.timer_out {
                queue(
                    opcode::TimeoutRemove::new(TIMER_TAG)
                        .build()
                        .user_data(CANCEL_TAG),
                );
            }
        }
        !self.poll_armed && !self.timer_out && self.tx_free.len() == TX_SLOTS
    }
}

/// Sets `O_NONBLOCK` on `fd`.
fn set_nonblocking(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller keeps open; no memory is
    // passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
