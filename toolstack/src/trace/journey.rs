//! Records to journeys: every step one request took, from the guest's
//! `Built` to its `Seen`, gathered from every party's ring.
//!
//! Available-ring indices wrap at 65536 and are reused, so a record joins
//! a request by time as well as by id: the journey of the guest's `Built`
//! for index `r` ends at the guest's first `Seen` for `r` after it, and
//! every other record for `r` inside that window is the journey's (the
//! first of each step). A publish names a range of indices (the last one
//! and how many), and its kick decision follows it. Batch steps join every
//! request whose window holds them:
//!
//! * `Doorbell`: the first after the request's `Queued`, before its
//!   `Completed` (or its `Seen` if that is missing);
//! * `DoorbellWoken`, `EnterStart`, `EnterEnd`: the first of each after
//!   the journey's `Doorbell` (after its `Queued` in the host model, whose
//!   worker enters the kernel itself), each after the one before it,
//!   before the same bound;
//! * `Interrupt`: the first after the request's `Used` (its `Completed`
//!   if that is missing), before its `Seen`.
//!
//! A step whose anchor is missing is missing too.

use protocol::control::TraceDump;
use protocol::trace::{Party, Record, Step};
use std::collections::HashMap;

use crate::config::Placement;

/// One step of one journey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Point {
    /// What happened.
    pub step: Step,
    /// Who did it.
    pub party: Party,
    /// When (host TSC).
    pub tsc: u64,
    /// The step's `data[1]`.
    pub data: u32,
}

/// One complete request's journey: its steps in time order, from its
/// `Built` to its `Seen`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Journey {
    /// The available index it was published at.
    pub request: u32,
    /// Its steps, in time order: `Built` first, `Seen` last.
    pub points: Vec<Point>,
}

impl Journey {
    /// Its `step`, if it has one.
    pub fn get(&self, step: Step) -> Option<&Point> {
        self.points.iter().find(|p| p.step == step)
    }

    /// When it was built (host TSC).
    pub fn built(&self) -> u64 {
        self.points.first().map_or(0, |p| p.tsc)
    }

    /// Ticks from `Built` to `Seen`.
    pub fn latency_ticks(&self) -> u64 {
        self.points.last().map_or(0, |p| p.tsc) - self.built()
    }
}

/// The journeys of a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Journeys {
    /// The complete ones, in the order their requests were built.
    pub complete: Vec<Journey>,
    /// Requests built but not seen completed before the trace ended.
    pub incomplete: usize,
    /// The device's valid records.
    pub records: usize,
}

/// One guest publish: the indices it made visible and its kick decision.
struct Publish {
    /// The `Published` record.
    point: Point,
    /// The last index made visible.
    last: u32,
    /// The `Kicked` record that followed it.
    kick: Option<Point>,
}

impl Publish {
    /// True if this publish made index `request` visible.
    fn covers(&self, request: u32) -> bool {
        (self.last.wrapping_sub(request) & 0xffff) < self.point.data
    }
}

/// A valid record of the traced device: its id and its point.
fn decode(record: &Record) -> Option<(u32, Point)> {
    let party = Party::from_raw(record.party)?;
    let step = Step::from_raw(record.step).filter(|s| s.party_may_write(party))?;
    let point = Point {
        step,
        party,
        tsc: record.tsc,
        data: record.data[1],
    };
    Some((record.request, point))
}

/// The first point of `points` (sorted by time) in `from..=to`.
fn first_in(points: &[Point], from: u64, to: u64) -> Option<Point> {
    let at = points.partition_point(|p| p.tsc < from);
    points.get(at).filter(|p| p.tsc <= to).copied()
}

/// The device's records, indexed for matching.
struct Index {
    /// The guest's `Built` and `Seen` points with their ids, in time order.
    lifecycle: Vec<(u32, Point)>,
    /// The guest's publishes, in time order.
    publishes: Vec<Publish>,
    /// The backends' per-request points by id, each list in time order.
    requests: HashMap<u32, Vec<Point>>,
    /// The batch points by step, each list in time order.
    batches: HashMap<Step, Vec<Point>>,
    /// How many valid records of the device there were.
    records: usize,
}

