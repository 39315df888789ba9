//! The virtio-blk driver: one request queue, many requests in flight.
//!
//! Each request takes a *slot*: 128 bytes of driver memory holding its
//! header (16 bytes), its status byte and, with `VIRTIO_F_INDIRECT_DESC`,
//! its indirect table. With indirect descriptors a request is one ring
//! descriptor; without, a chain of header, data and status descriptors.
//!
//! The API is asynchronous: [`Blk::submit`] adds requests (nothing is
//! published yet), [`Blk::kick`] publishes the batch with at most one
//! doorbell, [`Blk::poll`] harvests completions without waiting and
//! [`Blk::wait`] waits for at least one (adaptive spin, then the device's
//! interrupt). [`Blk::run`] does one request synchronously.
//!
//! The driver does not police sector ranges or the read-only flag: the
//! workloads that check the device's refusals send such requests on
//! purpose, and the device must answer them with an error status.

use alloc::vec;
use alloc::vec::Vec;

use guest_runtime::time;
use protocol::device::GuestDevice;
use protocol::trace::Step;
use protocol::virtio::blk::{
    self as wire, RequestHeader, HEADER_SIZE, ID_BYTES, T_FLUSH, T_GET_ID, T_IN, T_OUT,
};
use protocol::virtio::features::{VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC};
use protocol::virtio::mmio::DEVICE_ID_BLOCK;
use protocol::virtio::{feature, queue::Descriptor};

use super::mmio::{Transport, TransportError};
use super::queue::{write_indirect, QueueError, Seg, VirtQueue};
use super::wait::AdaptivePoll;
use crate::dma::DmaBuf;
use crate::trace;

mod types;

/// How long one wait for a completion may take before the device is
/// declared dead.
pub const TIMEOUT_NS: u64 = 5_000_000_000;

pub use types::{BlkError, BlkInfo, Completion, Op, Request};

/// Largest queue this driver asks for.
const QUEUE_SIZE: u16 = 256;
/// Bytes of driver memory per request.
const SLOT_BYTES: usize = 128;
/// Offset of the status byte in a slot.
const SLOT_STATUS: usize = 16;
/// Offset of the indirect table in a slot (16-byte aligned, 4 entries).
const SLOT_TABLE: usize = 64;
/// Status byte value before the device answers.
const STATUS_UNSET: u8 = 0xFF;

#[derive(Clone, Copy)]
struct Pending {
    slot: u16,
    token: u64,
    start: u64,
    /// The available-ring index it was published at (its trace id).
    avail: u16,
}

/// A virtio-blk device in use.
pub struct Blk {
    transport: Transport,
    queue: VirtQueue,
    info: BlkInfo,
    slots: DmaBuf,
    free_slots: Vec<u16>,
    pending: Vec<Option<Pending>>,
    poll: AdaptivePoll,
    /// How the completions the next [`Blk::poll`] harvests were found, as
    /// trace records say it: 0 by spinning, 1 after sleeping.
    found_by: u32,
    stopped: bool,
    name: [u8; protocol::device::VDEV_LEN],
}

impl Blk {
    /// Probes and initialises the block device `dev`; `spin_max_ns` bounds
    /// the adaptive spin of waits.
    pub fn open(dev: &GuestDevice, spin_max_ns: u64) -> Result<Self, BlkError> {
        let mut transport = Transport::probe(dev, DEVICE_ID_BLOCK)?;
        let size = {
            transport.negotiate(wanted_features(), 0)?;
            transport.queue_size(0, QUEUE_SIZE)?
        };
        let queue = VirtQueue::new(0, size, transport.notify_addr())?;
        let mut blk = Self {
            transport,
            queue,
            info: BlkInfo::default(),
            slots: DmaBuf::new(usize::from(size) * SLOT_BYTES)?,
            free_slots: Vec::new(),
            pending: vec![None; usize::from(size)],
            poll: AdaptivePoll::new(spin_max_ns),
            found_by: 0,
            stopped: true,
            name: dev.vdev,
        };
        blk.start(false)?;
        Ok(blk)
    }

