//! The virtio-blk device: one request queue, reads, writes, flushes and
//! get-id, many requests in flight.
//!
//! A request's header is copied out of guest memory once, then checked:
//! reads and writes must cover whole sectors inside the disk, carry data in
//! the right direction only (a read has no device-readable data, a write no
//! device-writable data besides the status byte) and use at most `seg_max`
//! segments; writes to a read-only disk fail without reaching the host.
//! Such a request completes with `S_IOERR` (`S_UNSUPP` for an unknown
//! type). A chain with no device-writable byte has nowhere for the status,
//! so it is returned with a used length of 0 and counted.
//!
//! Reads, writes and flushes go to the host as [`HostIo`]s tagged with
//! the reset epoch and the chain's head index; a completion with a stale
//! or unknown tag is ignored. A head the driver makes available again
//! while it is in flight is a ring violation.

use alloc::vec;
use alloc::vec::Vec;

use protocol::virtio::blk::{
    self as wire, RequestHeader, HEADER_SIZE, ID_BYTES, SECTOR_SIZE, S_IOERR, S_OK, S_UNSUPP,
    T_FLUSH, T_GET_ID, T_IN, T_OUT,
};
use protocol::virtio::features::{VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1};
use protocol::virtio::{feature, mmio::DEVICE_ID_BLOCK};

use crate::chain::Chain;
use crate::device::VirtioDevice;
use crate::platform::{GuestBuf, HostIo, IoKind, IoResult, Platform, Submission};
use crate::queue::{Queue, QueueError};
use protocol::trace::Step;

/// How a block device is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlkConfig {
    /// Size of the backing store in bytes; the capacity is this rounded
    /// down to whole sectors.
    pub disk_bytes: u64,
    /// Refuse writes (offers `VIRTIO_BLK_F_RO`).
    pub read_only: bool,
    /// The id string `GET_ID` returns (NUL-padded).
    pub id: [u8; ID_BYTES],
    /// Largest queue size offered.
    pub queue_size: u16,
}

impl BlkConfig {
    /// A writable disk of `disk_bytes` with a queue of
    /// [`OFFERED_QUEUE_SIZE`](protocol::virtio::mmio::OFFERED_QUEUE_SIZE)
    /// entries and an empty id.
    pub fn new(disk_bytes: u64) -> Self {
        Self {
            disk_bytes,
            read_only: false,
            id: [0; ID_BYTES],
            queue_size: protocol::virtio::mmio::OFFERED_QUEUE_SIZE,
        }
    }
}

/// Counters of a block device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkStats {
    /// Read requests submitted to the host.
    pub reads: u64,
    /// Write requests submitted to the host.
    pub writes: u64,
    /// Flushes submitted to the host.
    pub flushes: u64,
    /// `GET_ID` requests answered.
    pub get_ids: u64,
    /// Requests completed with `S_IOERR` (refused or failed on the host).
    pub errors: u64,
    /// Requests completed with `S_UNSUPP`.
    pub unsupported: u64,
    /// Chains with no room for a status byte, returned unanswered.
    pub malformed: u64,
    /// Completions ignored: unknown tag or from before a reset.
    pub stale_completions: u64,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    tag: u64,
    /// The available-ring index the request was taken from (its trace id).
    avail: u16,
    status_gpa: u64,
    /// Used length to report on success.
    used_len: u32,
    /// Bytes the host must transfer for success.
    expected: u64,
}

/// A virtio-blk device model.
#[derive(Debug)]
pub struct Blk {
    config: BlkConfig,
    capacity: u64,
    queue_max: [u16; 1],
    in_flight: Vec<Option<InFlight>>,
    epoch: u32,
    chain: Chain,
    segments: Vec<GuestBuf>,
    stats: BlkStats,
}

/// Most data segments one request may use (`seg_max`): the queue size
/// minus the header and status descriptors, as Linux assumes.
fn seg_max(queue_size: u16) -> u32 {
    u32::from(queue_size).saturating_sub(2).max(1)
}

impl Blk {
    /// A block device over a backing store described by `config`.
    pub fn new(config: BlkConfig) -> Self {
        let queue_size = config
            .queue_size
            .clamp(1, protocol::virtio::mmio::MAX_QUEUE_SIZE);
        Self {
            capacity: config.disk_bytes / SECTOR_SIZE,
            queue_max: [queue_size],
            in_flight: vec![None; usize::from(queue_size)],
            epoch: 0,
            chain: Chain::new(),
            segments: Vec::new(),
            stats: BlkStats::default(),
            config,
        }
    }

