//! The plot: latency distributions per workload and placement, and each
//! placement's throughput relative to native, as one SVG.

use plotters::prelude::*;
use std::path::Path;

use super::summary::BenchSummary;

/// One colour per placement, in [`super::options::PLACEMENTS`] order.
const COLOURS: [RGBColor; 5] = [
    RGBColor(46, 139, 87),
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
];

fn err(e: impl std::fmt::Display) -> String {
    format!("plot: {e}")
}

/// Height of the block panels.
const BLOCK_HEIGHT: u32 = 1000;
/// Height of the network panel.
const NET_HEIGHT: u32 = 440;

/// Writes the plot of `summary` to `path`: the block panels (if block
/// workloads ran), then the network panel (if the network ones did).
pub fn write(summary: &BenchSummary, path: &Path) -> Result<(), String> {
    let block = !summary.workloads.is_empty();
    let net = summary.net.as_ref();
    let height =
        40 + if block { BLOCK_HEIGHT } else { 0 } + if net.is_some() { NET_HEIGHT } else { 0 };
    let root = SVGBackend::new(path, (1260, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let title = match block {
        true => format!(
            "xl bench: native vs host model vs service VM ({} rounds x {} ms)",
            summary.rounds, summary.run_ms
        ),
        false => "xl bench: network, native vs host model vs service VM".to_string(),
    };
    let root = root.titled(&title, ("sans-serif", 22)).map_err(err)?;
    let (block_area, net_area) = match (block, net.is_some()) {
        (true, true) => {
            let (b, n) = root.split_vertically(BLOCK_HEIGHT);
            (Some(b), Some(n))
        }
        (true, false) => (Some(root.clone()), None),
        (false, _) => (None, Some(root.clone())),
    };
    if let Some(area) = block_area {
        let (top, bottom) = area.split_vertically(640);
        let columns = summary.workloads.len().div_ceil(2).max(1);
        let panels = top.split_evenly((2, columns));
        for (panel, w) in panels.iter().zip(&summary.workloads) {
            latency_panel(panel, summary, w)?;
        }
        throughput_panel(&bottom, summary)?;
    }
    if let (Some(area), Some(net)) = (net_area, net) {
        super::net::plot::draw(&area, net)?;
    }
    root.present().map_err(err)
}

/// One workload's latency distributions: the share of requests in each
/// histogram bucket, on a log latency axis.
fn latency_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    summary: &BenchSummary,
    w: &super::summary::WorkloadSummary,
) -> Result<(), String> {
    let bounds = &summary.histogram_bounds_us;
    // A bucket's point sits at its geometric middle (bucket 0: 0.7 µs).
    let centre = |i: usize| match i {
        0 => 0.7,
        _ => bounds[i] * 2f64.powf(0.25),
    };
    let used: Vec<usize> = summary
        .placements
        .iter()
        .flat_map(|p| {
            let h = &w.placements[p].histogram;
            h.iter().enumerate().filter(|(_, &c)| c > 0).map(|(i, _)| i)
        })
        .collect();
    let lo = used.iter().copied().min().unwrap_or(0);
    let hi = used.iter().copied().max().unwrap_or(1);
    let x_range = (centre(lo) / 1.5)..(centre(hi) * 1.5);
    let mut chart = ChartBuilder::on(area)
        .caption(w.name, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(42)
        .build_cartesian_2d(x_range.log_scale(), 0f64..1f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("latency (µs)")
        .y_desc("share of requests")
        .x_labels(6)
        .y_labels(5)
        .draw()
        .map_err(err)?;
    for (p, name) in summary.placements.iter().enumerate() {
        let h = &w.placements[name].histogram;
        let total = h.iter().sum::<u64>().max(1) as f64;
        let points = (lo..=hi).map(|i| (centre(i), h[i] as f64 / total));
        let colour = COLOURS[p % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)
}

/// Throughput of each placement relative to native, per workload (log
/// scale: depth-1 ratios are small).
fn throughput_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    summary: &BenchSummary,
) -> Result<(), String> {
    let n = summary.workloads.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "throughput relative to native (log scale)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(10)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..n * 4.0, (0.001f64..2.5f64).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_desc("x native")
        .draw()
        .map_err(err)?;
    for (k, w) in summary.workloads.iter().enumerate() {
        let base = k as f64 * 4.0;
        for (p, name) in summary.placements.iter().enumerate() {
            let ratio = w.placements[name].ratio_to_native.throughput.max(0.0011);
            let x0 = base + p as f64 + 0.55;
            let colour = COLOURS[p % COLOURS.len()];
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.001), (x0 + 0.9, ratio)],
                    colour.filled(),
                )))
                .map_err(err)?;
            let label = format!("{ratio:.2}");
            chart
                .draw_series(std::iter::once(Text::new(
                    label,
                    (x0, ratio * 1.25),
                    ("sans-serif", 11),
                )))
                .map_err(err)?;
        }
        chart
            .draw_series(std::iter::once(Text::new(
                w.name.to_string(),
                (base + 0.6, 1.9),
                ("sans-serif", 13),
            )))
            .map_err(err)?;
    }
    Ok(())
}
