//! [`ConsoleSink`]: a handle on one domain's console log, for output
//! written on the domain's behalf (a host-model console backend, as
//! Domain-0's console backend does with its `console_write_for`
//! hypercall).

use crate::state::Core;
use protocol::domain::DomId;
use std::sync::Weak;

/// Where output for one domain goes: its console log.
#[derive(Clone)]
pub struct ConsoleSink {
    core: Weak<Core>,
    domid: DomId,
}

impl std::fmt::Debug for ConsoleSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConsoleSink(domain {})", self.domid)
    }
}

impl ConsoleSink {
    pub(crate) fn new(core: Weak<Core>, domid: DomId) -> Self {
        Self { core, domid }
    }

    /// Appends `bytes` to the domain's console log; dropped once the
    /// domain (or the core) is gone.
    pub fn write(&self, bytes: &[u8]) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        if let Some(domain) = core.find(self.domid) {
            core.console_output(&domain, bytes);
        }
    }
}