    /// Disk size in sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Counters.
    pub fn stats(&self) -> BlkStats {
        self.stats
    }

    /// Requests submitted to the host and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.in_flight.iter().flatten().count()
    }

    fn wire_config(&self) -> wire::Config {
        wire::Config {
            capacity: self.capacity,
            seg_max: seg_max(self.queue_max[0]),
            blk_size: SECTOR_SIZE as u32,
            num_queues: 1,
            ..wire::Config::default()
        }
    }

    /// Handles the chain in `self.chain`. Long because it is virtio-blk's
    /// request table (section 5.2.6): every request type's checks and its
    /// submission side by side, so a reader can hold them against the spec.
    fn request<P: Platform>(&mut self, p: &mut P, q: &mut Queue) -> Result<(), QueueError> {
        let head = self.chain.head();
        let avail = q.next_avail().wrapping_sub(1);
        p.trace(Step::Taken, u32::from(avail), u32::from(q.polled()));
        if self.in_flight[usize::from(head)].is_some() {
            return Err(QueueError::HeadInFlight(head));
        }
        let writable = self.chain.writable_len();
        let Some(status_gpa) = writable
            .checked_sub(1)
            .and_then(|last| self.chain.writable_addr(last))
        else {
            self.stats.malformed += 1;
            return q.add_used(p, head, 0);
        };
        let data_in = writable - 1;
        let Some(data_out) = self.chain.readable_len().checked_sub(HEADER_SIZE as u64) else {
            return self.finish(p, q, head, avail, status_gpa, S_IOERR, 1);
        };
        let mut raw = [0u8; HEADER_SIZE];
        self.chain.read_readable(p, 0, &mut raw)?;
        let header = RequestHeader::from_bytes(&raw);

        let (kind, len) = match header.kind {
            T_IN if data_out == 0 => (IoKind::Read, data_in),
            T_OUT if data_in == 0 && !self.config.read_only => (IoKind::Write, data_out),
            T_FLUSH if data_in == 0 && data_out == 0 => (IoKind::Flush, 0),
            T_GET_ID if data_out == 0 && data_in > 0 => {
                self.stats.get_ids += 1;
                let n = data_in.min(ID_BYTES as u64) as usize;
                self.chain.write_writable(p, 0, &self.config.id[..n])?;
                return self.finish(p, q, head, avail, status_gpa, S_OK, n as u32 + 1);
            }
            T_IN | T_OUT | T_FLUSH | T_GET_ID => {
                return self.finish(p, q, head, avail, status_gpa, S_IOERR, 1);
            }
            _ => {
                self.stats.unsupported += 1;
                return self.finish(p, q, head, avail, status_gpa, S_UNSUPP, 1);
            }
        };

        let offset = header.sector.checked_mul(SECTOR_SIZE);
        let in_disk = offset
            .and_then(|o| o.checked_add(len))
            .is_some_and(|end| end <= self.capacity * SECTOR_SIZE);
        if kind != IoKind::Flush && (!len.is_multiple_of(SECTOR_SIZE) || !in_disk) {
            return self.finish(p, q, head, avail, status_gpa, S_IOERR, 1);
        }
        if kind == IoKind::Flush && self.config.read_only {
            // Nothing can be dirty.
            return self.finish(p, q, head, avail, status_gpa, S_OK, 1);
        }
        if len == 0 && kind != IoKind::Flush {
            return self.finish(p, q, head, avail, status_gpa, S_OK, 1);
        }

        self.segments.clear();
        let split = match kind {
            IoKind::Read => self.chain.writable_segments(0, len, &mut self.segments),
            IoKind::Write => {
                self.chain
                    .readable_segments(HEADER_SIZE as u64, len, &mut self.segments)
            }
            IoKind::Flush => true,
        };
        if !split || self.segments.len() as u64 > u64::from(seg_max(self.queue_max[0])) {
            return self.finish(p, q, head, avail, status_gpa, S_IOERR, 1);
        }

        p.trace(Step::Parsed, u32::from(avail), kind as u32);
        let tag = (u64::from(self.epoch) << 32) | u64::from(head);
        let used_len = if kind == IoKind::Read {
            len as u32 + 1
        } else {
            1
        };
        self.in_flight[usize::from(head)] = Some(InFlight {
            tag,
            avail,
            status_gpa,
            used_len,
            expected: len,
        });
        match kind {
            IoKind::Read => self.stats.reads += 1,
            IoKind::Write => self.stats.writes += 1,
            IoKind::Flush => self.stats.flushes += 1,
        }
        let io = HostIo {
            kind,
            offset: if kind == IoKind::Flush {
                0
            } else {
                offset.unwrap_or(0)
            },
            buffers: &self.segments,
            tag,
        };
        match p.submit(&io) {
            Submission::Pending => {
                p.trace(Step::Queued, u32::from(avail), len as u32);
                Ok(())
            }
            Submission::Done(result) => self.io_done(p, q, head, result),
        }
    }

    /// A host I/O for chain `head` finished.
    fn io_done<P: Platform>(
        &mut self,
        p: &mut P,
        q: &mut Queue,
        head: u16,
        result: IoResult,
    ) -> Result<(), QueueError> {
        let Some(req) = self.in_flight[usize::from(head)].take() else {
            self.stats.stale_completions += 1;
            return Ok(());
        };
        let outcome = result.map_or_else(|errno| -errno, |n| n as i32);
        p.trace(Step::Completed, u32::from(req.avail), outcome as u32);
        if result == Ok(req.expected) {
            self.finish(p, q, head, req.avail, req.status_gpa, S_OK, req.used_len)
        } else {
            self.finish(p, q, head, req.avail, req.status_gpa, S_IOERR, 1)
        }
    }

    /// Writes the status byte and returns the chain (taken from available
    /// index `avail`).
    #[allow(clippy::too_many_arguments)]
    fn finish<P: Platform>(
        &mut self,
        p: &mut P,
        q: &mut Queue,
        head: u16,
        avail: u16,
        status_gpa: u64,
        status: u8,
        used_len: u32,
    ) -> Result<(), QueueError> {
        if status == S_IOERR {
            self.stats.errors += 1;
        }
        p.write(status_gpa, &[status])?;
        // Stamped before the used index that shows it to the driver.
        p.trace(Step::Used, u32::from(avail), u32::from(status));
        q.add_used(p, head, used_len)
    }
}

