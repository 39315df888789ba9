//! A device of any kind behind its virtio-mmio transport: what a placement
//! holds for each device it serves, so that Domain-0 and the host model
//! drive the devices with the same few calls.

use alloc::collections::vec_deque;

use crate::blk::{Blk, BlkConfig};
use crate::console::Console;
use crate::mmio::{MmioTransport, TransportStats};
use crate::net::{Net, NetConfig, TxFrame};
use crate::platform::{IoResult, Platform};
use crate::queue::{Queue, QueueError};

/// A virtio-blk, virtio-console or virtio-net device and its transport.
#[derive(Debug)]
pub enum DeviceModel {
    /// A virtio-blk disk.
    Blk(MmioTransport<Blk>),
    /// A virtio-console.
    Console(MmioTransport<Console>),
    /// A virtio-net interface (a vif).
    Net(MmioTransport<Net>),
}

/// Runs `$body` with `$t` bound to the transport, whatever the model.
macro_rules! with_transport {
    ($model:expr, $t:ident => $body:expr) => {
        match $model {
            DeviceModel::Blk($t) => $body,
            DeviceModel::Console($t) => $body,
            DeviceModel::Net($t) => $body,
        }
    };
}

impl DeviceModel {
    /// A disk.
    pub fn blk(config: BlkConfig) -> Self {
        Self::Blk(MmioTransport::new(Blk::new(config)))
    }

    /// A console with queues of `queue_size`.
    pub fn console(queue_size: u16) -> Self {
        Self::Console(MmioTransport::new(Console::new(queue_size)))
    }

    /// A network interface.
    pub fn net(config: NetConfig) -> Self {
        Self::Net(MmioTransport::new(Net::new(config)))
    }

    /// The network device, if this is one (for its counters).
    pub fn as_net(&self) -> Option<&Net> {
        match self {
            Self::Net(t) => Some(t.device()),
            _ => None,
        }
    }

    /// The frames a network device's driver transmitted and the placement
    /// has not switched yet, oldest first ([`Net::pending_tx`]); none for
    /// another kind of device, or while the device is not running (its
    /// frames wait for the reset that drops them).
    pub fn tx_frames(&self) -> vec_deque::Iter<'_, TxFrame> {
        match self {
            Self::Net(t) if t.is_live() => t.device().pending_tx(),
            _ => vec_deque::Iter::default(),
        }
    }

    /// Runs `f` on a network device with its queues, through the
    /// transport's [`MmioTransport::with_device`], which then raises the
    /// interrupts the device earned (or `DEVICE_NEEDS_RESET` on an error):
    /// how a placement delivers frames ([`Net::receive`]) and returns
    /// switched ones ([`Net::finish_tx`]). `None` for another kind of
    /// device, or a network device that is not running or just failed.
    pub fn with_net<P: Platform, R>(
        &mut self,
        p: &mut P,
        f: impl FnOnce(&mut Net, &mut P, &mut [Queue]) -> Result<R, QueueError>,
    ) -> Option<R> {
        match self {
            Self::Net(t) => t.with_device(p, f),
            _ => None,
        }
    }

    /// Takes the device over from the state saved on `p`
    /// ([`MmioTransport::resume`]): `Some(chains to take again)`, or
    /// `None` if there was no state (a new device).
    pub fn resume<P: Platform>(&mut self, p: &mut P) -> Option<usize> {
        with_transport!(self, t => t
            .resume(p)
            .then(|| t.queues().iter().map(Queue::to_redo).sum()))
    }

    /// A register read of `size` bytes at `offset` in the window.
    pub fn read(&mut self, offset: u64, size: u8) -> u64 {
        with_transport!(self, t => t.read(offset, size))
    }

    /// A register write of `size` bytes at `offset` in the window.
    pub fn write<P: Platform>(&mut self, p: &mut P, offset: u64, size: u8, value: u64) {
        with_transport!(self, t => t.write(p, offset, size, value))
    }

    /// The guest notified one of the device's queues (an ioeventfd does
    /// not say which): process every queue that is running.
    pub fn notify_all<P: Platform>(&mut self, p: &mut P) {
        with_transport!(self, t => {
            for q in 0..t.queues().len() {
                if t.queues()[q].ready() {
                    t.queue_notify(p, q as u16);
                }
            }
        })
    }

    /// Enters or leaves polled mode ([`MmioTransport::set_polling`]);
    /// true if leaving found work, which was processed.
    pub fn set_polling<P: Platform>(&mut self, p: &mut P, polling: bool) -> bool {
        with_transport!(self, t => t.set_polling(p, polling))
    }

    /// In polled mode, processes the queues the driver added to
    /// ([`MmioTransport::poll`]); true if there was work.
    pub fn poll<P: Platform>(&mut self, p: &mut P) -> bool {
        with_transport!(self, t => t.poll(p))
    }

    /// A host I/O the device submitted with `tag` finished.
    pub fn complete<P: Platform>(&mut self, p: &mut P, tag: u64, result: IoResult) {
        with_transport!(self, t => t.complete(p, tag, result))
    }

    /// True if the device gave up on the guest's rings until a reset.
    pub fn needs_reset(&self) -> bool {
        with_transport!(self, t => t.needs_reset())
    }

    /// The ring violation that stopped the device, if any.
    pub fn last_error(&self) -> Option<QueueError> {
        with_transport!(self, t => t.last_error())
    }

    /// The transport's counters.
    pub fn stats(&self) -> TransportStats {
        with_transport!(self, t => t.stats())
    }
}
