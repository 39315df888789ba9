//! The analysis of a trace: the median request's journey step by step, and
//! every step's timing over all complete journeys; as text and as JSON.

use protocol::control::TraceDump;
use protocol::domain::DomId;
use protocol::text::escape_controls;
use protocol::trace::{Party, Step, STEPS};
use serde::Serialize;
use std::fmt;

use super::error::TraceError;
use super::journey::{journeys, Journey, Point};

/// What `xl trace` found: the median request's journey and every step's
/// timing. Built by [`analyse`]; printed by its `Display`, serialized as
/// `xl trace --json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Analysis {
    /// The guest's id.
    pub domain: DomId,
    /// The guest's name.
    pub name: String,
    /// The traced device's virtual name.
    pub vdev: String,
    /// Where its backend runs (`service-vm` or `host`).
    pub placement: String,
    /// Complete journeys traced (built and seen completed).
    pub requests: usize,
    /// Requests the trace waited for.
    pub requested: u32,
    /// Requests built but not seen completed before the trace ended.
    pub incomplete: usize,
    /// True if the timeout ended the trace first.
    pub timed_out: bool,
    /// True if the guest stopped during the trace, which ended it.
    pub stopped: bool,
    /// The parties whose rings dropped or refused records.
    pub dropped: Vec<Losses>,
    /// The available index the median request was published at.
    pub median_request: u32,
    /// The median request's steps, in time order.
    pub median_journey: Vec<JourneyStep>,
    /// The median request's time in the host kernel (its
    /// `io_uring_enter`), if its journey has both ends of it.
    pub host_kernel: Option<KernelSpan>,
    /// Every step some journey has, in journey order.
    pub steps: Vec<StepStats>,
    /// Latency, `Built` to `Seen`, over complete journeys.
    pub latency: Latency,
}

/// Records one party's rings lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Losses {
    /// The party.
    pub party: Party,
    /// Records its full rings dropped.
    pub dropped: u32,
    /// Slots of its rings not validly written.
    pub invalid: u32,
}

/// One step of the median request's journey.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JourneyStep {
    /// Who did it.
    pub party: Party,
    /// What happened.
    pub step: Step,
    /// What happened, in words, with the step's detail.
    pub what: String,
    /// µs since the journey's previous step.
    pub us_since_prev: f64,
    /// µs since the request was built.
    pub us_since_submit: f64,
}

/// The host kernel's work for a request: its `io_uring_enter`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct KernelSpan {
    /// Entered, µs since the request was built.
    pub start_us: f64,
    /// Returned, µs since the request was built.
    pub end_us: f64,
}

/// One step's timing over the journeys that have it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct StepStats {
    /// The step.
    pub step: Step,
    /// Who took it (in the first journey that has it).
    pub party: Party,
    /// Journeys that have it.
    pub count: usize,
    /// Median µs since `Built`.
    pub median_us: f64,
    /// 99th-percentile µs since `Built`.
    pub p99_us: f64,
    /// Median µs since the previous step of its journey.
    pub median_gap_us: f64,
    /// 99th-percentile µs since the previous step of its journey.
    pub p99_gap_us: f64,
}

/// Median and 99th percentile of a latency.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// Median, µs.
    pub median_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
}

impl Latency {
    /// The median and p99 of `values` (any order; not empty).
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        Self {
            median_us: median(&values),
            p99_us: p99(&values),
        }
    }
}

