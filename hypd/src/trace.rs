//! `xl trace`: a session over every party's trace ring
//! ([`protocol::trace`]) while a guest's next requests on one device go
//! through, and the records that belong to them.
//!
//! The rings: the guest's (the top of its RAM), its backend's (Domain-0's,
//! at the top of Domain-0's RAM, or the host model's in this process), and
//! for Domain-0's placement the core's (the doorbell threads). The session
//! starts the backend's rings before the guest's, so every request the
//! guest records has its backend's steps too, and ends the guest's first.
//! Nothing here waits on a guest: the session ends after `requests`
//! completions, a full guest ring, the timeout, or the guest's end
//! (power-off, crash, destruction: its memory stays mapped while the
//! session holds the domain), whichever comes first, and the records so
//! far are returned. A guest's ring is read as untrusted bytes
//! ([`protocol::trace::TraceRing::collect`]).

use crate::devices::Placement;
use crate::Machine;
use hyp::Domain;
use protocol::control::{RingDump, TraceDump, TraceRequest, TRACE_MAX_REQUESTS};
use protocol::device::{kind, GuestDevice};
use protocol::domain::{DomId, DomainState, DOM0};
use protocol::trace::{Party, Record, Step, TraceRing};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the session looks at the guest's ring for completions.
const POLL: Duration = Duration::from_millis(2);
/// How long writers get to finish a record they claimed before the rings
/// are read.
const GRACE: Duration = Duration::from_millis(2);
/// Longest session `xl trace` may ask for.
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// One session at a time: the rings are shared by every guest.
static SESSION: Mutex<()> = Mutex::new(());
/// The last session's number.
static LAST_SESSION: AtomicU32 = AtomicU32::new(0);

/// Why a trace could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// `--requests` out of range.
    #[error("--requests must be 1 to {TRACE_MAX_REQUESTS} (a guest's trace ring holds that many), not {0}")]
    Requests(u32),
    /// The guest is gone.
    #[error("domain {0} does not exist")]
    Gone(DomId),
    /// Domain-0 is a backend, not a traced guest.
    #[error("Domain-0 serves devices and has none to trace; name a guest (its requests show Domain-0's steps)")]
    Dom0,
    /// The guest has no disk and none was named.
    #[error("domain {0} has no disk to trace")]
    NoDisk(DomId),
    /// The guest has no device of that name.
    #[error("domain {domid} has no device {vdev}")]
    NoDevice {
        /// The guest.
        domid: DomId,
        /// The name asked for.
        vdev: String,
    },
    /// Only block devices have trace points yet.
    #[error("device {0} is not a disk: only disks (vbd) are traced so far")]
    NotTraced(String),
    /// Another `xl trace` holds the rings.
    #[error("another trace session is running; try again when it ends")]
    Busy,
}

/// Records `request.requests` requests of guest `domid`'s device.
pub fn trace(
    machine: &Machine,
    domid: DomId,
    request: &TraceRequest,
) -> Result<TraceDump, TraceError> {
    if request.requests == 0 || request.requests > TRACE_MAX_REQUESTS {
        return Err(TraceError::Requests(request.requests));
    }
    if domid == DOM0 {
        return Err(TraceError::Dom0);
    }
    let core = machine.core();
    let guest = core.domain(domid).ok_or(TraceError::Gone(domid))?;
    let device = pick(&machine.devices(domid), domid, request.vdev.as_deref())?;
    let placement = machine.placement(domid).ok_or(TraceError::Gone(domid))?;
    let dom0 = core.domain(DOM0);
    let _session = SESSION.try_lock().map_err(|_| TraceError::Busy)?;
    let session = next_session();
    let guest_ring = guest.trace_ring();
    let dom0_ring = dom0.as_ref().map(|d| d.trace_ring());
    let mut backends: Vec<(Party, &TraceRing, i64)> = match (placement, &dom0_ring) {
        (Placement::Host, _) => vec![(Party::HostModel, host_model::trace::ring(), 0)],
        (_, Some(ring)) => vec![
            (
                Party::Dom0,
                &**ring,
                dom0.as_ref().map_or(0, |d| d.tsc_offset()),
            ),
            (Party::Core, hyp::trace::core_ring(), 0),
        ],
        (_, None) => Vec::new(),
    };
    backends.iter().for_each(|(_, ring, _)| ring.begin(session));
    guest_ring.begin(session);
    let page = (device.mmio_base >> 12) as u32;
    let timeout = Duration::from_millis(u64::from(request.timeout_ms)).min(MAX_TIMEOUT);
    let ended = wait(
        &guest,
        &guest_ring,
        session,
        page,
        request.requests,
        timeout,
    );
    guest_ring.end();
    backends.iter().for_each(|(_, ring, _)| ring.end());
    std::thread::sleep(GRACE);
    let mut rings = vec![dump(
        &guest_ring,
        session,
        Party::Guest,
        guest.tsc_offset(),
        |r| r.data[0] == page,
    )];
    backends.sort_by_key(|(party, _, _)| *party);
    for (party, ring, offset) in backends {
        rings.push(dump(ring, session, party, offset, |r| {
            r.domain == domid && r.data[0] == page
        }));
    }
    Ok(TraceDump {
        domid,
        name: guest.name(),
        vdev: device.vdev().to_string(),
        kind: "vbd".into(),
        placement: placement.name().into(),
        device: page,
        tsc_khz: guest.tsc_khz(),
        requested: request.requests,
        timed_out: ended == Ended::TimedOut,
        stopped: ended == Ended::Stopped,
        rings,
    })
}

