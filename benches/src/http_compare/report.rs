//! The comparison's tables: every run, medians per server, and per-round
//! ratios to the baseline server with their median.

use std::time::Duration;

use super::{IdleRun, Run};
use crate::report::{self, grid, median, median_f64};

/// One server's medians under one load, and its ratios to the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseSummary {
    /// The server.
    pub server: String,
    /// Median requests per second.
    pub req_per_s: f64,
    /// Median server CPU per request.
    pub cpu_per_request: Duration,
    /// Median SQEs per request (percore servers).
    pub sqes_per_request: Option<f64>,
    /// Median enters per request (percore servers).
    pub enters_per_request: Option<f64>,
    /// Per-round CPU/req ratios to the baseline (rounds where both ran).
    pub cpu_ratios: Vec<f64>,
    /// Per-round req/s ratios to the baseline.
    pub rate_ratios: Vec<f64>,
}

impl CaseSummary {
    /// Median of the per-round CPU/req ratios (`None` without any).
    pub fn cpu_ratio(&self) -> Option<f64> {
        (!self.cpu_ratios.is_empty()).then(|| median_f64(self.cpu_ratios.iter().copied()))
    }

    /// Median of the per-round req/s ratios.
    pub fn rate_ratio(&self) -> Option<f64> {
        (!self.rate_ratios.is_empty()).then(|| median_f64(self.rate_ratios.iter().copied()))
    }
}

/// The server names of `runs`, in first-seen order.
fn servers_of<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut servers: Vec<String> = Vec::new();
    for name in names {
        if !servers.iter().any(|s| s == name) {
            servers.push(name.to_owned());
        }
    }
    servers
}

/// Medians and ratios to `baseline` per server, in first-seen order.
pub fn summarize(runs: &[Run], baseline: &str) -> Vec<CaseSummary> {
    let servers = servers_of(runs.iter().map(|r| r.server.as_str()));
    let base_of = |round: usize| {
        runs.iter()
            .find(|r| r.server == baseline && r.round == round)
    };
    servers
        .into_iter()
        .map(|server| {
            let mine: Vec<&Run> = runs.iter().filter(|r| r.server == server).collect();
            let optional = |values: Vec<Option<f64>>| -> Option<f64> {
                let values: Option<Vec<f64>> = values.into_iter().collect();
                values.filter(|v| !v.is_empty()).map(median_f64)
            };
            let pairs: Vec<(&Run, &Run)> = mine
                .iter()
                .filter_map(|run| Some((*run, base_of(run.round)?)))
                .collect();
            CaseSummary {
                req_per_s: median_f64(mine.iter().map(|r| r.client.req_per_s())),
                cpu_per_request: median(mine.iter().map(|r| r.cpu_per_request())),
                sqes_per_request: optional(mine.iter().map(|r| r.sqes_per_request()).collect()),
                enters_per_request: optional(mine.iter().map(|r| r.enters_per_request()).collect()),
                cpu_ratios: pairs
                    .iter()
                    .map(|(run, base)| {
                        run.cpu_per_request().as_secs_f64()
                            / base.cpu_per_request().as_secs_f64().max(1e-12)
                    })
                    .collect(),
                rate_ratios: pairs
                    .iter()
                    .map(|(run, base)| run.client.req_per_s() / base.client.req_per_s().max(1e-9))
                    .collect(),
                server,
            }
        })
        .collect()
}

fn optional_latency(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), report::duration)
}

fn optional_count(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.3}"))
}

fn ratios(values: &[f64], median: Option<f64>) -> String {
    let each: Vec<String> = values.iter().map(|r| format!("{r:.3}")).collect();
    match median {
        Some(m) => format!("{} -> {m:.3}", each.join(" ")),
        None => "-".into(),
    }
}

/// The text for one load: `title`, every run, medians, ratios to `baseline`.
pub fn case_report(title: &str, runs: &[Run], baseline: &str) -> (String, Vec<CaseSummary>) {
    let mut out = format!("{title}\n");
    let mut rows = vec![[
        "round",
        "server",
        "req/s",
        "CPU/req",
        "p50",
        "p99",
        "mean",
        "SQE/req",
        "enters/req",
    ]
    .map(String::from)
    .to_vec()];
    for run in runs {
        rows.push(vec![
            (run.round + 1).to_string(),
            run.server.clone(),
            report::rate(run.client.req_per_s()),
            report::duration(run.cpu_per_request()),
            optional_latency(run.client.p50),
            optional_latency(run.client.p99),
            optional_latency(run.client.mean),
            optional_count(run.sqes_per_request()),
            optional_count(run.enters_per_request()),
        ]);
    }
    out.push_str(&indent(&grid(&rows)));
    let summaries = summarize(runs, baseline);
    out.push_str("  medians, and per-round ratios to ");
    out.push_str(baseline);
    out.push_str(" (then their median):\n");
    let mut rows = vec![[
        "server",
        "req/s",
        "CPU/req",
        "SQE/req",
        "enters/req",
        "CPU/req ratio",
        "req/s ratio",
    ]
    .map(String::from)
    .to_vec()];
    for s in &summaries {
        rows.push(vec![
            s.server.clone(),
            report::rate(s.req_per_s),
            report::duration(s.cpu_per_request),
            optional_count(s.sqes_per_request),
            optional_count(s.enters_per_request),
            ratios(&s.cpu_ratios, s.cpu_ratio()),
            ratios(&s.rate_ratios, s.rate_ratio()),
        ]);
    }
    out.push_str(&indent(&grid(&rows)));
    (out, summaries)
}

