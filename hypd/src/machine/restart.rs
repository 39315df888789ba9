//! Restarting Domain-0 under running guests (`docs/dom0-restart.md`):
//! what device setup adds to the core's [`hyp::Hypervisor::restart_dom0`].
//!
//! 1. **Drain.** Every hardware queue of the stopped Domain-0 is taken
//!    back once the host I/O it started has finished, so none of it
//!    lands after the new Domain-0 does it again.
//! 2. **Rebuild.** The core boots a fresh Domain-0, held, over the same
//!    RAM (its reserved pages, with every device's state page, survive);
//!    each disk and uplink gets a new queue over the same file.
//! 3. **Re-attach.** The new Domain-0 runs, and hears of every uplink and
//!    device again on its backend ring, with the same ports, windows and
//!    state pages: each backend resumes from the state its page holds.
//!    Once it has read them all, the guests' register accesses held since
//!    the stop go to it (a device it had not heard of would answer none).

use super::Machine;
use crate::devices::backend_ring::BackendRingWriter;
use crate::devices::set::DeviceSet;
use crate::devices::DeviceError;
use crate::machine::restarts::{Dom0Restart, Dom0Restarts};
use protocol::domain::DOM0;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long re-attaching waits for the new Domain-0 to read its ring.
const REATTACH_WAIT: Duration = Duration::from_secs(10);

impl Machine {
    /// Boots a new Domain-0 in place of the one that stopped, for `reason`,
    /// and hands it every guest's devices; the guests keep running
    /// throughout. On an error no Domain-0 serves the guests: the caller
    /// stops them.
    pub fn restart_dom0(&self, reason: &str) -> Result<Dom0Restart, DeviceError> {
        let _gate = self.dom0_gate.write().expect("dom0 gate");
        let config = self
            .dom0_config
            .lock()
            .expect("dom0 config lock")
            .clone()
            .ok_or(DeviceError::NoDom0)?;
        let ring = self.ring().ok_or(DeviceError::NoDom0)?;
        let started = Instant::now();
        let guests: Vec<_> = self.guests().values().cloned().collect();
        for guest in &guests {
            guest.take_dom0_queues(&self.core);
        }
        self.uplinks.take_queues_back(&self.core);
        let drain = started.elapsed();

        let requeued = self.core.restart_dom0(&config)?;
        ring.restart();
        // A queue that cannot be made leaves its disk failing its
        // requests, and the rest served.
        self.uplinks.lend_queues_again(&self.core);
        for guest in &guests {
            guest.lend_dom0_queues(&self.core);
        }
        let rebuild = started.elapsed() - drain;

        self.core.release_domain(DOM0)?;
        let replayed = self.announce_again(&ring, &guests);
        // On an error too: the guests' accesses then get their answers
        // (all-ones) from whatever Domain-0 knows, or when they stop.
        self.core.requeue_ioreqs();
        let devices = replayed?;
        let restart = Dom0Restart {
            reason: reason.to_string(),
            drain,
            rebuild,
            reattach: started.elapsed() - drain - rebuild,
            devices,
            requeued,
        };
        let mut restarts = self.restarts.lock().expect("restarts lock");
        restarts.count += 1;
        restarts.last = Some(restart.clone());
        tracing::info!(
            domid = DOM0,
            "Domain-0 restarted ({}): drain {} ms, rebuild {} ms, re-attach {} ms, {devices} devices, {requeued} accesses waited",
            protocol::text::escape_controls(reason),
            drain.as_millis(),
            rebuild.as_millis(),
            restart.reattach.as_millis()
        );
        Ok(restart)
    }

    /// Tells the new Domain-0 of every uplink and of `guests`' devices, and
    /// waits for it to read them all. Returns how many it heard of.
    fn announce_again(
        &self,
        ring: &BackendRingWriter,
        guests: &[Arc<DeviceSet>],
    ) -> Result<usize, DeviceError> {
        let mut devices = self.uplinks.announce_again(ring)?;
        for guest in guests {
            devices += guest.announce_to_dom0(ring)?;
        }
        ring.wait_read(REATTACH_WAIT)?;
        Ok(devices)
    }

    /// Domain-0's restarts so far.
    pub fn dom0_restarts(&self) -> Dom0Restarts {
        self.restarts.lock().expect("restarts lock").clone()
    }
}