/// The device to trace: the one named, or the first disk.
fn pick(
    devices: &[GuestDevice],
    domid: DomId,
    vdev: Option<&str>,
) -> Result<GuestDevice, TraceError> {
    let device = match vdev {
        Some(name) => {
            devices
                .iter()
                .find(|d| d.vdev() == name)
                .ok_or_else(|| TraceError::NoDevice {
                    domid,
                    vdev: name.to_string(),
                })?
        }
        None => devices
            .iter()
            .find(|d| d.kind == kind::BLOCK)
            .ok_or(TraceError::NoDisk(domid))?,
    };
    if device.kind != kind::BLOCK {
        return Err(TraceError::NotTraced(device.vdev().to_string()));
    }
    Ok(*device)
}

fn next_session() -> u32 {
    let n = LAST_SESSION.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    if n == 0 {
        LAST_SESSION.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
    } else {
        n
    }
}

/// What ended a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// The requests asked for completed, or the guest's ring filled.
    Done,
    /// The timeout passed first.
    TimedOut,
    /// The guest stopped first.
    Stopped,
}

/// Waits until the guest has seen `requests` completions on the device,
/// filled its ring, stopped, or `timeout` passed.
fn wait(
    guest: &Domain,
    ring: &TraceRing,
    session: u32,
    page: u32,
    requests: u32,
    timeout: Duration,
) -> Ended {
    let deadline = Instant::now() + timeout;
    loop {
        std::thread::sleep(POLL);
        let got = ring.collect(session, Party::Guest);
        if completed(&got.records, page) >= requests as usize || got.dropped > 0 {
            return Ended::Done;
        }
        if !matches!(
            guest.state(),
            DomainState::Running | DomainState::Blocked | DomainState::Paused
        ) {
            return Ended::Stopped;
        }
        if Instant::now() >= deadline {
            return Ended::TimedOut;
        }
    }
}

/// Requests of the device both built and seen completed in `records`
/// (a request built before the session does not count).
fn completed(records: &[Record], page: u32) -> usize {
    let mut open = std::collections::HashSet::new();
    let mut done = 0;
    for record in records.iter().filter(|r| r.data[0] == page) {
        if record.step == Step::Built as u8 {
            open.insert(record.request);
        } else if record.step == Step::Seen as u8 && open.remove(&record.request) {
            done += 1;
        }
    }
    done
}

/// One ring's records of the session that `keep` keeps, on the host's
/// clock.
fn dump(
    ring: &TraceRing,
    session: u32,
    party: Party,
    tsc_offset: i64,
    keep: impl Fn(&Record) -> bool,
) -> RingDump {
    let got = ring.collect(session, party);
    RingDump {
        party,
        records: got
            .records
            .into_iter()
            .filter(|r| keep(r))
            .map(|r| Record {
                tsc: r.tsc.wrapping_sub(tsc_offset as u64),
                ..r
            })
            .collect(),
        dropped: got.dropped,
        invalid: got.invalid,
    }
}