/// One server's medians of memory per idle connection.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleSummary {
    /// The server.
    pub server: String,
    /// Median resident-set growth per connection, bytes.
    pub rss_per_connection: f64,
    /// Median heap growth per connection, bytes, if reported.
    pub heap_per_connection: Option<f64>,
}

/// The text for the idle-connection runs, and medians per server.
pub fn idle_report(title: &str, runs: &[IdleRun]) -> (String, Vec<IdleSummary>) {
    let mut out = format!("{title}\n");
    let mut rows = vec![[
        "round",
        "server",
        "RSS before",
        "RSS after",
        "RSS/conn",
        "heap/conn",
    ]
    .map(String::from)
    .to_vec()];
    let per = |x: Option<f64>| x.map_or_else(|| "-".into(), |b| format!("{b:.0} B"));
    for run in runs {
        rows.push(vec![
            (run.round + 1).to_string(),
            run.server.clone(),
            report::bytes(run.rss_before),
            report::bytes(run.rss_after),
            per(Some(run.rss_per_connection())),
            per(run.heap_per_connection()),
        ]);
    }
    out.push_str(&indent(&grid(&rows)));
    let summaries: Vec<IdleSummary> = servers_of(runs.iter().map(|r| r.server.as_str()))
        .into_iter()
        .map(|server| {
            let mine: Vec<&IdleRun> = runs.iter().filter(|r| r.server == server).collect();
            let heaps: Option<Vec<f64>> = mine.iter().map(|r| r.heap_per_connection()).collect();
            IdleSummary {
                rss_per_connection: median_f64(mine.iter().map(|r| r.rss_per_connection())),
                heap_per_connection: heaps.filter(|h| !h.is_empty()).map(median_f64),
                server,
            }
        })
        .collect();
    out.push_str("  medians:\n");
    let mut rows = vec![["server", "RSS/conn", "heap/conn"]
        .map(String::from)
        .to_vec()];
    for s in &summaries {
        rows.push(vec![
            s.server.clone(),
            per(Some(s.rss_per_connection)),
            per(s.heap_per_connection),
        ]);
    }
    out.push_str(&indent(&grid(&rows)));
    (out, summaries)
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Case, ClientReport};
    use super::*;

    fn run(server: &str, round: usize, requests: u64, cpu_ms: u64) -> Run {
        Run {
            server: server.into(),
            case: Case::H1,
            round,
            client: ClientReport {
                requests,
                errors: 0,
                elapsed: Duration::from_secs(1),
                p50: None,
                p99: None,
                mean: None,
            },
            server_cpu: Duration::from_millis(cpu_ms),
            sqes: None,
            enters: None,
        }
    }

    #[test]
    fn ratios_pair_runs_by_round() {
        let runs = [
            run("p", 0, 1000, 8),
            run("base", 0, 1000, 10),
            run("base", 1, 2000, 10),
            run("p", 1, 1000, 10),
        ];
        let summaries = summarize(&runs, "base");
        assert_eq!(summaries[0].server, "p");
        // Round 0: 8 µs / 10 µs; round 1: 10 µs / 5 µs.
        assert_eq!(summaries[0].cpu_ratios.len(), 2);
        assert!((summaries[0].cpu_ratios[0] - 0.8).abs() < 1e-9);
        assert!((summaries[0].cpu_ratios[1] - 2.0).abs() < 1e-9);
        assert!((summaries[0].rate_ratio().unwrap() - 0.75).abs() < 1e-9);
        assert_eq!(summaries[1].server, "base");
        assert_eq!(summaries[1].cpu_ratio(), Some(1.0));
        let (text, _) = case_report("t", &runs, "base");
        assert!(text.contains("0.800 2.000 -> 1.400"), "{text}");
    }

    #[test]
    fn idle_medians_per_server() {
        let idle = |server: &str, after: u64| IdleRun {
            server: server.into(),
            protocol: super::super::IdleProtocol::H1,
            round: 0,
            connections: 100,
            rss_before: 1000,
            rss_after: after,
            heap_before: Some(0),
            heap_after: Some(after / 2),
        };
        let (text, summaries) = idle_report("idle", &[idle("a", 101_000), idle("b", 1000)]);
        assert_eq!(summaries[0].rss_per_connection, 1000.0);
        assert_eq!(summaries[0].heap_per_connection, Some(505.0));
        assert_eq!(summaries[1].rss_per_connection, 0.0);
        assert!(text.contains("1000 B"), "{text}");
    }
}
