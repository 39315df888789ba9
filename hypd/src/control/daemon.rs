//! [`Daemon`]: what the daemon's threads share.

use super::console::Consoles;
use super::log::MessageLog;
use super::records::Records;
use crate::Machine;

/// Everything the client threads and the lifecycle watcher share.
pub(crate) struct Daemon {
    pub machine: Machine,
    pub records: Records,
    pub consoles: Consoles,
    pub log: MessageLog,
}
