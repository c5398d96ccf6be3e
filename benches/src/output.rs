//! How `percore-bench net` shows its runs: a plain table (default) and JSON
//! (`--json`, schema in `benches/README.md`); the SVG of `--plot` is in `plot.rs`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::NetOptions;
use crate::load::TIMELINE_STEP;
use crate::net::{clients, median_of, per_round_ratios, servers, Run, C_URING};
use crate::outside::Client;
use crate::report::{self, median_f64};
use crate::server::Protocol;

/// The JSON schema's name and version; bump it when a field changes meaning.
pub const SCHEMA: &str = "percore-bench.net.v1";

/// The percentiles every report shows, with their labels.
pub const PERCENTILES: [(&str, f64); 4] =
    [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99_9", 0.999)];

fn micros(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e3
}

fn p(run: &Run, q: f64) -> Option<f64> {
    (!run.load.latency.is_empty()).then(|| micros(run.load.quantile(q)))
}

/// The plain-text report: per client, one line per server (medians over
/// rounds), then the ratios of each percore server (`percore`,
/// `percore-epoll`) to each peer, and of the C server (`c-uring`) to each
/// other peer.
pub fn table(options: &NetOptions, runs: &[Run]) -> String {
    let names = clients(runs);
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        let of_client: Vec<Run> = runs.iter().filter(|r| &r.client == name).cloned().collect();
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&client_table(options, name, &of_client));
    }
    out
}

/// [`table`] for the runs of one client.
fn client_table(options: &NetOptions, client: &str, runs: &[Run]) -> String {
    let names = servers(runs);
    let rounds = runs.len() / names.len().max(1);
    let mut out = heading(options, client, rounds);
    let mut grid = vec![[
        "server",
        "req/s",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "errors",
        "server CPU/req",
        "SQEs/req",
        "enters/req",
        "sleeps/req",
        "client CPU/req",
    ]
    .map(str::to_owned)
    .to_vec()];
    grid.extend(names.iter().map(|name| server_row(runs, name)));
    out.push_str(&report::grid(&grid));
    for ratio in ratios(runs) {
        out.push_str(&format!(
            "{}/{}: req/s {:.2}x, p99 {:.2}x{}\n",
            ratio.numerator,
            ratio.peer,
            ratio.rate,
            ratio.p99,
            cpu_ratio_text(&ratio)
        ));
    }
    if let Some(err) = runs.iter().find_map(|r| r.load.first_error.as_ref()) {
        out.push_str(&format!("first error: {err}\n"));
    }
    out
}

