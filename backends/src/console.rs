//! The virtio-console device: one port, no multiport.
//!
//! Bytes the driver puts in the transmit queue go to
//! [`Platform::console_output`]; bytes fed with [`Console::push_input`]
//! wait in a bounded buffer until the driver posts receive buffers. With
//! `VIRTIO_CONSOLE_F_EMERG_WRITE`, a byte written to the `emerg_wr` field
//! of the configuration space goes out at once, queues or not.

use alloc::collections::VecDeque;

use protocol::virtio::console::{
    self as wire, CONFIG_EMERG_WR_OFFSET, NUM_QUEUES, RECEIVEQ, TRANSMITQ,
};
use protocol::virtio::features::{VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1};
use protocol::virtio::{feature, mmio::DEVICE_ID_CONSOLE};

use crate::chain::Chain;
use crate::device::VirtioDevice;
use crate::platform::Platform;
use crate::queue::{Queue, QueueError};

/// Bytes of input held while the driver has no receive buffer posted.
pub const INPUT_CAPACITY: usize = 4096;

/// Bytes copied out of guest memory per step of a transmit.
const CHUNK: usize = 256;

/// Counters of a console device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsoleStats {
    /// Bytes the driver transmitted.
    pub bytes_out: u64,
    /// Bytes delivered to the driver.
    pub bytes_in: u64,
    /// Input bytes dropped because the buffer was full.
    pub input_dropped: u64,
}

/// A virtio-console device model.
#[derive(Debug)]
pub struct Console {
    queue_max: [u16; NUM_QUEUES],
    input: VecDeque<u8>,
    chain: Chain,
    stats: ConsoleStats,
}

impl Console {
    /// A console whose two queues hold up to `queue_size` entries.
    pub fn new(queue_size: u16) -> Self {
        let size = queue_size.clamp(1, protocol::virtio::mmio::MAX_QUEUE_SIZE);
        Self {
            queue_max: [size; NUM_QUEUES],
            input: VecDeque::new(),
            chain: Chain::new(),
            stats: ConsoleStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> ConsoleStats {
        self.stats
    }

    /// Queues input for the driver; returns how many bytes were taken
    /// (the rest are dropped and counted once the buffer is full). Call
    /// [`Console::deliver_input`] through the transport's `with_device` to
    /// move it into posted receive buffers.
    pub fn push_input(&mut self, bytes: &[u8]) -> usize {
        let room = INPUT_CAPACITY - self.input.len();
        let take = bytes.len().min(room);
        self.input.extend(&bytes[..take]);
        self.stats.input_dropped += (bytes.len() - take) as u64;
        take
    }

    /// Bytes of input waiting for receive buffers.
    pub fn pending_input(&self) -> usize {
        self.input.len()
    }

    /// Moves pending input into the receive buffers the driver posted.
    pub fn deliver_input<P: Platform>(
        &mut self,
        p: &mut P,
        queues: &mut [Queue],
    ) -> Result<(), QueueError> {
        let Some(q) = queues.get_mut(usize::from(RECEIVEQ)) else {
            return Ok(());
        };
        if !q.ready() {
            return Ok(());
        }
        while !self.input.is_empty() {
            if !q.pop(p, &mut self.chain)? {
                if q.enable_notification(p)? {
                    continue;
                }
                break;
            }
            let room = self.chain.writable_len();
            let n = (self.input.len() as u64).min(room) as usize;
            let mut written = 0usize;
            while written < n {
                let (front, _) = self.input.as_slices();
                let piece = front.len().min(n - written);
                self.chain
                    .write_writable(p, written as u64, &front[..piece])?;
                self.input.drain(..piece);
                written += piece;
            }
            self.stats.bytes_in += n as u64;
            q.add_used(p, self.chain.head(), n as u32)?;
        }
        Ok(())
    }

    fn transmit<P: Platform>(&mut self, p: &mut P, q: &mut Queue) -> Result<(), QueueError> {
        loop {
            if !q.pop(p, &mut self.chain)? {
                if q.enable_notification(p)? {
                    continue;
                }
                return Ok(());
            }
            let mut buf = [0u8; CHUNK];
            let total = self.chain.readable_len();
            let mut done = 0u64;
            while done < total {
                let n = (total - done).min(CHUNK as u64) as usize;
                self.chain.read_readable(p, done, &mut buf[..n])?;
                p.console_output(&buf[..n]);
                done += n as u64;
            }
            self.stats.bytes_out += total;
            q.add_used(p, self.chain.head(), 0)?;
        }
    }
}

impl VirtioDevice for Console {
    fn device_id(&self) -> u32 {
        DEVICE_ID_CONSOLE
    }

    fn device_features(&self) -> u64 {
        feature(VIRTIO_F_VERSION_1)
            | feature(VIRTIO_F_EVENT_IDX)
            | feature(VIRTIO_F_INDIRECT_DESC)
            | feature(wire::VIRTIO_CONSOLE_F_EMERG_WRITE)
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_max
    }

    fn config_size(&self) -> usize {
        wire::CONFIG_SIZE
    }

    fn read_config(&self, offset: usize, data: &mut [u8]) {
        let bytes = wire::Config {
            max_nr_ports: 1,
            ..wire::Config::default()
        }
        .to_bytes();
        if let Some(src) = bytes.get(offset..offset + data.len()) {
            data.copy_from_slice(src);
        }
    }

    fn write_config<P: Platform>(&mut self, p: &mut P, offset: usize, data: &[u8]) -> bool {
        if offset != CONFIG_EMERG_WR_OFFSET {
            return false;
        }
        // The character is the low byte of the field.
        p.console_output(&data[..1]);
        self.stats.bytes_out += 1;
        true
    }

    fn activate(&mut self, _features: u64) {}

    fn reset(&mut self) {}

    fn queue_notify<P: Platform>(
        &mut self,
        p: &mut P,
        queues: &mut [Queue],
        queue: u16,
    ) -> Result<(), QueueError> {
        match queue {
            RECEIVEQ => self.deliver_input(p, queues),
            TRANSMITQ => self.transmit(p, &mut queues[usize::from(TRANSMITQ)]),
            _ => Ok(()),
        }
    }
}
