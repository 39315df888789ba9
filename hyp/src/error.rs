//! Errors the core reports to its callers.

use protocol::domain::DomId;

/// Everything that can go wrong in a core operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/dev/kvm` could not be opened or a KVM ioctl failed.
    #[error("KVM: {what}: {source}")]
    Kvm {
        /// The operation that failed.
        what: &'static str,
        /// The error KVM returned.
        source: kvm_ioctls::Error,
    },
    /// Guest RAM could not be created or mapped.
    #[error("guest memory: {0}")]
    Memory(String),
    /// The kernel image is not one the core can boot.
    #[error("kernel image: {0}")]
    Elf(#[from] crate::elf::ElfError),
    /// A domain configuration value is out of range.
    #[error("invalid domain configuration: {0}")]
    InvalidConfig(String),
    /// No domain has this id.
    #[error("no domain with id {0}")]
    NoSuchDomain(DomId),
    /// The operation does not apply to the domain in its current state.
    #[error("domain {domid}: {message}")]
    BadState {
        /// The domain.
        domid: DomId,
        /// What is wrong.
        message: String,
    },
    /// A host resource (thread, eventfd, ...) could not be had.
    #[error("host: {0}")]
    Host(#[from] std::io::Error),
}

/// Shorthand for the core's results.
pub type Result<T> = std::result::Result<T, Error>;

/// Maps a KVM ioctl error into [`Error::Kvm`] naming the operation.
pub(crate) fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
    move |source| Error::Kvm { what, source }
}