impl Index {
    /// Indexes the records of `dump`'s domain and device.
    fn new(dump: &TraceDump) -> Self {
        let mut points: Vec<(u32, Point)> = dump
            .rings
            .iter()
            .flat_map(|ring| &ring.records)
            .filter(|r| r.domain == dump.domid && r.data[0] == dump.device)
            .filter_map(decode)
            .collect();
        points.sort_by_key(|(_, p)| p.tsc);
        let mut index = Index {
            records: points.len(),
            lifecycle: Vec::new(),
            publishes: Vec::new(),
            requests: HashMap::new(),
            batches: HashMap::new(),
        };
        for (request, point) in points {
            match point.step {
                Step::Built | Step::Seen => index.lifecycle.push((request, point)),
                Step::Published => index.publishes.push(Publish {
                    point,
                    last: request,
                    kick: None,
                }),
                Step::Kicked => {
                    // The decision after the publish just before it.
                    if let Some(publish) = index
                        .publishes
                        .last_mut()
                        .filter(|p| p.kick.is_none() && p.last == request)
                    {
                        publish.kick = Some(point);
                    }
                }
                step if step.is_batch() => index.batches.entry(step).or_default().push(point),
                _ => index.requests.entry(request).or_default().push(point),
            }
        }
        index
    }

    /// The first batch point of `step` in `from..=to`.
    fn batch(&self, step: Step, from: u64, to: u64) -> Option<Point> {
        first_in(self.batches.get(&step)?, from, to)
    }

    /// The journey of request `request` from `built` to `seen`.
    fn journey(&self, request: u32, built: Point, seen: Point, host: bool) -> Journey {
        let end = seen.tsc;
        let mut points = vec![built, seen];
        if let Some(publish) = self.publishes
            [self.publishes.partition_point(|p| p.point.tsc < built.tsc)..]
            .iter()
            .take_while(|p| p.point.tsc <= end)
            .find(|p| p.covers(request))
        {
            points.push(publish.point);
            points.extend(publish.kick.filter(|k| k.tsc <= end));
        }
        if let Some(own) = self.requests.get(&request) {
            let from = own.partition_point(|p| p.tsc < built.tsc);
            for point in own[from..].iter().take_while(|p| p.tsc <= end) {
                if points.iter().all(|p| p.step != point.step) {
                    points.push(*point);
                }
            }
        }
        let step = |s: Step| points.iter().find(|p| p.step == s).map(|p| p.tsc);
        let bound = step(Step::Completed).unwrap_or(end);
        let written = step(Step::Used).or(step(Step::Completed));
        if let Some(queued) = step(Step::Queued) {
            let doorbell = self.batch(Step::Doorbell, queued, bound);
            points.extend(doorbell);
            let anchor = if host {
                Some(queued)
            } else {
                doorbell.map(|d| d.tsc)
            };
            if let Some(anchor) = anchor {
                let woken = self.batch(Step::DoorbellWoken, anchor, bound);
                let after_woken = woken.map_or(anchor, |w| w.tsc);
                let start = self.batch(Step::EnterStart, after_woken, bound);
                let after_start = start.map_or(after_woken, |s| s.tsc);
                // The CQE can be seen before `io_uring_enter` returns (the
                // kernel posts it inline): its end is bounded by `Seen`.
                let returned = self.batch(Step::EnterEnd, after_start, end);
                points.extend(woken.into_iter().chain(start).chain(returned));
            }
        }
        if let Some(written) = written {
            points.extend(self.batch(Step::Interrupt, written, end));
        }
        points.sort_by_key(|p| {
            (
                p.tsc,
                protocol::trace::STEPS.iter().position(|s| *s == p.step),
            )
        });
        Journey { request, points }
    }
}

/// The journeys in `dump`.
pub fn journeys(dump: &TraceDump) -> Journeys {
    let index = Index::new(dump);
    let host = dump.placement == Placement::Host.as_str();
    // Each id's open `Built`, waiting for its `Seen`.
    let mut open: HashMap<u32, Point> = HashMap::new();
    let mut incomplete = 0;
    let mut complete = Vec::new();
    for &(request, point) in &index.lifecycle {
        match point.step {
            // A second `Built` for the index: the first never completed.
            Step::Built => incomplete += usize::from(open.insert(request, point).is_some()),
            _ => {
                if let Some(built) = open.remove(&request) {
                    complete.push(index.journey(request, built, point, host));
                }
            }
        }
    }
    complete.sort_by_key(Journey::built);
    // The requests asked for: the first ones built (the session ends
    // at the next look after enough completed).
    complete.truncate(dump.requested as usize);
    Journeys {
        complete,
        incomplete: incomplete + open.len(),
        records: index.records,
    }
}