/// `, server CPU/req 0.93x (per round 0.91 0.95 0.97: median 0.95x)`, or
/// nothing when the CPU was not measured.
fn cpu_ratio_text(ratio: &Ratio) -> String {
    let Some(cpu) = ratio.cpu else {
        return String::new();
    };
    let mut text = format!(", server CPU/req {cpu:.2}x");
    if ratio.cpu_rounds.len() > 1 {
        let rounds: Vec<String> = ratio.cpu_rounds.iter().map(|r| format!("{r:.3}")).collect();
        text.push_str(&format!(
            " (per round {}: median {:.3}x)",
            rounds.join(" "),
            median_f64(ratio.cpu_rounds.iter().copied())
        ));
    }
    text
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The first line: what was run, how long, against what, with whom.
fn heading(options: &NetOptions, client: &str, rounds: usize) -> String {
    let messages = match options.protocol {
        Protocol::Echo => format!(", {} B messages", options.size),
        Protocol::Http => String::new(),
    };
    let runs = match rounds {
        1 => "1 run".to_owned(),
        n => format!("{n} rounds (medians)"),
    };
    let rate = options
        .rate
        .map(|rate| format!(", open loop at {}", report::rate(rate)))
        .unwrap_or_default();
    let server = match options.target {
        Some(target) => format!(", target {target}"),
        None => format!(
            ", server {} core{} on 127.0.0.1",
            options.server_cores,
            plural(options.server_cores)
        ),
    };
    let client = match Client::from_name(client, options.protocol) {
        Some(Client::Percore | Client::PercoreUnbatched) => format!(
            "{client} client on {} core{}",
            options.cores,
            plural(options.cores)
        ),
        Some(Client::Wrk) => format!(
            "wrk client, {} thread{}",
            options.cores,
            plural(options.cores)
        ),
        Some(Client::Tokio) => "tokio client, 1 thread".to_owned(),
        None => format!("{client} client"),
    };
    let mut fresh = String::new();
    if options.target.is_none() && options.reuse_servers {
        fresh.push_str(", one process per server");
    }
    if let Some(warmup) = options.warmup {
        fresh.push_str(&format!(", {} warm-up", report::duration(warmup)));
    }
    if options.target.is_none() && !options.pin {
        fresh.push_str(", unpinned");
    }
    format!(
        "percore-bench net {}: {} connections{messages}, {client}, {runs} of {}{rate}{server}{fresh}\n",
        options.protocol,
        options.connections,
        report::duration(options.duration),
    )
}

/// One server's cells: medians over its runs; `-` for what is not known.
fn server_row(runs: &[Run], name: &str) -> Vec<String> {
    let m = |figure: &dyn Fn(&Run) -> Option<f64>| median_of(runs, name, figure);
    let latency = |q: f64| {
        m(&|run| p(run, q))
            .map(|us| report::duration(Duration::from_secs_f64(us / 1e6)))
            .unwrap_or_default()
    };
    let ratio = |x: Option<f64>| x.map_or_else(|| "-".into(), |x| format!("{x:.3}"));
    let errors: u64 = runs
        .iter()
        .filter(|r| r.server == name)
        .map(|r| r.load.errors)
        .sum();
    vec![
        name.to_owned(),
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
            .map_or_else(|| "-".into(), |us| format!("{us:.2} µs")),
        ratio(m(&Run::sqes_per_request)),
        ratio(m(&Run::enters_per_request)),
        ratio(m(&Run::sleeps_per_request)),
        m(&|run| run.client_cpu_per_request().map(micros))
            .map_or_else(|| "-".into(), |us| format!("{us:.2} µs")),
    ]
}

/// A percore server's (or the C server's) medians over a peer's.
struct Ratio {
    /// `percore`, `percore-epoll`…, or `c-uring`.
    numerator: String,
    peer: String,
    rate: f64,
    p99: f64,
    /// Server CPU per request, when both were measured.
    cpu: Option<f64>,
    /// The same ratio in each round (the figures of one round are measured
    /// side by side, so this drifts less than the ratio of medians).
    cpu_rounds: Vec<f64>,
}

/// Whether `server` is one of percore's: `percore`, or a variant of it such
/// as `percore-epoll` (the same server on the epoll backend).
fn is_percore(server: &str) -> bool {
    server == "percore" || server.starts_with("percore-")
}

/// Each percore server over each other server in `runs`, percore's first;
/// then the C server (`c-uring`, the reference the issue measures percore
/// against) over each runtime peer, so that its standing to tokio is printed
/// beside percore's.
fn ratios(runs: &[Run]) -> Vec<Ratio> {
    let names = servers(runs);
    let (ours, peers): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|name| is_percore(name));
    let over = |ours: &str, peer: &str, f: &dyn Fn(&Run) -> Option<f64>| {
        Some(median_of(runs, ours, f)? / median_of(runs, peer, f)?.max(1e-12))
    };
    let reference = peers.iter().find(|name| name.as_str() == C_URING);
    let percore_pairs = ours
        .iter()
        .flat_map(|ours| peers.iter().map(move |peer| (*ours, *peer)));
    let reference_pairs = reference.into_iter().flat_map(|reference| {
        peers
            .iter()
            .filter(|peer| peer.as_str() != C_URING)
            .map(move |peer| (*reference, *peer))
    });
    percore_pairs
        .chain(reference_pairs)
        .filter_map(|(ours, peer)| {
            Some(Ratio {
                numerator: ours.clone(),
                peer: peer.clone(),
                rate: over(ours, peer, &|r| Some(r.load.rate()))?,
                p99: over(ours, peer, &|r| p(r, 0.99)).unwrap_or(f64::NAN),
                cpu: over(ours, peer, &|r| r.cpu_per_request().map(micros)),
                cpu_rounds: per_round_ratios(runs, ours, peer, |r| r.cpu_per_request().map(micros)),
            })
        })
        .collect()
}

