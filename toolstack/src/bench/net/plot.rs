//! The network panel of the plot: each path against native, per
//! measurement, as bars labelled with the figure itself.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::summary::NetSummary;

/// One colour per path, in [`super::sample::Path::ALL`] order (the
/// block panels' colours for native, host and service VM).
const COLOURS: [RGBColor; 5] = [
    RGBColor(46, 139, 87),
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(140, 190, 230),
    RGBColor(240, 150, 150),
];

/// The error of a plot step.
fn err(e: impl std::fmt::Display) -> String {
    format!("plot: {e}")
}

/// Draws the network panel on `area`: per measurement and path, how it
/// compares with native (higher is better: native's latency over the
/// path's, or the path's Gbit/s over native's; log scale), each bar
/// labelled with the path's own figure. A path that measured nothing has
/// no bar.
pub fn draw(area: &DrawingArea<SVGBackend<'_>, Shift>, net: &NetSummary) -> Result<(), String> {
    let paths = net.paths.len() as f64;
    let group = paths + 1.0;
    let n = net.workloads.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "network: each path against native, higher is better (log scale; {} rounds, {} MiB streams)",
                net.rounds, net.stream_mib
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(10)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..n * group, (0.001f64..60f64).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_desc("x native")
        .draw()
        .map_err(err)?;
    for (k, w) in net.workloads.iter().enumerate() {
        let base = k as f64 * group;
        for (p, name) in net.paths.iter().enumerate() {
            let f = &w.paths[name];
            let (Some(ratio), Some(value)) = (f.ratio_to_native, f.median_us.or(f.gbit_s)) else {
                continue;
            };
            let better = if w.unit == "us" { 1.0 / ratio } else { ratio };
            let height = better.clamp(0.0011, 3.5);
            let x0 = base + p as f64 + 0.55;
            let colour = COLOURS[p % COLOURS.len()];
            let bar = Rectangle::new([(x0, 0.001), (x0 + 0.9, height)], colour.filled());
            chart.draw_series(std::iter::once(bar)).map_err(err)?;
            let label = match w.unit {
                "us" => format!("{value:.0} µs"),
                _ => format!("{value:.2} Gb/s"),
            };
            let text = Text::new(label, (x0, height * 1.2), ("sans-serif", 10));
            chart.draw_series(std::iter::once(text)).map_err(err)?;
        }
        let title = Text::new(w.name.to_string(), (base + 0.6, 8.0), ("sans-serif", 13));
        chart.draw_series(std::iter::once(title)).map_err(err)?;
    }
    for (p, name) in net.paths.iter().enumerate() {
        let colour = COLOURS[p % COLOURS.len()];
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)
}
