//! `xl trace --svg`: the median request as swim lanes, one per party (the
//! guest, its backend, the core, the host kernel), time since submit
//! across. Each step is a dot on its party's lane; each crossing from one
//! lane to another is an arrow labelled with how long it took; the host
//! kernel's `io_uring_enter` is a box. Dots of one lane that nearly touch
//! are a cluster, labelled as one list above them, a line per step; labels
//! that would overlap on a lane are lifted, and the lane grows to fit.

use protocol::text::escape_controls;
use protocol::trace::Party;
use std::fmt::Write;
use std::path::Path;

use super::error::TraceError;
use super::report::{Analysis, JourneyStep};
use crate::config::Placement;

/// Width of the picture.
const WIDTH: f64 = 1100.0;
/// Left of the time axis (lane names go before it).
const LEFT: f64 = 130.0;
/// Right margin (room for the last labels).
const RIGHT: f64 = 90.0;
/// Top of the first lane (the title goes above it).
const TOP: f64 = 80.0;
/// Height of a lane whose labels fit; one whose labels stack higher grows
/// upwards.
const LANE: f64 = 120.0;
/// Height of a line of a stack of step labels.
const LINE: f64 = 13.0;
/// Dots of one lane nearer than this many pixels are one cluster.
const CLUSTER: f64 = 12.0;
/// Width of a character of an 11-pixel label, estimated generously.
const CHAR: f64 = 6.6;
/// Room between a cluster's last dot and its labels, and between labels
/// side by side.
const GAP: f64 = 8.0;
/// Room under the lanes for the axis.
const BOTTOM: f64 = 60.0;
/// Colour of each lane's dots, top to bottom.
const COLOURS: [&str; 4] = ["#2e8b57", "#1f77b4", "#9467bd", "#d62728"];
/// Background of the lanes, alternately.
const FILLS: [&str; 2] = ["#f4f4f4", "#fbfbfb"];

/// The labels of a run of steps on one lane whose dots nearly touch, as a
/// list, one line each, earliest at the top.
struct Cluster {
    /// Its lane.
    lane: usize,
    /// Where its lines start, right of its dots, or end, left of them if
    /// there is no room on the right.
    x: f64,
    /// `x`'s SVG `text-anchor`: `start` or `end`.
    anchor: &'static str,
    /// The row its last line is on: row 0 is just above the dots, each row
    /// one `LINE` higher.
    row: usize,
    /// One line per step; those after the first say how long after the
    /// previous step they came.
    lines: Vec<String>,
}

