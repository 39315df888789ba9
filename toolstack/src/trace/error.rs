//! Why `xl trace` cannot ask for, analyse or draw a trace.

use protocol::control::TRACE_MAX_REQUESTS;
use std::path::PathBuf;

/// Longest trace `xl trace --timeout` asks for, in seconds.
pub const MAX_TIMEOUT_S: u64 = 3600;

/// Why a trace cannot be asked for, analysed or drawn.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// `--requests` is out of range.
    #[error("--requests {0}: trace 1 to {TRACE_MAX_REQUESTS} requests")]
    Requests(u32),
    /// `--timeout` is out of range.
    #[error("--timeout {0}: give 1 to {MAX_TIMEOUT_S} seconds")]
    Timeout(u64),
    /// The dump gives no TSC frequency, so no tick can be read as time.
    #[error("the trace has no TSC frequency (tsc_khz is 0): cannot time its records")]
    NoTscFrequency,
    /// No request was both built and seen completed during the trace.
    #[error(
        "no complete request in the trace ({records} records of the device{}): did the guest use the device while it ran?",
        if *timed_out { ", timed out" } else { "" }
    )]
    NoCompleteRequest {
        /// Valid records of the device in the dump.
        records: usize,
        /// True if the timeout ended the trace.
        timed_out: bool,
    },
    /// The picture could not be written.
    #[error("{}: cannot write the picture: {source}", path.display())]
    WriteSvg {
        /// Where it was to go.
        path: PathBuf,
        /// Why it could not.
        source: std::io::Error,
    },
}
