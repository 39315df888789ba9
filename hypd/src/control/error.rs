//! What a control request can fail with; `xl` gets the message.

use protocol::domain::DomId;

/// Why a request of `xl` failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No live domain has this id.
    #[error("domain {0} does not exist")]
    NoSuchId(DomId),
    /// No live domain has this name.
    #[error("domain '{0}' does not exist")]
    NoSuchName(String),
    /// The kernel file of a create request cannot be used.
    #[error("kernel {0}")]
    Kernel(crate::files::FileError),
    /// Domain-0 goes only with the daemon.
    #[error("Domain-0 cannot be destroyed; shut it down to stop hypd")]
    Dom0Destroy,
    /// A domain waited for did not stop in time.
    #[error("domain {domid} did not stop within {} s", waited.as_secs())]
    StillRunning {
        /// The domain.
        domid: DomId,
        /// How long it was waited for.
        waited: std::time::Duration,
    },
    /// A restart needs the configuration the domain was made from.
    #[error("no configuration to restart domain {0} from")]
    NoRecord(DomId),
    /// `xl network-attach` with a MAC another vif of the guest has.
    #[error("the guest already has a vif with mac {}", mac_text(.0))]
    VifMacInUse([u8; 6]),
    /// `xl network-detach` of a vif the guest does not have.
    #[error("no vif {0} (give its device id or its MAC, as `xl network-list` shows them)")]
    NoSuchVif(String),
    /// The console is streamed on its own connection.
    #[error("the console is a stream; it is served separately")]
    ConsoleIsStream,
    /// `xl trace` could not trace.
    #[error(transparent)]
    Trace(#[from] crate::trace::TraceError),
    /// Device setup, or the core below it, refused.
    #[error(transparent)]
    Machine(#[from] crate::devices::DeviceError),
    /// The core refused.
    #[error(transparent)]
    Core(#[from] hyp::Error),
}

/// A MAC as Xen prints it.
fn mac_text(mac: &[u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}
