//! How `percore-bench fs` shows its runs: a plain table (default), JSON
//! (`--json`, schema in `benches/README.md`) and the series of `--plot`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::FsOptions;
use crate::fs::{engines, median_of, Measured, Report, Run};
use crate::load::TIMELINE_STEP;
use crate::output::PERCENTILES;
use crate::plot::{self, Series};
use crate::report;

/// The JSON schema's name and version; bump it when a field changes meaning.
pub const SCHEMA: &str = "percore-bench.fs.v1";

fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e3
}

fn p(measured: &Measured, q: f64) -> Option<f64> {
    measured.quantile(q).map(micros)
}

/// The plain-text report: one line per engine (medians over rounds), then
/// the ratios of percore to fio.
pub fn table(options: &FsOptions, report: &Report) -> String {
    let names = engines(&report.runs);
    let rounds = report.runs.len() / names.len().max(1);
    let mut out = heading(options, report, rounds);
    let mut grid = vec![[
        "engine", "IOPS", "MiB/s", "p50", "p90", "p99", "p99.9", "max", "CPU",
    ]
    .map(str::to_owned)
    .to_vec()];
    grid.extend(names.iter().map(|name| engine_row(&report.runs, name)));
    out.push_str(&report::grid(&grid));
    if let Some(ratio) = ratio(&report.runs) {
        out.push_str(&format!(
            "percore/fio: IOPS {:.2}x, MiB/s {:.2}x, p50 {:.2}x, p99 {:.2}x\n",
            ratio.iops, ratio.mib_per_s, ratio.p50, ratio.p99
        ));
    }
    out
}

/// The first line: the job, the file, how long.
fn heading(options: &FsOptions, report: &Report, rounds: usize) -> String {
    let runs = match rounds {
        1 => "1 run".to_owned(),
        n => format!("{n} rounds (medians)"),
    };
    let file = match (report.laid_out, report.removed) {
        (true, true) => "laid out, removed after",
        (true, false) => "laid out",
        (false, true) => "removed after",
        (false, false) => "as it was",
    };
    format!(
        "percore-bench fs {}: bs {}, iodepth {}, {}, {} of {} ({file}), {} core{}, {runs} of {}\n",
        options.rw,
        report::bytes(options.bs as u64),
        options.iodepth,
        if options.direct {
            "O_DIRECT"
        } else {
            "buffered"
        },
        report::bytes(options.size),
        report.path.display(),
        options.cores,
        if options.cores == 1 { "" } else { "s" },
        report::duration(options.duration),
    )
}

fn engine_row(runs: &[Run], name: &str) -> Vec<String> {
    let latency = |q: f64| {
        median_of(runs, name, |m| p(m, q))
            .map(|us| report::duration(Duration::from_secs_f64(us / 1e6)))
            .unwrap_or_default()
    };
    vec![
        name.to_owned(),
        median_of(runs, name, |m| Some(m.iops()))
            .map(report::rate)
            .unwrap_or_default(),
        median_of(runs, name, |m| Some(m.mib_per_s()))
            .map(|x| format!("{x:.1}"))
            .unwrap_or_default(),
        latency(0.5),
        latency(0.9),
        latency(0.99),
        latency(0.999),
        latency(1.0),
        median_of(runs, name, |m| m.cpu)
            .map(|cpu| format!("{:.0} %", cpu * 100.0))
            .unwrap_or_default(),
    ]
}

/// percore's medians over fio's.
struct Ratio {
    iops: f64,
    mib_per_s: f64,
    p50: f64,
    p99: f64,
}

fn ratio(runs: &[Run]) -> Option<Ratio> {
    let over = |f: &dyn Fn(&Measured) -> Option<f64>| {
        Some(median_of(runs, "percore", f)? / median_of(runs, "fio", f)?.max(1e-12))
    };
    Some(Ratio {
        iops: over(&|m| Some(m.iops()))?,
        mib_per_s: over(&|m| Some(m.mib_per_s()))?,
        p50: over(&|m| p(m, 0.5))?,
        p99: over(&|m| p(m, 0.99))?,
    })
}

fn run_json(run: &Run) -> Value {
    let m = &run.measured;
    let mut latency = serde_json::Map::new();
    for (label, q) in PERCENTILES {
        latency.insert(label.into(), json!(p(m, q)));
    }
    latency.insert("max".into(), json!(micros(m.max)));
    latency.insert("mean".into(), json!(micros(m.mean)));
    json!({
        "engine": run.engine,
        "round": run.round,
        "ops": m.ops,
        "bytes": m.bytes,
        "elapsed_s": m.elapsed.as_secs_f64(),
        "iops": m.iops(),
        "mib_per_s": m.mib_per_s(),
        "latency_us": latency,
        "cpu": m.cpu,
        "timeline": m.timeline.as_ref().map(|ops| json!({
            "step_ms": TIMELINE_STEP.as_millis() as u64,
            "ops": ops,
        })),
    })
}

/// The `--json` document (schema [`SCHEMA`], described in `benches/README.md`).
pub fn json(options: &FsOptions, report: &Report) -> Value {
    let runs = &report.runs;
    let summary: Vec<Value> = engines(runs)
        .iter()
        .map(|name| {
            json!({
                "engine": name,
                "iops": median_of(runs, name, |m| Some(m.iops())),
                "mib_per_s": median_of(runs, name, |m| Some(m.mib_per_s())),
                "p50_us": median_of(runs, name, |m| p(m, 0.5)),
                "p99_us": median_of(runs, name, |m| p(m, 0.99)),
                "cpu": median_of(runs, name, |m| m.cpu),
            })
        })
        .collect();
    let ratios: Vec<Value> = ratio(runs)
        .into_iter()
        .map(|ratio| {
            json!({
                "numerator": "percore",
                "denominator": "fio",
                "iops": ratio.iops,
                "mib_per_s": ratio.mib_per_s,
                "p50": ratio.p50,
                "p99": ratio.p99,
            })
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "rw": options.rw.name(),
        "bs": options.bs,
        "iodepth": options.iodepth,
        "direct": options.direct,
        "size": options.size,
        "duration_s": options.duration.as_secs_f64(),
        "cores": options.cores,
        "file": report.path.display().to_string(),
        "laid_out": report.laid_out,
        "removed": report.removed,
        "compare": options.compare,
        "fio": report.fio,
        "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
        "summary": summary,
        "ratios": ratios,
    })
}

/// One series per engine for [`plot::draw`]: the latency curve of its
/// median-IOPS run, and its first run's timeline (percore only).
pub fn series(runs: &[Run]) -> Vec<Series> {
    let step = TIMELINE_STEP.as_secs_f64();
    engines(runs)
        .into_iter()
        .filter_map(|name| {
            let mut mine: Vec<&Run> = runs.iter().filter(|r| r.engine == name).collect();
            mine.sort_by(|a, b| a.measured.iops().total_cmp(&b.measured.iops()));
            let median = mine.get(mine.len() / 2)?;
            let latency = median
                .measured
                .percentiles
                .iter()
                .map(|&(q, d)| (plot::nines(q), micros(d)))
                .collect();
            let first = runs.iter().find(|r| r.engine == name)?;
            let rates = first
                .measured
                .timeline
                .iter()
                .flatten()
                .enumerate()
                .map(|(i, &n)| ((i as f64 + 0.5) * step, n as f64 / step))
                .filter(|(t, _)| *t <= first.measured.elapsed.as_secs_f64())
                .collect();
            Some(Series {
                name,
                latency,
                rates,
            })
        })
        .collect()
}