    /// Resets the device and brings it up again with fresh rings (after
    /// the device asked for a reset, or after a hostile test). Memory the
    /// driver owns is kept, so a late device write cannot land in memory
    /// the heap has given to someone else.
    pub fn reinit(&mut self) -> Result<(), BlkError> {
        self.start(true)
    }

    fn start(&mut self, negotiate: bool) -> Result<(), BlkError> {
        self.stopped = true;
        let t = &mut self.transport;
        if negotiate {
            t.negotiate(wanted_features(), 0)?;
        }
        let size = self.queue.size();
        if t.queue_size(0, size)? != size {
            return Err(TransportError::NoQueue(0).into());
        }
        let event_idx = t.has(VIRTIO_F_EVENT_IDX);
        self.queue.reset(event_idx);
        t.setup_queue(0, size, self.queue.addrs());
        let capacity = t.config_u64(wire::CONFIG_CAPACITY_OFFSET as u64);
        let seg_max = if t.has(wire::VIRTIO_BLK_F_SEG_MAX) {
            t.config_u32(wire::CONFIG_SEG_MAX_OFFSET as u64)
        } else {
            0
        };
        t.driver_ok()?;
        self.info = BlkInfo {
            capacity,
            read_only: t.has(wire::VIRTIO_BLK_F_RO),
            flush: t.has(wire::VIRTIO_BLK_F_FLUSH),
            seg_max,
            indirect: t.has(VIRTIO_F_INDIRECT_DESC),
            event_idx,
            queue_size: size,
        };
        self.slots.zero();
        self.free_slots = (0..size).rev().collect();
        self.pending.iter_mut().for_each(|p| *p = None);
        self.stopped = false;
        Ok(())
    }