impl VirtioDevice for Blk {
    fn device_id(&self) -> u32 {
        DEVICE_ID_BLOCK
    }

    fn device_features(&self) -> u64 {
        let mut f = feature(VIRTIO_F_VERSION_1)
            | feature(VIRTIO_F_EVENT_IDX)
            | feature(VIRTIO_F_INDIRECT_DESC)
            | feature(wire::VIRTIO_BLK_F_FLUSH)
            | feature(wire::VIRTIO_BLK_F_SEG_MAX)
            | feature(wire::VIRTIO_BLK_F_BLK_SIZE);
        if self.config.read_only {
            f |= feature(wire::VIRTIO_BLK_F_RO);
        }
        f
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_max
    }

    fn config_size(&self) -> usize {
        wire::CONFIG_SIZE
    }

    fn read_config(&self, offset: usize, data: &mut [u8]) {
        let bytes = self.wire_config().to_bytes();
        if let Some(src) = bytes.get(offset..offset + data.len()) {
            data.copy_from_slice(src);
        }
    }

    fn write_config<P: Platform>(&mut self, _p: &mut P, _offset: usize, _data: &[u8]) -> bool {
        // Nothing is writable without VIRTIO_BLK_F_CONFIG_WCE.
        false
    }

    fn activate(&mut self, _features: u64) {}

    fn reset(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.in_flight.iter_mut().for_each(|slot| *slot = None);
    }

    fn queue_notify<P: Platform>(
        &mut self,
        p: &mut P,
        queues: &mut [Queue],
        queue: u16,
    ) -> Result<(), QueueError> {
        let Some(q) = queues.get_mut(usize::from(queue)) else {
            return Ok(());
        };
        loop {
            if !q.pop(p, &mut self.chain)? {
                if !q.enable_notification(p)? {
                    return Ok(());
                }
                continue;
            }
            self.request(p, q)?;
        }
    }

    fn complete<P: Platform>(
        &mut self,
        p: &mut P,
        queues: &mut [Queue],
        tag: u64,
        result: IoResult,
    ) -> Result<(), QueueError> {
        let head = (tag & 0xffff) as u16;
        let current = self
            .in_flight
            .get(usize::from(head))
            .and_then(|slot| slot.as_ref())
            .is_some_and(|req| req.tag == tag);
        if !current || tag >> 32 != u64::from(self.epoch) {
            self.stats.stale_completions += 1;
            return Ok(());
        }
        self.io_done(p, &mut queues[0], head, result)
    }
}
