//! `xl trace`: one block request's journey through every party, from the
//! guest's driver through its backend (Domain-0's or the host model's),
//! the core and the host kernel, and back.
//!
//! `hypd` records the guest's next requests on one device in every
//! party's trace ring ([`protocol::trace`]) and answers with their records
//! ([`protocol::control::TraceDump`]). This module joins them into
//! journeys (by available index and by time), picks the median request by
//! latency and times every step over all of them ([`analyse`],
//! [`Analysis`]), and draws the median request as swim lanes ([`svg()`]).

mod error;
mod journey;
mod report;
mod svg;
#[cfg(test)]
mod tests;

use protocol::control::{TraceRequest, TRACE_MAX_REQUESTS};
use std::time::Duration;

pub use error::{TraceError, MAX_TIMEOUT_S};
pub use journey::{journeys, Journey, Journeys, Point};
pub use report::{analyse, Analysis, JourneyStep, KernelSpan, Latency, Losses, StepStats};
pub use svg::{svg, write_svg};

/// How much longer than the trace's timeout `xl` waits for `hypd`'s
/// reply: the rings are collected and sent after the session ends.
const REPLY_MARGIN: Duration = Duration::from_secs(15);

/// The request for `xl trace DOMAIN [--device VDEV] --requests N
/// --timeout SECONDS`, its numbers checked.
pub fn request(
    domain: String,
    vdev: Option<String>,
    requests: u32,
    timeout_s: u64,
) -> Result<TraceRequest, TraceError> {
    if !(1..=TRACE_MAX_REQUESTS).contains(&requests) {
        return Err(TraceError::Requests(requests));
    }
    if !(1..=MAX_TIMEOUT_S).contains(&timeout_s) {
        return Err(TraceError::Timeout(timeout_s));
    }
    Ok(TraceRequest {
        domain,
        vdev,
        requests,
        timeout_ms: (timeout_s * 1000) as u32,
    })
}

/// How long to wait for `hypd`'s answer to `request`: its timeout and a
/// margin for collecting the rings.
pub fn reply_timeout(request: &TraceRequest) -> Duration {
    Duration::from_millis(request.timeout_ms.into()) + REPLY_MARGIN
}