    /// The device's name (`xvda`).
    pub fn name(&self) -> &str {
        let len = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.name.len());
        core::str::from_utf8(&self.name[..len]).unwrap_or("blk")
    }

    /// What the device offers.
    pub fn info(&self) -> BlkInfo {
        self.info
    }

    /// The transport (for status checks and resets).
    pub fn transport(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// The request queue (the hostile workload writes it raw).
    pub fn queue(&mut self) -> &mut VirtQueue {
        &mut self.queue
    }

    /// Counts device interrupts noted since the last wait (see
    /// [`AdaptivePoll::collect`]).
    pub fn collect_interrupts(&mut self) {
        let port = self.transport.irq_port();
        self.poll.collect(port);
    }

    /// Counters of the waits.
    pub fn poll_stats(&self) -> AdaptivePoll {
        self.poll
    }

    /// Doorbell writes so far.
    pub fn notifies(&self) -> u64 {
        self.queue.notifies()
    }

    /// Requests submitted and not yet harvested.
    pub fn in_flight(&self) -> usize {
        usize::from(self.queue.in_flight())
    }

    /// Requests that can still be submitted before reaping.
    pub fn room(&self) -> usize {
        let descs = if self.info.indirect { 1 } else { 3 };
        self.free_slots
            .len()
            .min(usize::from(self.queue.num_free()) / descs)
    }

    /// Adds a request to the queue (published by the next [`Blk::kick`]
    /// or [`Blk::wait`]).
    ///
    /// # Safety
    /// For reads and get-id, `addr..addr + len` must be RAM this kernel
    /// owns; for every request it must stay allocated, and not be accessed
    /// through Rust references, until the request's completion is
    /// harvested or the device is reset: the device reads or writes it
    /// meanwhile.
    pub unsafe fn submit(&mut self, req: &Request) -> Result<(), BlkError> {
        if self.stopped {
            return Err(BlkError::Stopped);
        }
        let slot = self.free_slots.pop().ok_or(BlkError::Busy)?;
        let base = usize::from(slot) * SLOT_BYTES;
        let (kind, sector, data) = match req.op {
            Op::Read => (T_IN, req.sector, Some(Seg::write(req.addr, req.len))),
            Op::Write => (T_OUT, req.sector, Some(Seg::read(req.addr, req.len))),
            Op::Flush => (T_FLUSH, 0, None),
            Op::GetId => (T_GET_ID, 0, Some(Seg::write(req.addr, req.len))),
        };
        let header = RequestHeader {
            kind,
            reserved: 0,
            sector,
        }
        .to_bytes();
        // SAFETY: the slot is ours (taken from the free list) and lies in
        // `self.slots`; the device does not look at it until it is
        // published.
        unsafe {
            core::ptr::copy_nonoverlapping(header.as_ptr(), self.slots.ptr(base), HEADER_SIZE);
            self.slots
                .ptr(base + SLOT_STATUS)
                .write_volatile(STATUS_UNSET);
        }
        let head_seg = Seg::read(self.slots.addr(base), HEADER_SIZE as u32);
        let status_seg = Seg::write(self.slots.addr(base + SLOT_STATUS), 1);
        let mut segs = [head_seg; 3];
        let n = match data {
            Some(d) if d.len > 0 => {
                segs[1] = d;
                segs[2] = status_seg;
                3
            }
            _ => {
                segs[1] = status_seg;
                2
            }
        };
        let avail = self.queue.next_avail();
        let added = if self.info.indirect {
            let table = self.slots.ptr(base + SLOT_TABLE).cast::<Descriptor>();
            // SAFETY: the slot's table has room for 4 descriptors, is
            // 16-byte aligned and unused while the slot is free.
            unsafe { write_indirect(table, &segs[..n]) };
            self.queue
                .add(&[Seg::indirect(self.slots.addr(base + SLOT_TABLE), n as u16)])
        } else {
            self.queue.add(&segs[..n])
        };
        match added {
            Ok(head) => {
                let start = time::rdtsc();
                let device = self.queue.trace_device();
                trace::emit_at(start, Step::Built, u32::from(avail), [device, 0]);
                self.pending[usize::from(head)] = Some(Pending {
                    slot,
                    token: req.token,
                    start,
                    avail,
                });
                Ok(())
            }
            Err(_) => {
                self.free_slots.push(slot);
                Err(BlkError::Busy)
            }
        }
    }

    /// Publishes the requests submitted since the last kick; rings the
    /// doorbell if the device asked for it.
    pub fn kick(&mut self) {
        self.queue.kick();
    }

    /// Harvests finished requests into `out` without waiting; returns how
    /// many.
    pub fn poll(&mut self, out: &mut Vec<Completion>) -> Result<usize, BlkError> {
        if self.stopped {
            return Err(BlkError::Stopped);
        }
        let mut n = 0;
        let device = self.queue.trace_device();
        let found_by = core::mem::take(&mut self.found_by);
        loop {
            let elem = match self.queue.pop_used() {
                Ok(Some(elem)) => elem,
                Ok(None) => return Ok(n),
                Err(e) => {
                    self.stopped = true;
                    return Err(BlkError::Queue(e));
                }
            };
            let now = time::rdtsc();
            // `pop_used` checked the id names a chain in flight.
            let Some(p) = self
                .pending
                .get_mut(elem.id as usize)
                .and_then(Option::take)
            else {
                self.stopped = true;
                return Err(BlkError::Queue(QueueError::BadUsedId(elem.id)));
            };
            let at = usize::from(p.slot) * SLOT_BYTES + SLOT_STATUS;
            // SAFETY: the slot's status byte, which the device wrote
            // before publishing the used entry (ordered by `pop_used`'s
            // Acquire load).
            let status = unsafe { self.slots.ptr(at).read_volatile() };
            trace::emit_at(now, Step::Seen, u32::from(p.avail), [device, found_by]);
            self.free_slots.push(p.slot);
            out.push(Completion {
                token: p.token,
                status,
                used_len: elem.len,
                ticks: now.wrapping_sub(p.start),
            });
            n += 1;
        }
    }

    /// Publishes pending submissions, then waits up to `timeout_ns` for at
    /// least one completion and harvests every finished request.
    pub fn wait(&mut self, out: &mut Vec<Completion>, timeout_ns: u64) -> Result<usize, BlkError> {
        self.kick();
        let n = self.poll(out)?;
        if n > 0 || self.queue.in_flight() == 0 {
            return Ok(n);
        }
        let sleeps = self.poll.sleeps;
        if let Err(e) = self
            .poll
            .wait(&mut self.queue, &mut self.transport, timeout_ns)
        {
            self.stopped = true;
            return Err(e.into());
        }
        self.found_by = u32::from(self.poll.sleeps != sleeps);
        self.poll(out)
    }

    /// Runs one request to completion (nothing else may be in flight).
    ///
    /// # Safety
    /// As for [`Blk::submit`]; the buffer is released when this returns
    /// `Ok`. After an `Err` the device may still access it until the device
    /// is reset.
    pub unsafe fn run(&mut self, req: &Request, timeout_ns: u64) -> Result<Completion, BlkError> {
        if self.in_flight() != 0 {
            return Err(BlkError::Busy);
        }
        // SAFETY: per this function's contract.
        unsafe { self.submit(req)? };
        let mut out = Vec::with_capacity(1);
        let deadline = time::rdtsc() + time::ns_to_ticks(timeout_ns);
        while out.is_empty() {
            let left = time::ticks_to_ns(deadline.saturating_sub(time::rdtsc()));
            if left == 0 {
                self.stopped = true;
                return Err(BlkError::Timeout);
            }
            self.wait(&mut out, left)?;
        }
        Ok(out[0])
    }

    /// Reads `len` bytes at `sector` into `buf` from `offset`, waiting.
    /// Returns the completion (check its status).
    pub fn read(
        &mut self,
        sector: u64,
        buf: &mut DmaBuf,
        offset: usize,
        len: u32,
        timeout_ns: u64,
    ) -> Result<Completion, BlkError> {
        self.sync(Op::Read, sector, buf, offset, len, timeout_ns)
    }

    /// Writes `len` bytes of `buf` from `offset` to `sector`, waiting.
    pub fn write(
        &mut self,
        sector: u64,
        buf: &mut DmaBuf,
        offset: usize,
        len: u32,
        timeout_ns: u64,
    ) -> Result<Completion, BlkError> {
        self.sync(Op::Write, sector, buf, offset, len, timeout_ns)
    }

    /// Flushes the device's write cache, waiting.
    pub fn flush(&mut self, timeout_ns: u64) -> Result<Completion, BlkError> {
        let req = Request {
            op: Op::Flush,
            sector: 0,
            addr: 0,
            len: 0,
            token: 0,
        };
        // SAFETY: a flush carries no data buffer.
        unsafe { self.run(&req, timeout_ns) }
    }

    /// Reads the device id string (up to 20 bytes, NUL-padded).
    pub fn get_id(&mut self, timeout_ns: u64) -> Result<([u8; ID_BYTES], Completion), BlkError> {
        let mut buf = DmaBuf::new(ID_BYTES)?;
        let done = self.sync(Op::GetId, 0, &mut buf, 0, ID_BYTES as u32, timeout_ns);
        let mut id = [0u8; ID_BYTES];
        match done {
            Ok(c) => {
                id.copy_from_slice(&buf.bytes()[..ID_BYTES]);
                Ok((id, c))
            }
            Err(e) => {
                // The device may still write it: keep the buffer forever.
                core::mem::forget(buf);
                Err(e)
            }
        }
    }

    fn sync(
        &mut self,
        op: Op,
        sector: u64,
        buf: &mut DmaBuf,
        offset: usize,
        len: u32,
        timeout_ns: u64,
    ) -> Result<Completion, BlkError> {
        let fits = offset
            .checked_add(len as usize)
            .is_some_and(|end| end <= buf.len());
        if !fits {
            return Err(BlkError::BadBuffer);
        }
        let req = Request {
            op,
            sector,
            addr: buf.addr(offset),
            len,
            token: 0,
        };
        // SAFETY: the range lies in `buf`, which is borrowed mutably for
        // the whole call, so nothing else touches it while the device
        // does.
        unsafe { self.run(&req, timeout_ns) }
    }
}

fn wanted_features() -> u64 {
    feature(VIRTIO_F_EVENT_IDX)
        | feature(VIRTIO_F_INDIRECT_DESC)
        | feature(wire::VIRTIO_BLK_F_RO)
        | feature(wire::VIRTIO_BLK_F_FLUSH)
        | feature(wire::VIRTIO_BLK_F_SEG_MAX)
}