fn run_json(run: &Run) -> Value {
    let load = &run.load;
    let mut latency = serde_json::Map::new();
    for (label, q) in PERCENTILES {
        latency.insert(label.into(), json!(micros(load.quantile(q))));
    }
    latency.insert("max".into(), json!(micros(load.quantile(1.0))));
    latency.insert("mean".into(), json!(load.latency.mean() / 1e3));
    json!({
        "server": run.server,
        "client": run.client,
        "round": run.round,
        "requests": load.requests,
        "errors": load.errors,
        "first_error": load.first_error,
        "connected": load.connected,
        "elapsed_s": load.elapsed.as_secs_f64(),
        "req_per_s": load.rate(),
        "latency_us": latency,
        "server_cpu_us_per_request": run.cpu_per_request().map(micros),
        "server_cpu_stat_us_per_request": run.stat_cpu_per_request().map(micros),
        "client_cpu_us_per_request": run.client_cpu_per_request().map(micros),
        "server_sqes_per_request": run.sqes_per_request(),
        "server_enters_per_request": run.enters_per_request(),
        "server_sleeps_per_request": run.sleeps_per_request(),
        "server_driver": run.server_stats.and_then(|s| s.driver).map(|d| d.name()),
        "timeline": {
            "step_ms": TIMELINE_STEP.as_millis() as u64,
            "requests": load.timeline,
        },
    })
}

/// The `--json` document (schema [`SCHEMA`], described in `benches/README.md`).
pub fn json(options: &NetOptions, runs: &[Run]) -> Value {
    let mut summary = Vec::new();
    let mut ratio_list = Vec::new();
    for client in clients(runs) {
        let runs: Vec<Run> = runs
            .iter()
            .filter(|r| r.client == client)
            .cloned()
            .collect();
        for name in servers(&runs) {
            let m = |f: &dyn Fn(&Run) -> Option<f64>| median_of(&runs, &name, f);
            summary.push(json!({
                "server": name,
                "client": client,
                "req_per_s": m(&|r| Some(r.load.rate())),
                "p50_us": m(&|r| p(r, 0.5)),
                "p99_us": m(&|r| p(r, 0.99)),
                "server_cpu_us_per_request": m(&|r| r.cpu_per_request().map(micros)),
                "server_cpu_stat_us_per_request": m(&|r| r.stat_cpu_per_request().map(micros)),
                "client_cpu_us_per_request": m(&|r| r.client_cpu_per_request().map(micros)),
                "server_sqes_per_request": m(&|r| r.sqes_per_request()),
                "server_enters_per_request": m(&|r| r.enters_per_request()),
                "server_sleeps_per_request": m(&|r| r.sleeps_per_request()),
            }));
        }
        for ratio in ratios(&runs) {
            ratio_list.push(json!({
                "numerator": ratio.numerator,
                "denominator": ratio.peer,
                "client": client,
                "req_per_s": ratio.rate,
                "p99": (!ratio.p99.is_nan()).then_some(ratio.p99),
                "server_cpu_per_request": ratio.cpu,
                "server_cpu_per_request_by_round": ratio.cpu_rounds,
                "server_cpu_per_request_median_of_rounds": (!ratio.cpu_rounds.is_empty())
                    .then(|| median_f64(ratio.cpu_rounds.iter().copied())),
            }));
        }
    }
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
        "clients": options.clients.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "fresh_servers": options.target.is_none() && !options.reuse_servers,
        "pinned": options.target.is_none() && options.pin,
        "warmup_s": options.warmup.map(|w| w.as_secs_f64()),
        "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
        "summary": summary,
        "ratios": ratio_list,
    })
}

#[cfg(test)]
mod tests {
    use percore::Driver;

    use super::*;
    use crate::child::ServerStats;
    use crate::load::{new_histogram, LoadResult};

    /// A run against `server` of 1,000 responses in a second, 100 µs each.
    fn run(server: &str, driver: Option<Driver>) -> Run {
        let mut latency = new_histogram();
        latency.record_n(100_000, 1_000).unwrap();
        Run {
            server: server.into(),
            client: "percore".into(),
            round: 0,
            load: LoadResult {
                requests: 1_000,
                errors: 0,
                first_error: None,
                connected: 4,
                elapsed: Duration::from_secs(1),
                latency,
                timeline: vec![100; 10],
            },
            server_cpu: Some(Duration::from_millis(10)),
            server_cpu_stat: None,
            client_cpu: Some(Duration::from_millis(20)),
            server_sleeps: Some(50),
            server_stats: driver.map(|driver| ServerStats {
                enters: 100,
                sqes: 1_000,
                driver: Some(driver),
            }),
        }
    }

