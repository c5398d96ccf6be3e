//! `--plot FILE.svg`: latency by percentile and throughput over time, one
//! series per server (`net`) or engine (`fs`), drawn with plotters' SVG backend.

use std::io;
use std::path::Path;

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::load::TIMELINE_STEP;
use crate::net::{servers, Run};

/// Colours of the series, one per server in order.
const COLOURS: [RGBColor; 4] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

/// The percentile axis ends at 99.99 % (four nines).
const MAX_NINES: f64 = 4.0;

/// One line in each chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend.
    pub name: String,
    /// (nines, µs): the latency at quantile `1 - 10^-nines`, from 0 to 4 nines.
    pub latency: Vec<(f64, f64)>,
    /// (seconds since start, per second) per timeline step; may be empty.
    pub rates: Vec<(f64, f64)>,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Writes an SVG with two charts: latency by percentile (x in "nines": 0, 90,
/// 99, 99.9, 99.99 %), and requests/s over time in 100 ms steps, one series
/// per server (every round's latencies merged, the first round's timeline).
///
/// # Errors
///
/// The file cannot be written, or drawing fails; the message names the file.
pub fn plot(path: &Path, runs: &[Run]) -> io::Result<()> {
    draw(path, &series(runs), "req/s")
}

/// Writes the two charts of [`plot`] for any series; `rate` labels the
/// throughput axis (`req/s`, `IOPS`).
///
/// # Errors
///
/// As [`plot`].
pub fn draw(path: &Path, series: &[Series], rate: &str) -> io::Result<()> {
    let fail =
        |err: &dyn std::fmt::Display| io::Error::other(format!("--plot {}: {err}", path.display()));
    let root = SVGBackend::new(path, (900, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (top, bottom) = root.split_vertically(360);
    latency_chart(&top, series).map_err(|e| fail(&e))?;
    throughput_chart(&bottom, series, rate).map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

/// The latency curve of a histogram, every twentieth of a nine.
fn latency_points(latency: &Histogram<u64>) -> Vec<(f64, f64)> {
    (0..=(MAX_NINES * 20.0) as usize)
        .map(|step| {
            let x = step as f64 / 20.0;
            (x, latency.value_at_quantile(quantile_at(x)) as f64 / 1e3)
        })
        .collect()
}

fn series(runs: &[Run]) -> Vec<Series> {
    let step = TIMELINE_STEP.as_secs_f64();
    servers(runs)
        .into_iter()
        .filter_map(|name| {
            let mut mine = runs.iter().filter(|r| r.server == name);
            let first = mine.next()?;
            let mut latency = first.load.latency.clone();
            for other in mine {
                // Same bounds everywhere, so adding cannot fail.
                let _ = latency.add(&other.load.latency);
            }
            let rates = first
                .load
                .timeline
                .iter()
                .enumerate()
                .map(|(i, &n)| ((i as f64 + 0.5) * step, n as f64 / step))
                .filter(|(t, _)| *t <= first.load.elapsed.as_secs_f64())
                .collect();
            Some(Series {
                name,
                latency: latency_points(&latency),
                rates,
            })
        })
        .collect()
}

/// The quantile `x` nines along the percentile axis: `1 - 10^-x`.
fn quantile_at(nines: f64) -> f64 {
    1.0 - 10f64.powf(-nines)
}

/// How many nines `quantile` is along the percentile axis: `-log10(1 - q)`.
pub fn nines(quantile: f64) -> f64 {
    -(1.0 - quantile).max(1e-12).log10()
}

fn percentile_label(nines: &f64) -> String {
    let text = format!("{:.4}", 100.0 * quantile_at(*nines));
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn latency_chart(area: &Area<'_>, series: &[Series]) -> DrawResult {
    let max_latency = series
        .iter()
        .flat_map(|s| s.latency.iter().filter(|(x, _)| *x <= MAX_NINES + 1e-9))
        .map(|&(_, us)| us)
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption("latency by percentile", ("sans-serif", 20))
        .margin(10)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..MAX_NINES, 0.0..max_latency * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        // One label per nine: 0, 90, 99, 99.9, 99.99.
        .x_labels(MAX_NINES as usize + 1)
        .x_label_formatter(&percentile_label)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points = s
            .latency
            .iter()
            .copied()
            .filter(|(x, _)| *x <= MAX_NINES + 1e-9);
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn throughput_chart(area: &Area<'_>, series: &[Series], rate: &str) -> DrawResult {
    let points = || series.iter().flat_map(|s| s.rates.iter().copied());
    let max_time = points()
        .map(|(t, _)| t)
        .fold(TIMELINE_STEP.as_secs_f64(), f64::max);
    let max_rate = points().map(|(_, r)| r).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption("throughput over time", ("sans-serif", 20))
        .margin(10)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..max_time, 0.0..max_rate * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(rate)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    // A series without a timeline keeps its colour but draws no line.
    for (i, s) in series
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.rates.is_empty())
    {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                s.rates.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
