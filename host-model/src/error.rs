//! What can go wrong starting a host-model device.

/// Why a device could not be started.
#[derive(Debug, thiserror::Error)]
pub enum HostModelError {
    /// A step of the set-up failed in the host kernel.
    #[error("host model: {what}: {source}")]
    Host {
        /// The step.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// Maps an I/O error into [`HostModelError::Host`] naming the step.
pub(crate) fn host(what: &'static str) -> impl FnOnce(std::io::Error) -> HostModelError {
    move |source| HostModelError::Host { what, source }
}
