//! Domain-0's switches and their uplinks: one switch per bridge name that
//! a service-VM guest's vif names, numbered in order of first use. A
//! switch's uplink is a tap `vif0.N` on the host's bridge, lent to
//! Domain-0 as a hardware queue over the tap (fixed file 0, Dom0's own RAM
//! as the only fixed buffer): Domain-0 reads frames from the bridge into
//! its own buffers and writes frames to it, and nothing in this process
//! or the core ever reads a frame. Frames between two guests on one switch
//! never reach the uplink.
//!
//! Uplinks live as long as Domain-0 (its switches do too), not as long as
//! the guests that made them.

use super::backend_ring::BackendRingWriter;
use super::dom0_queue::Dom0Queue;
use super::doorbells::DoorbellMode;
use super::tap::Tap;
use super::DeviceError;
use hyp::Hypervisor;
use protocol::device::{event, kind, vdev_bytes, BackendEvent, NetParams};
use protocol::domain::DOM0;
use std::os::fd::OwnedFd;
use std::sync::{Mutex, MutexGuard};

/// Most switches (bridges) Domain-0 serves.
pub const MAX_SWITCHES: usize = 16;

/// One switch's uplink.
struct Uplink {
    bridge: String,
    tap: String,
    device_id: u32,
    /// The queue, while a Domain-0 has it.
    queue: Option<Dom0Queue>,
    /// The tap, kept to lend a restarted Domain-0 a new queue over it.
    file: OwnedFd,
    /// What Dom0 was told (the queue's fields are the current queue's).
    announced: BackendEvent,
}

/// Domain-0's switches, by bridge name.
#[derive(Default)]
pub struct Uplinks {
    switches: Mutex<Vec<Uplink>>,
}

impl std::fmt::Debug for Uplinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uplinks({} switches)", self.lock().len())
    }
}

impl Uplinks {
    fn lock(&self) -> MutexGuard<'_, Vec<Uplink>> {
        self.switches.lock().expect("uplinks lock")
    }

    /// The number of Domain-0's switch for `bridge`; the first vif on a
    /// bridge makes the switch's uplink and announces it to Domain-0.
    pub fn switch_for(
        &self,
        core: &Hypervisor,
        ring: &BackendRingWriter,
        bridge: &str,
    ) -> Result<u16, DeviceError> {
        let mut switches = self.lock();
        if let Some(at) = switches.iter().position(|u| u.bridge == bridge) {
            return Ok(at as u16);
        }
        if switches.len() >= MAX_SWITCHES {
            return Err(DeviceError::TooManyBridges(MAX_SWITCHES));
        }
        let index = switches.len() as u16;
        let tap = Tap::create(&format!("vif0.{index}"), bridge)?;
        let name = tap.name().to_string();
        let file: OwnedFd = tap.into_file().into();
        let spare = file.try_clone()?;
        let queue = lend(core, file)?;
        let device_id = ring.device_id();
        let mut announcement = BackendEvent {
            event: event::ADDED,
            kind: kind::UPLINK,
            device_id,
            domid: DOM0,
            vdev: vdev_bytes(bridge),
            net: NetParams {
                switch: index,
                ..Default::default()
            },
            ..Default::default()
        };
        queue.name_in(&mut announcement);
        if let Err(e) = ring.post(&announcement) {
            let _ = core.close_port(DOM0, queue.port);
            queue.close();
            return Err(e);
        }
        tracing::info!("Domain-0 switch {index} for bridge {bridge}: uplink {name}");
        switches.push(Uplink {
            bridge: bridge.into(),
            tap: name,
            device_id,
            queue: Some(queue),
            file: spare,
            announced: announcement,
        });
        Ok(index)
    }

    /// Domain-0 stopped: takes every uplink's queue back (its posted tap
    /// reads are cancelled); the taps stay on their bridges.
    pub fn take_queues_back(&self, core: &Hypervisor) {
        for uplink in self.lock().iter_mut() {
            if let Some(queue) = uplink.queue.take() {
                let _ = core.close_port(DOM0, queue.port);
                queue.close_uplink();
            }
        }
    }

    /// A new Domain-0 is held: lends it a new queue over each uplink's
    /// tap. An uplink whose queue cannot be made stays without one (its
    /// switch reaches only its guests, and it is not announced), logged.
    pub fn lend_queues_again(&self, core: &Hypervisor) {
        for uplink in self.lock().iter_mut() {
            match uplink
                .file
                .try_clone()
                .map_err(DeviceError::from)
                .and_then(|file| lend(core, file))
            {
                Ok(queue) => {
                    queue.name_in(&mut uplink.announced);
                    uplink.queue = Some(queue);
                }
                Err(e) => tracing::error!("uplink {}: a new queue: {e}", uplink.tap),
            }
        }
    }

    /// The new Domain-0 runs: tells it about every uplink that has a
    /// queue again. Returns how many.
    pub fn announce_again(&self, ring: &BackendRingWriter) -> Result<usize, DeviceError> {
        let switches = self.lock();
        let with_queue = switches.iter().filter(|u| u.queue.is_some());
        let mut told = 0;
        for uplink in with_queue {
            ring.post(&uplink.announced)?;
            told += 1;
        }
        Ok(told)
    }

    /// The bridges with a switch, and each uplink's tap, in switch order.
    pub fn list(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .map(|u| (u.bridge.clone(), u.tap.clone()))
            .collect()
    }

    /// Takes every uplink back (Domain-0 is gone, or going: `ring`, if it
    /// still runs, hears of each).
    pub fn clear(&self, core: &Hypervisor, ring: Option<&BackendRingWriter>) {
        for uplink in std::mem::take(&mut *self.lock()) {
            if let Some(ring) = ring {
                let _ = ring.post(&BackendEvent {
                    event: event::REMOVED,
                    device_id: uplink.device_id,
                    ..Default::default()
                });
            }
            if let Some(queue) = uplink.queue {
                let _ = core.close_port(DOM0, queue.port);
                queue.close_uplink();
            }
        }
    }
}

/// A queue over the tap `file` for Domain-0 (always rung by the doorbell
/// thread: its reads wait for frames).
fn lend(core: &Hypervisor, file: OwnedFd) -> Result<Dom0Queue, DeviceError> {
    // SAFETY: no guest buffer: the queue's only fixed buffer is Dom0's
    // RAM, mapped while Dom0 (and so the queue) lives.
    unsafe { Dom0Queue::lend(core, file, None, DoorbellMode::Thread, None) }
}
