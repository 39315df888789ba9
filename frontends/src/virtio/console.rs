//! The virtio-console driver: output through the transmit queue.
//!
//! Bytes are copied into driver-owned buffers of [`CHUNK`] bytes, one
//! device-readable descriptor each, and published with one doorbell per
//! [`Console::write`]. Buffers come back as the device consumes them;
//! the driver waits only when it runs out of them, or in
//! [`Console::drain`] before the domain powers off (so the last lines are
//! not lost). Only the transmit queue is set up: this kernel reads no
//! console input.

use alloc::vec;
use alloc::vec::Vec;

use protocol::device::GuestDevice;
use protocol::virtio::console::TRANSMITQ;
use protocol::virtio::feature;
use protocol::virtio::features::VIRTIO_F_EVENT_IDX;
use protocol::virtio::mmio::DEVICE_ID_CONSOLE;

use super::mmio::{Transport, TransportError};
use super::queue::{QueueError, Seg, VirtQueue};
use super::wait::{AdaptivePoll, WaitError};
use crate::dma::{DmaBuf, OutOfMemory};

/// Bytes per transmit buffer.
pub const CHUNK: usize = 256;
/// Largest transmit queue this driver asks for.
const QUEUE_SIZE: u16 = 64;
/// How long to wait for the device to hand buffers back.
const TIMEOUT_NS: u64 = 1_000_000_000;

/// Why the console stopped working.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleError {
    /// Bring-up failed or the device needs a reset.
    Transport(TransportError),
    /// Out of driver memory.
    Memory(OutOfMemory),
    /// The device broke the used-ring protocol.
    Queue(QueueError),
    /// The device did not return buffers in time.
    Timeout,
}

impl From<TransportError> for ConsoleError {
    fn from(e: TransportError) -> Self {
        Self::Transport(e)
    }
}

impl From<OutOfMemory> for ConsoleError {
    fn from(e: OutOfMemory) -> Self {
        Self::Memory(e)
    }
}

impl From<WaitError> for ConsoleError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::Timeout => Self::Timeout,
            WaitError::Device(e) => Self::Transport(e),
        }
    }
}

/// A virtio-console device in use.
pub struct Console {
    transport: Transport,
    queue: VirtQueue,
    bufs: DmaBuf,
    free_bufs: Vec<u16>,
    /// Buffer index of the chain each head descriptor starts.
    buf_of_head: Vec<u16>,
    poll: AdaptivePoll,
}

impl Console {
    /// Probes and initialises the console device `dev`.
    pub fn open(dev: &GuestDevice) -> Result<Self, ConsoleError> {
        let mut t = Transport::probe(dev, DEVICE_ID_CONSOLE)?;
        t.negotiate(feature(VIRTIO_F_EVENT_IDX), 0)?;
        let size = t.queue_size(TRANSMITQ, QUEUE_SIZE)?;
        let mut queue = VirtQueue::new(TRANSMITQ, size, t.notify_addr())?;
        queue.reset(t.has(VIRTIO_F_EVENT_IDX));
        t.setup_queue(TRANSMITQ, size, queue.addrs());
        t.driver_ok()?;
        Ok(Self {
            transport: t,
            queue,
            bufs: DmaBuf::new(usize::from(size) * CHUNK)?,
            free_bufs: (0..size).rev().collect(),
            buf_of_head: vec![0; usize::from(size)],
            // The device copies the bytes out at once; no point spinning.
            poll: AdaptivePoll::new(0),
        })
    }

    fn reclaim(&mut self) -> Result<(), ConsoleError> {
        while let Some(elem) = self.queue.pop_used().map_err(ConsoleError::Queue)? {
            // `pop_used` checked that the id heads a chain in flight.
            let buf = self.buf_of_head[elem.id as usize];
            self.free_bufs.push(buf);
        }
        Ok(())
    }

    fn wait_for_buffers(&mut self) -> Result<(), ConsoleError> {
        self.queue.kick();
        self.poll
            .wait(&mut self.queue, &mut self.transport, TIMEOUT_NS)?;
        self.reclaim()
    }

    /// Queues `bytes` for output and notifies the device.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), ConsoleError> {
        self.reclaim()?;
        for chunk in bytes.chunks(CHUNK) {
            if self.free_bufs.is_empty() || self.queue.num_free() == 0 {
                self.wait_for_buffers()?;
            }
            let Some(buf) = self.free_bufs.pop() else {
                return Err(ConsoleError::Timeout);
            };
            let at = usize::from(buf) * CHUNK;
            // SAFETY: buffer `buf` is free (the device returned it), and
            // `chunk` fits in its CHUNK bytes inside `self.bufs`.
            unsafe {
                core::ptr::copy_nonoverlapping(chunk.as_ptr(), self.bufs.ptr(at), chunk.len())
            };
            let head = self
                .queue
                .add(&[Seg::read(self.bufs.addr(at), chunk.len() as u32)])
                .map_err(ConsoleError::Queue)?;
            self.buf_of_head[usize::from(head)] = buf;
        }
        self.queue.kick();
        Ok(())
    }

    /// Waits until the device has consumed everything written.
    pub fn drain(&mut self) -> Result<(), ConsoleError> {
        self.reclaim()?;
        while self.queue.in_flight() > 0 {
            self.wait_for_buffers()?;
        }
        Ok(())
    }
}
