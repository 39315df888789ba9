//! What a device model (block, console, ...) provides to the transport.
//!
//! The transport ([`crate::mmio::MmioTransport`]) owns the queues, the
//! status and the feature negotiation; a device owns its configuration
//! space and what happens to buffers. The transport calls the device with
//! the queues and the platform borrowed for the call, and afterwards
//! decides for every queue whether the driver needs an interrupt, so a
//! device only pops chains and adds used entries.

use crate::platform::{IoResult, Platform};
use crate::queue::{Queue, QueueError};

/// A virtio device model behind a transport.
pub trait VirtioDevice {
    /// The virtio device type (`protocol::virtio::mmio::DEVICE_ID_*`).
    fn device_id(&self) -> u32;

    /// Feature bits offered (transport bits such as `VIRTIO_F_VERSION_1`
    /// included).
    fn device_features(&self) -> u64;

    /// Largest size of each queue; the slice's length is the number of
    /// queues.
    fn queue_max_sizes(&self) -> &[u16];

    /// True if buffers the driver adds to `queue` are work for the device,
    /// which polling looks for ([`crate::MmioTransport::poll`]); false for
    /// a queue whose buffers wait for an event of the device's own (a
    /// network device's receive buffers wait for frames), which polling
    /// leaves alone. The default: every queue.
    fn buffers_are_work(&self, queue: u16) -> bool {
        let _ = queue;
        true
    }

    /// Bytes of the configuration space.
    fn config_size(&self) -> usize;

    /// Copies configuration bytes from `offset`; the transport has checked
    /// that `offset + data.len() <= config_size()`.
    fn read_config(&self, offset: usize, data: &mut [u8]);

    /// The driver wrote configuration bytes at `offset` (in range, as for
    /// reads). Returns false if the field is read-only, so the transport
    /// counts the access as bad.
    fn write_config<P: Platform>(&mut self, p: &mut P, offset: usize, data: &[u8]) -> bool;

    /// The driver set `DRIVER_OK` having accepted `features`.
    fn activate(&mut self, features: u64);

    /// The driver reset the device: forget every request in flight (their
    /// completions, if any arrive, must be ignored).
    fn reset(&mut self);

    /// The driver notified `queue` (already checked to exist and be
    /// ready). An error is a ring violation: the transport sets
    /// `DEVICE_NEEDS_RESET`.
    fn queue_notify<P: Platform>(
        &mut self,
        p: &mut P,
        queues: &mut [Queue],
        queue: u16,
    ) -> Result<(), QueueError>;

    /// A host I/O the device submitted with `tag` finished. Devices that
    /// never submit host I/O (console, net) keep the default, which
    /// ignores it.
    fn complete<P: Platform>(
        &mut self,
        p: &mut P,
        queues: &mut [Queue],
        tag: u64,
        result: IoResult,
    ) -> Result<(), QueueError> {
        let _ = (p, queues, tag, result);
        Ok(())
    }
}