/// `text` made safe inside SVG text or an attribute: control characters
/// escaped as `xl` prints them, then XML's special characters.
fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in escape_controls(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A tick spacing of 1, 2 or 5 times a power of ten giving at most about
/// eight ticks over `span`.
fn tick_step(span: f64) -> f64 {
    let raw = span / 8.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// The lanes, top to bottom: the parties the journey has (the backend's
/// is named for the placement), then the host kernel if it has a span.
fn lanes(analysis: &Analysis) -> Vec<(Option<Party>, &'static str)> {
    let backend = match analysis.placement == Placement::Host.as_str() {
        true => Party::HostModel,
        false => Party::Dom0,
    };
    let has = |party| analysis.median_journey.iter().any(|s| s.party == party);
    let mut lanes = vec![
        (Some(Party::Guest), Party::Guest.name()),
        (Some(backend), backend.name()),
    ];
    if has(Party::Core) {
        lanes.push((Some(Party::Core), Party::Core.name()));
    }
    if analysis.host_kernel.is_some() {
        lanes.push((None, "host kernel"));
    }
    lanes
}

/// The labels of `steps`, whose dots are at `xs` on `lanes`, clustered,
/// each cluster on the lowest rows where it overlaps no label before it.
fn clusters(steps: &[JourneyStep], xs: &[f64], lanes: &[usize]) -> Vec<Cluster> {
    // Each line placed so far: its lane, row, left and right.
    let mut taken: Vec<(usize, usize, f64, f64)> = Vec::new();
    let mut clusters = Vec::new();
    let mut first = 0;
    while first < steps.len() {
        let (lane, mut end) = (lanes[first], first + 1);
        while end < steps.len() && lanes[end] == lane && xs[end] - xs[end - 1] < CLUSTER {
            end += 1;
        }
        let lines: Vec<String> = (first..end)
            .map(|i| match i == first {
                true => steps[i].step.describe().to_string(),
                false => format!(
                    "{} (+{:.1} µs)",
                    steps[i].step.describe(),
                    steps[i].us_since_prev
                ),
            })
            .collect();
        let width = CHAR * lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
        let (x, anchor, left) = match xs[end - 1] + GAP + width > WIDTH - GAP {
            true => (xs[first] - GAP, "end", xs[first] - GAP - width),
            false => (xs[end - 1] + GAP, "start", xs[end - 1] + GAP),
        };
        let right = left + width;
        let free = |row: usize| {
            taken
                .iter()
                .all(|&(l, r, a, b)| l != lane || r != row || b + GAP <= left || right + GAP <= a)
        };
        let row = (0..).find(|&b| (b..b + lines.len()).all(free)).unwrap_or(0);
        taken.extend((row..row + lines.len()).map(|r| (lane, r, left, right)));
        clusters.push(Cluster {
            lane,
            x,
            anchor,
            row,
            lines,
        });
        first = end;
    }
    clusters
}

/// The top of each of `lanes` lanes, from `TOP` down, and the y of its
/// dots, each lane tall enough for its `clusters` above its dots and
/// `LANE / 2` below them; then the bottom of the last.
fn bands(lanes: usize, clusters: &[Cluster]) -> (Vec<(f64, f64)>, f64) {
    let mut top = TOP;
    let bands = (0..lanes)
        .map(|lane| {
            let rows = clusters
                .iter()
                .filter(|c| c.lane == lane)
                .map(|c| c.row + c.lines.len())
                .max()
                .unwrap_or(0);
            let dots = top + (LANE / 2.0).max(14.0 + LINE * rows as f64);
            let band = (top, dots);
            top = dots + LANE / 2.0;
            band
        })
        .collect();
    (bands, top)
}

/// The picture of `analysis`'s median request, as SVG text.
pub fn svg(analysis: &Analysis) -> String {
    let lanes = lanes(analysis);
    let total = analysis
        .median_journey
        .iter()
        .map(|s| s.us_since_submit)
        .chain(analysis.host_kernel.map(|k| k.end_us))
        .fold(1e-3, f64::max);
    let x = |us: f64| LEFT + us / total * (WIDTH - LEFT - RIGHT);
    let lane_of = |party: Party| {
        // A party with no lane of its own (the other backend) joins the
        // backend's.
        lanes
            .iter()
            .position(|(p, _)| *p == Some(party))
            .unwrap_or(1)
    };
    let steps = &analysis.median_journey;
    let xs: Vec<f64> = steps.iter().map(|s| x(s.us_since_submit)).collect();
    let step_lanes: Vec<usize> = steps.iter().map(|s| lane_of(s.party)).collect();
    let clusters = clusters(steps, &xs, &step_lanes);
    let (bands, bottom) = bands(lanes.len(), &clusters);
    let height = bottom + BOTTOM;
    let y = |lane: usize| bands[lane].1;
    let mut out = String::new();
    let w = &mut out;
    // Writing to a String cannot fail.
    let _ = writeln!(
        w,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        w,
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#444\"/></marker></defs>"
    );
    let _ = writeln!(w, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        w,
        r#"<text x="{LEFT}" y="28" font-size="18">xl trace: {} (id {}), {}, {}: the median of {} requests</text>"#,
        escape(&analysis.name),
        analysis.domain,
        escape(&analysis.vdev),
        escape(&analysis.placement),
        analysis.requests
    );
    let _ = writeln!(
        w,
        r##"<text x="{LEFT}" y="50" font-size="13" fill="#555">avail index {}: {:.1} µs from submit to completion seen (median {:.1} µs, p99 {:.1} µs)</text>"##,
        analysis.median_request,
        analysis
            .median_journey
            .last()
            .map_or(0.0, |s| s.us_since_submit),
        analysis.latency.median_us,
        analysis.latency.p99_us
    );
    for (i, ((_, name), &(top, dots))) in lanes.iter().zip(&bands).enumerate() {
        let _ = writeln!(
            w,
            r#"<rect x="0" y="{:.1}" width="{WIDTH}" height="{:.1}" fill="{}"/><text x="12" y="{:.1}" font-size="14" fill="{}">{}</text>"#,
            top,
            dots + LANE / 2.0 - top,
            FILLS[i % FILLS.len()],
            dots + 5.0,
            COLOURS[i % COLOURS.len()],
            escape(name)
        );
    }
    axis(w, total, bottom, &x);
    if let Some(kernel) = &analysis.host_kernel {
        let lane = lanes.len() - 1;
        let (left, right) = (x(kernel.start_us), x(kernel.end_us));
        let _ = writeln!(
            w,
            r##"<rect x="{left:.1}" y="{:.1}" width="{:.1}" height="36" fill="#d62728" fill-opacity="0.3" stroke="#d62728"/><text x="{left:.1}" y="{:.1}" font-size="12">io_uring_enter: {:.1} µs</text>"##,
            y(lane) - 18.0,
            (right - left).max(2.0),
            y(lane) + 34.0,
            kernel.end_us - kernel.start_us
        );
    }
    for (i, to) in steps.iter().enumerate().skip(1) {
        let (a, b) = (step_lanes[i - 1], step_lanes[i]);
        if a == b {
            continue;
        }
        let (x1, y1, x2, y2) = (xs[i - 1], y(a), xs[i], y(b));
        let _ = writeln!(
            w,
            r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="#444" stroke-width="1.2" marker-end="url(#arrow)"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#444">{:.1} µs</text>"##,
            (x1 + x2) / 2.0 + 5.0,
            (y1 + y2) / 2.0,
            to.us_since_prev
        );
    }
    for (i, &cx) in xs.iter().enumerate() {
        let _ = writeln!(
            w,
            r#"<circle cx="{cx:.1}" cy="{:.1}" r="5" fill="{}"/>"#,
            y(step_lanes[i]),
            COLOURS[step_lanes[i] % COLOURS.len()]
        );
    }
    for cluster in &clusters {
        labels(w, cluster, y(cluster.lane));
    }
    let _ = writeln!(w, "</svg>");
    out
}

/// `cluster`'s lines, over its lane's dots at `dots`, each haloed in the
/// lane's background so that an arrow under it does not hide it.
fn labels(w: &mut String, cluster: &Cluster, dots: f64) {
    let last = cluster.lines.len().saturating_sub(1);
    for (i, line) in cluster.lines.iter().enumerate() {
        let row = cluster.row + last - i;
        let _ = writeln!(
            w,
            r#"<text class="step" x="{:.1}" y="{:.1}" font-size="11" text-anchor="{}" stroke="{}" stroke-width="3" stroke-linejoin="round" paint-order="stroke">{}</text>"#,
            cluster.x,
            dots - 10.0 - LINE * row as f64,
            cluster.anchor,
            FILLS[cluster.lane % FILLS.len()],
            escape(line)
        );
    }
}

/// The time axis at `bottom`: ticks in µs since submit up to `total`.
fn axis(w: &mut String, total: f64, bottom: f64, x: &impl Fn(f64) -> f64) {
    let _ = writeln!(
        w,
        r##"<line x1="{LEFT}" y1="{bottom}" x2="{:.1}" y2="{bottom}" stroke="#000"/>"##,
        x(total)
    );
    let step = tick_step(total);
    let ticks = (total / step).floor() as usize;
    // Enough decimals to tell a tick of 0.05 µs from the next.
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    for i in 0..=ticks {
        let us = step * i as f64;
        let _ = writeln!(
            w,
            r##"<line x1="{0:.1}" y1="{bottom}" x2="{0:.1}" y2="{1}" stroke="#000"/><line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{bottom}" stroke="#ddd"/><text x="{0:.1}" y="{2}" font-size="11" text-anchor="middle">{us:.3$}</text>"##,
            x(us),
            bottom + 5.0,
            bottom + 18.0,
            decimals
        );
    }
    let _ = writeln!(
        w,
        r#"<text x="{:.1}" y="{}" font-size="12" text-anchor="middle">µs since submit</text>"#,
        (LEFT + x(total)) / 2.0,
        bottom + 40.0
    );
}

/// Writes the picture of `analysis` to `path`.
pub fn write_svg(analysis: &Analysis, path: &Path) -> Result<(), TraceError> {
    std::fs::write(path, svg(analysis)).map_err(|source| TraceError::WriteSvg {
        path: path.to_path_buf(),
        source,
    })
}
