//! How `percore-bench net` shows its runs: a plain table (default) and JSON
//! (`--json`, schema in `benches/README.md`); the SVG of `--plot` is in `plot.rs`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::NetOptions;
use crate::load::TIMELINE_STEP;
use crate::net::{median_of, servers, Run};
use crate::report;

/// The JSON schema's name and version; bump it when a field changes meaning.
pub const SCHEMA: &str = "percore-bench.net.v1";

/// The percentiles every report shows, with their labels.
pub const PERCENTILES: [(&str, f64); 4] =
    [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99_9", 0.999)];

fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e3
}

fn p(run: &Run, q: f64) -> Option<f64> {
    Some(micros(run.load.quantile(q)))
}

/// The plain-text report: one line per server (medians over rounds), then the
/// ratios of percore to each peer.
pub fn table(options: &NetOptions, runs: &[Run]) -> String {
    let names = servers(runs);
    let rounds = runs.len() / names.len().max(1);
    let mut out = format!(
        "percore-bench net {}: {} connections{}, {} client core{}, {} of {}{}{}\n",
        options.protocol,
        options.connections,
        match options.protocol {
            crate::server::Protocol::Echo => format!(", {} B messages", options.size),
            crate::server::Protocol::Http => String::new(),
        },
        options.cores,
        if options.cores == 1 { "" } else { "s" },
        if rounds == 1 {
            "1 run".to_owned()
        } else {
            format!("{rounds} rounds (medians)")
        },
        report::duration(options.duration),
        match options.rate {
            Some(rate) => format!(", open loop at {}", report::rate(rate)),
            None => String::new(),
        },
        match options.target {
            Some(target) => format!(", target {target}"),
            None => format!(
                ", server {} core{} on 127.0.0.1",
                options.server_cores,
                if options.server_cores == 1 { "" } else { "s" }
            ),
        },
    );
    let mut grid = vec![vec![
        "server".to_owned(),
        "req/s".into(),
        "p50".into(),
        "p90".into(),
        "p99".into(),
        "p99.9".into(),
        "max".into(),
        "errors".into(),
        "server CPU/req".into(),
        "SQEs/req".into(),
        "enters/req".into(),
    ]];
    for name in &names {
        let m = |figure: &dyn Fn(&Run) -> Option<f64>| median_of(runs, name, figure);
        let latency = |q: f64| {
            m(&|run| p(run, q))
                .map(|us| report::duration(Duration::from_secs_f64(us / 1e6)))
                .unwrap_or_default()
        };
        let errors: u64 = runs
            .iter()
            .filter(|r| &r.server == name)
            .map(|r| r.load.errors)
            .sum();
        grid.push(vec![
            name.clone(),
            m(&|run| Some(run.load.rate()))
                .map(report::rate)
                .unwrap_or_default(),
            latency(0.5),
            latency(0.9),
            latency(0.99),
            latency(0.999),
            latency(1.0),
            errors.to_string(),
            m(&|run| run.cpu_per_request().map(micros))
                .map(|us| format!("{us:.2} µs"))
                .unwrap_or_else(|| "-".into()),
            m(&|run| run.sqes_per_request())
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "-".into()),
            m(&|run| run.enters_per_request())
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&report::grid(&grid));
    for ratio in ratios(runs) {
        out.push_str(&format!(
            "{}/{}: req/s {:.2}x, p99 {:.2}x{}\n",
            ratio.0,
            ratio.1,
            ratio.2,
            ratio.3,
            ratio
                .4
                .map(|x| format!(", server CPU/req {x:.2}x"))
                .unwrap_or_default()
        ));
    }
    if let Some(err) = runs.iter().find_map(|r| r.load.first_error.as_ref()) {
        out.push_str(&format!("first error: {err}\n"));
    }
    out
}

/// percore over each other server: (percore, peer, req/s, p99, server CPU/req).
fn ratios(runs: &[Run]) -> Vec<(String, String, f64, f64, Option<f64>)> {
    let names = servers(runs);
    if !names.iter().any(|n| n == "percore") {
        return Vec::new();
    }
    let figure = |name: &str, f: &dyn Fn(&Run) -> Option<f64>| median_of(runs, name, f);
    let rate = |run: &Run| Some(run.load.rate());
    let p99 = |run: &Run| p(run, 0.99);
    let cpu = |run: &Run| run.cpu_per_request().map(micros);
    names
        .iter()
        .filter(|n| *n != "percore")
        .filter_map(|peer| {
            let over = |f: &dyn Fn(&Run) -> Option<f64>| {
                Some(figure("percore", f)? / figure(peer, f)?.max(1e-12))
            };
            Some((
                "percore".to_owned(),
                peer.clone(),
                over(&rate)?,
                over(&p99)?,
                over(&cpu),
            ))
        })
        .collect()
}

fn run_json(run: &Run, round: usize) -> Value {
    let load = &run.load;
    let mut latency = serde_json::Map::new();
    for (label, q) in PERCENTILES {
        latency.insert(label.into(), json!(micros(load.quantile(q))));
    }
    latency.insert("max".into(), json!(micros(load.quantile(1.0))));
    latency.insert("mean".into(), json!(load.latency.mean() / 1e3));
    json!({
        "server": run.server,
        "round": round,
        "requests": load.requests,
        "errors": load.errors,
        "first_error": load.first_error,
        "connected": load.connected,
        "elapsed_s": load.elapsed.as_secs_f64(),
        "req_per_s": load.rate(),
        "latency_us": latency,
        "server_cpu_us_per_request": run.cpu_per_request().map(micros),
        "server_sqes_per_request": run.sqes_per_request(),
        "server_enters_per_request": run.enters_per_request(),
        "timeline": {
            "step_ms": TIMELINE_STEP.as_millis() as u64,
            "requests": load.timeline,
        },
    })
}

/// The `--json` document (schema [`SCHEMA`], described in `benches/README.md`).
pub fn json(options: &NetOptions, runs: &[Run]) -> Value {
    let names = servers(runs);
    let round_of = |i: usize| i / names.len().max(1);
    let summary: Vec<Value> = names
        .iter()
        .map(|name| {
            let m = |f: &dyn Fn(&Run) -> Option<f64>| median_of(runs, name, f);
            json!({
                "server": name,
                "req_per_s": m(&|r| Some(r.load.rate())),
                "p50_us": m(&|r| p(r, 0.5)),
                "p99_us": m(&|r| p(r, 0.99)),
                "server_cpu_us_per_request": m(&|r| r.cpu_per_request().map(micros)),
                "server_sqes_per_request": m(&|r| r.sqes_per_request()),
                "server_enters_per_request": m(&|r| r.enters_per_request()),
            })
        })
        .collect();
    let ratios: Vec<Value> = ratios(runs)
        .into_iter()
        .map(|(a, b, rate, p99, cpu)| {
            json!({
                "numerator": a,
                "denominator": b,
                "req_per_s": rate,
                "p99": p99,
                "server_cpu_per_request": cpu,
            })
        })
        .collect();
    json!({
        "schema": SCHEMA,
        "protocol": options.protocol.name(),
        "target": options.target.map(|t| t.to_string()),
        "connections": options.connections,
        "size": options.size,
        "duration_s": options.duration.as_secs_f64(),
        "client_cores": options.cores,
        "server_cores": options.server_cores,
        "rate": options.rate,
        "compare": options.compare,
        "runs": runs.iter().enumerate().map(|(i, r)| run_json(r, round_of(i))).collect::<Vec<_>>(),
        "summary": summary,
        "ratios": ratios,
    })
}