    #[test]
    fn every_percore_server_gets_ratios_to_every_peer() {
        let runs = [
            run("percore", Some(Driver::IoUring)),
            run("percore-epoll", Some(Driver::Epoll)),
            run("tokio", None),
            run("monoio", None),
        ];
        let pairs: Vec<(String, String)> = ratios(&runs)
            .into_iter()
            .map(|r| (r.numerator, r.peer))
            .collect();
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            pairs,
            [
                pair("percore", "tokio"),
                pair("percore", "monoio"),
                pair("percore-epoll", "tokio"),
                pair("percore-epoll", "monoio"),
            ]
        );
    }

    #[test]
    fn the_c_server_is_compared_with_the_runtime_peers_too() {
        let mut runs = Vec::new();
        for (round, c_ms) in [5, 8, 6].into_iter().enumerate() {
            let mut ours = run("percore", Some(Driver::IoUring));
            let mut tokio = run("tokio", None);
            let mut c = run("c-uring", None);
            c.server_cpu = Some(Duration::from_millis(c_ms));
            tokio.server_cpu = Some(Duration::from_millis(20));
            for r in [&mut ours, &mut tokio, &mut c] {
                r.round = round;
            }
            runs.extend([ours, tokio, c]);
        }
        let pairs: Vec<(String, String, Vec<f64>)> = ratios(&runs)
            .into_iter()
            .map(|r| (r.numerator, r.peer, r.cpu_rounds))
            .collect();
        let pair = |a: &str, b: &str, rounds: &[f64]| (a.to_owned(), b.to_owned(), rounds.to_vec());
        assert_eq!(
            pairs,
            [
                pair("percore", "tokio", &[0.5, 0.5, 0.5]),
                pair("percore", "c-uring", &[2.0, 1.25, 10.0 / 6.0]),
                pair("c-uring", "tokio", &[0.25, 0.4, 0.3]),
            ]
        );
        let table = table(&NetOptions::new(Protocol::Echo), &runs);
        assert!(
            table.contains("c-uring/tokio: req/s 1.00x, p99 1.00x, server CPU/req 0.30x (per round 0.250 0.400 0.300: median 0.300x)"),
            "{table}"
        );
    }

    #[test]
    fn a_server_on_epoll_shows_enters_but_no_sqes() {
        let runs = [run("percore-epoll", Some(Driver::Epoll))];
        let row = server_row(&runs, "percore-epoll");
        assert_eq!(row[row.len() - 4], "-");
        assert_eq!(row[row.len() - 3], "0.100");
        assert_eq!(row[row.len() - 2], "0.050");
        assert_eq!(row[row.len() - 1], "20.00 µs");
        let doc = json(&NetOptions::new(Protocol::Echo), &runs);
        assert_eq!(doc["runs"][0]["server_driver"], "epoll");
        assert!(doc["runs"][0]["server_sqes_per_request"].is_null());
    }

    #[test]
    fn cpu_ratios_are_also_taken_round_by_round() {
        // percore uses 10 ms in every round; tokio 20, 10 and 40 ms: the
        // ratio of medians is 0.5, the rounds' ratios 0.5, 1 and 0.25.
        let mut runs = Vec::new();
        for (round, tokio_ms) in [20, 10, 40].into_iter().enumerate() {
            let mut ours = run("percore", Some(Driver::IoUring));
            ours.round = round;
            let mut theirs = run("tokio", None);
            theirs.round = round;
            theirs.server_cpu = Some(Duration::from_millis(tokio_ms));
            runs.extend([ours, theirs]);
        }
        let ratio = &ratios(&runs)[0];
        assert_eq!(ratio.cpu, Some(0.5));
        assert_eq!(ratio.cpu_rounds, [0.5, 1.0, 0.25]);
        let table = table(&NetOptions::new(Protocol::Echo), &runs);
        assert!(
            table.contains("server CPU/req 0.50x (per round 0.500 1.000 0.250: median 0.500x)"),
            "{table}"
        );
        let doc = json(&NetOptions::new(Protocol::Echo), &runs);
        assert_eq!(
            doc["ratios"][0]["server_cpu_per_request_median_of_rounds"],
            0.5
        );
        assert_eq!(doc["runs"][5]["round"], 2);
        assert_eq!(doc["runs"][5]["client"], "percore");
    }
}