/// The median of sorted `values` (the upper one of an even count, as
/// `xl bench` takes it; 0 when empty).
fn median(values: &[f64]) -> f64 {
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The 99th percentile of sorted `values` by nearest rank (0 when empty).
fn p99(values: &[f64]) -> f64 {
    let rank = (values.len() * 99).div_ceil(100);
    values.get(rank.saturating_sub(1)).copied().unwrap_or(0.0)
}

impl Analysis {
    /// Each step's median µs since `Built`, in journey order (for `xl
    /// bench --trace`).
    pub fn step_medians(&self) -> Vec<(Step, f64)> {
        self.steps.iter().map(|s| (s.step, s.median_us)).collect()
    }
}

/// The detail of a step's `data[1]`, in words.
fn detail(point: &Point) -> Option<String> {
    let yes = point.data != 0;
    let text = match point.step {
        Step::Published => match point.data {
            1 => "1 request made visible".to_string(),
            n => format!("{n} requests made visible"),
        },
        Step::Kicked if yes => "rang the doorbell".into(),
        Step::Kicked => "no notify (device polling)".into(),
        Step::Seen if yes => "after an interrupt".into(),
        Step::Seen => "by spinning".into(),
        Step::Taken if yes => "while polling".into(),
        Step::Taken => "after a notification".into(),
        Step::Parsed => match point.data {
            0 => "a read".into(),
            1 => "a write".into(),
            2 => "a flush".into(),
            _ => return None,
        },
        Step::Queued => format!("{} bytes", point.data),
        Step::Interrupt if yes => "sent".into(),
        Step::Interrupt => "suppressed".into(),
        Step::Doorbell => match point.data {
            1 => "1 entry queued".to_string(),
            n => format!("{n} entries queued"),
        },
        Step::Completed => match point.data as i32 {
            bytes @ 0.. => format!("{bytes} bytes"),
            errno => format!("error {errno}"),
        },
        Step::EnterEnd => format!("returned {}", point.data as i32),
        _ => return None,
    };
    Some(text)
}

/// A step in words: what happened and its detail.
fn what(point: &Point) -> String {
    match detail(point) {
        Some(detail) => format!("{}: {detail}", point.step.describe()),
        None => point.step.describe().to_string(),
    }
}

/// Analyses `dump`: its journeys, the median one, every step's timing.
pub fn analyse(dump: &TraceDump) -> Result<Analysis, TraceError> {
    if dump.tsc_khz == 0 {
        return Err(TraceError::NoTscFrequency);
    }
    let us = |ticks: u64| ticks as f64 * 1000.0 / dump.tsc_khz as f64;
    let found = journeys(dump);
    let mut by_latency: Vec<&Journey> = found.complete.iter().collect();
    by_latency.sort_by_key(|j| j.latency_ticks());
    let Some(median_journey) = by_latency.get(by_latency.len() / 2) else {
        return Err(TraceError::NoCompleteRequest {
            records: found.records,
            timed_out: dump.timed_out,
        });
    };
    let built = median_journey.built();
    let steps = median_journey
        .points
        .iter()
        .enumerate()
        .map(|(i, point)| JourneyStep {
            party: point.party,
            step: point.step,
            what: what(point),
            us_since_prev: us(point.tsc - median_journey.points[i.saturating_sub(1)].tsc),
            us_since_submit: us(point.tsc - built),
        })
        .collect();
    let host_kernel = match (
        median_journey.get(Step::EnterStart),
        median_journey.get(Step::EnterEnd),
    ) {
        (Some(start), Some(end)) => Some(KernelSpan {
            start_us: us(start.tsc - built),
            end_us: us(end.tsc - built),
        }),
        _ => None,
    };
    Ok(Analysis {
        domain: dump.domid,
        name: dump.name.clone(),
        vdev: dump.vdev.clone(),
        placement: dump.placement.clone(),
        requests: found.complete.len(),
        requested: dump.requested,
        incomplete: found.incomplete,
        timed_out: dump.timed_out,
        stopped: dump.stopped,
        dropped: losses(dump),
        median_request: median_journey.request,
        median_journey: steps,
        host_kernel,
        steps: step_stats(&found.complete, us),
        latency: Latency::of(by_latency.iter().map(|j| us(j.latency_ticks())).collect()),
    })
}

/// The parties whose rings lost records, with how many.
fn losses(dump: &TraceDump) -> Vec<Losses> {
    let mut out: Vec<Losses> = Vec::new();
    // A guest's ring reports counts it may have forged: add them without
    // overflowing.
    for ring in dump.rings.iter().filter(|r| r.dropped > 0 || r.invalid > 0) {
        match out.iter_mut().find(|l| l.party == ring.party) {
            Some(l) => {
                l.dropped = l.dropped.saturating_add(ring.dropped);
                l.invalid = l.invalid.saturating_add(ring.invalid);
            }
            None => out.push(Losses {
                party: ring.party,
                dropped: ring.dropped,
                invalid: ring.invalid,
            }),
        }
    }
    out.sort_by_key(|l| l.party);
    out
}

/// Every step's timing over `journeys`, in [`STEPS`] order.
fn step_stats(journeys: &[Journey], us: impl Fn(u64) -> f64) -> Vec<StepStats> {
    STEPS
        .iter()
        .filter_map(|&step| {
            let mut party = None;
            let (mut since, mut gaps) = (Vec::new(), Vec::new());
            for journey in journeys {
                let Some(i) = journey.points.iter().position(|p| p.step == step) else {
                    continue;
                };
                let point = journey.points[i];
                party.get_or_insert(point.party);
                since.push(us(point.tsc - journey.built()));
                gaps.push(us(point.tsc - journey.points[i.saturating_sub(1)].tsc));
            }
            let count = since.len();
            let (since, gaps) = (Latency::of(since), Latency::of(gaps));
            party.map(|party| StepStats {
                step,
                party,
                count,
                median_us: since.median_us,
                p99_us: since.p99_us,
                median_gap_us: gaps.median_us,
                p99_gap_us: gaps.p99_us,
            })
        })
        .collect()
}

impl fmt::Display for Analysis {
    /// `xl trace`'s text: the header, the median journey, the table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "xl trace: domain {} (id {}), device {}, placement {}: {} requests traced",
            escape_controls(&self.name),
            self.domain,
            escape_controls(&self.vdev),
            escape_controls(&self.placement),
            self.requests
        )?;
        if self.incomplete > 0 {
            writeln!(f, "  {} more not seen completed", self.incomplete)?;
        }
        for l in &self.dropped {
            writeln!(
                f,
                "  {}: {} records dropped (ring full), {} invalid",
                l.party.name(),
                l.dropped,
                l.invalid
            )?;
        }
        if self.timed_out {
            writeln!(
                f,
                "  timed out before {} requests completed",
                self.requested
            )?;
        }
        if self.stopped {
            writeln!(f, "  the guest stopped during the trace, which ended it")?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "median request (avail index {}), {:.1} µs:",
            self.median_request, self.latency.median_us
        )?;
        writeln!(
            f,
            "  {:<11} {:<52} {:>9} {:>9}",
            "party", "what happened", "+µs", "µs"
        )?;
        for s in &self.median_journey {
            writeln!(
                f,
                "  {:<11} {:<52} {:>9.1} {:>9.1}",
                s.party.name(),
                s.what,
                s.us_since_prev,
                s.us_since_submit
            )?;
        }
        if let Some(k) = &self.host_kernel {
            writeln!(
                f,
                "  host kernel: io_uring_enter ran {:.1} µs ({:.1} to {:.1} µs)",
                k.end_us - k.start_us,
                k.start_us,
                k.end_us
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "every step over {} requests (µs since submit, and since the step before):",
            self.requests
        )?;
        writeln!(
            f,
            "  {:<24} {:<11} {:>6} {:>9} {:>9} {:>9} {:>9}",
            "step", "party", "count", "median", "p99", "gap med", "gap p99"
        )?;
        for s in &self.steps {
            writeln!(
                f,
                "  {:<24} {:<11} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                s.step.describe(),
                s.party.name(),
                s.count,
                s.median_us,
                s.p99_us,
                s.median_gap_us,
                s.p99_gap_us
            )?;
        }
        writeln!(
            f,
            "  latency: median {:.1} µs, p99 {:.1} µs",
            self.latency.median_us, self.latency.p99_us
        )
    }
}
