//! What `hypd` keeps about Domain-0's restarts (`xl list`, `xl dmesg`).

use std::time::Duration;

/// How one restart of Domain-0 went.
#[derive(Clone, Debug)]
pub struct Dom0Restart {
    /// Why Domain-0 stopped.
    pub reason: String,
    /// Taking the hardware queues back (the old host I/O finished).
    pub drain: Duration,
    /// Booting the new Domain-0 and lending it new queues.
    pub rebuild: Duration,
    /// From its release until it had read every device again.
    pub reattach: Duration,
    /// Devices and uplinks announced again.
    pub devices: usize,
    /// Guest register accesses that waited for the new Domain-0.
    pub requeued: usize,
}

impl Dom0Restart {
    /// The whole restart, as the core's part of a guest's stall.
    pub fn total(&self) -> Duration {
        self.drain + self.rebuild + self.reattach
    }
}

/// Domain-0's restarts so far.
#[derive(Clone, Debug, Default)]
pub struct Dom0Restarts {
    /// How many.
    pub count: u32,
    /// The last one.
    pub last: Option<Dom0Restart>,
}
