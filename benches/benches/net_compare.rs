//! percore's echo and HTTP servers against tokio's and monoio's, in one run,
//! alternating, under two kinds of client: percore's own load generator
//! (`percore_bench::load`, in this process) and clients that are not percore
//! (`percore_bench::outside`): wrk for HTTP, a closed-loop tokio client for
//! echo (this bench binary re-run as `peer-client`).
//!
//! Every server runs in its own child process on 127.0.0.1, a fresh one for
//! every measurement: percore's is the `percore-bench serve` binary, the peers
//! are this bench binary re-run as `peer-server` (`common/peer.rs`). Servers
//! sit on the first CPU (and the second, with two threads), the client on the
//! second. On a 2-core machine the client saturates first, so the figure that
//! separates runtimes is the **server's CPU time per request**: the CPU all
//! the server process's threads used during a run
//! (`/proc/<pid>/task/*/schedstat`, nanoseconds), divided by the responses
//! the client received. Its ratio percore/tokio is printed twice: as the ratio
//! of the medians, and as the median of the ratios taken round by round (the
//! servers of one round run back to back, so machine drift cancels better).
//! For percore the server also reports its SQEs and `io_uring_enter` calls
//! (`percore::stats()`).
//!
//! percore's server runs twice: `percore` on io_uring and `percore-epoll`, the
//! same binary on the epoll backend (`PERCORE_DRIVER` set in each child's
//! environment, so an inherited value changes neither). tokio waits on epoll
//! too, so `percore-epoll` against tokio is runtime overhead against runtime
//! overhead on the same kernel interface. Its SQEs are the backend's emulation,
//! not submissions, so only its enters (`epoll_wait` calls) are shown.
//!
//! The two-thread cases also run `tokio-mt` (tokio's work-stealing
//! multi-thread runtime, two workers, one listener), what issue 17 compared
//! percore's two cores with.
//!
//! The cases are closed loop; the one-thread cases then run again
//! open loop at 50k req/s (percore client only), so CPU per request is also
//! seen at equal throughput.
//!
//! `cargo bench -p percore-bench --bench net_compare` (about 9 minutes);
//! arguments after `--`: `--rounds N`, `--seconds S`, `--clients
//! percore,outside` (either or both), and words that pick cases by name
//! (`-- http "4 KiB"`). Under `cargo test --benches` one short round runs as a
//! smoke check, the outside clients on the one-thread cases only (wrk's rows
//! take 1 s each, wrk's shortest run; without wrk on `PATH` they are skipped
//! with a note).

#[path = "common/peer.rs"]
mod peer;

#[path = "common/outside_client.rs"]
mod outside_client;

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use percore_bench::cli::NetOptions;
use percore_bench::load::LoadConfig;
use percore_bench::net::{self, median_of, per_round_ratios, Plan, Programs, Run};
use percore_bench::output;
use percore_bench::outside::{self, Client, Launcher};
use percore_bench::report::median_f64;
use percore_bench::server::Protocol;

/// One workload.
struct Case {
    name: &'static str,
    protocol: Protocol,
    size: usize,
    server_threads: usize,
    /// Open loop at this many requests/s (all connections); `None`: closed loop.
    rate: Option<f64>,
}

const fn case(name: &'static str, protocol: Protocol, size: usize, server_threads: usize) -> Case {
    Case {
        name,
        protocol,
        size,
        server_threads,
        rate: None,
    }
}

/// The cases (closed loop: the client sends as fast as responses
/// come), then the one-thread cases again at a fixed rate every server
/// sustains, so CPU per request is compared at equal throughput too.
const CASES: [Case; 9] = [
    case("echo 128 B, 1 server thread", Protocol::Echo, 128, 1),
    case("echo 4 KiB, 1 server thread", Protocol::Echo, 4096, 1),
    case("http, 1 server thread", Protocol::Http, 0, 1),
    case("echo 128 B, 2 server threads", Protocol::Echo, 128, 2),
    case("echo 4 KiB, 2 server threads", Protocol::Echo, 4096, 2),
    case("http, 2 server threads", Protocol::Http, 0, 2),
    Case {
        rate: Some(OPEN_LOOP_RATE),
        ..case(
            "echo 128 B, 1 server thread, 50k req/s",
            Protocol::Echo,
            128,
            1,
        )
    },
    Case {
        rate: Some(OPEN_LOOP_RATE),
        ..case(
            "echo 4 KiB, 1 server thread, 50k req/s",
            Protocol::Echo,
            4096,
            1,
        )
    },
    Case {
        rate: Some(OPEN_LOOP_RATE),
        ..case("http, 1 server thread, 50k req/s", Protocol::Http, 0, 1)
    },
];

/// Requests/s of the open-loop cases: below what every server reaches on one
/// core of the project's machine (about 100k+ req/s), so none saturates.
const OPEN_LOOP_RATE: f64 = 50_000.0;

const CONNECTIONS: usize = 64;

/// The servers of every case, in the order of the first round.
const SERVERS: [&str; 4] = ["percore", "percore-epoll", "tokio", "monoio"];

/// How the bench was asked to run.
struct Config {
    benchmarking: bool,
    rounds: usize,
    duration: Duration,
    /// `percore`, `outside`: which kinds of client to run.
    clients: Vec<&'static str>,
    /// Words a case's name must contain one of (empty: every case).
    filters: Vec<String>,
}

impl Config {
    fn from_args(args: &[String]) -> Result<Config, String> {
        let benchmarking = args.iter().any(|arg| arg == "--bench");
        let mut config = if benchmarking {
            Config {
                benchmarking,
                rounds: 3,
                duration: Duration::from_secs(2),
                clients: vec!["percore", "outside"],
                filters: Vec::new(),
            }
        } else {
            Config {
                benchmarking,
                rounds: 1,
                duration: Duration::from_millis(200),
                clients: vec!["percore", "outside"],
                filters: Vec::new(),
            }
        };
        let mut words = args.iter();
        while let Some(word) = words.next() {
            let mut value = |flag: &str| {
                words
                    .next()
                    .ok_or_else(|| format!("`{flag}` needs a value"))
            };
            match word.as_str() {
                "--bench" => {}
                "--rounds" => {
                    config.rounds = value(word)?
                        .parse()
                        .ok()
                        .filter(|n| (1..=25).contains(n))
                        .ok_or("`--rounds`: expected 1 to 25")?;
                }
                "--seconds" => {
                    let secs: f64 = value(word)?
                        .parse()
                        .ok()
                        .filter(|s| (0.05..=600.0).contains(s))
                        .ok_or("`--seconds`: expected 0.05 to 600")?;
                    config.duration = Duration::from_secs_f64(secs);
                }
                "--clients" => {
                    let list = value(word)?;
                    config.clients = Vec::new();
                    for name in list.split(',') {
                        config.clients.push(match name {
                            "percore" => "percore",
                            "outside" => "outside",
                            _ => {
                                return Err(format!(
                                    "`--clients {list}`: expected percore and/or outside"
                                ))
                            }
                        });
                    }
                }
                // libtest's own flags under `cargo test`.
                flag if flag.starts_with('-') => {}
                filter => config.filters.push(filter.to_owned()),
            }
        }
        Ok(config)
    }

    fn wants(&self, case: &Case) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| case.name.contains(f.as_str()))
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("peer-server") => return peer::serve_main(args[1..].to_vec()),
        Some("peer-client") => return outside_client::client_main(args[1..].to_vec()),
        _ => {}
    }
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("net_compare: {err}");
            return ExitCode::from(2);
        }
    };
    if let Ok(driver) = std::env::var("PERCORE_DRIVER") {
        // The servers' backends are set per row; the percore client is a
        // percore runtime of this process, so it takes the variable.
        println!("net_compare: PERCORE_DRIVER={driver} applies to the percore client only");
    }
    let programs = match programs() {
        Ok(programs) => programs,
        Err(err) => {
            eprintln!("net_compare: {err}");
            return ExitCode::FAILURE;
        }
    };
    let wrk = outside::wrk_available();
    if !wrk {
        println!("net_compare: wrk is not installed (`apt-get install -y wrk`): its HTTP rows are skipped");
    }
    let mut verdicts = Vec::new();
    let mut epoll_lines = Vec::new();
    let mut summary = Vec::new();
    for case in CASES.iter().filter(|case| config.wants(case)) {
        for kind in &config.clients {
            let client = match *kind {
                "outside" => Client::outside(case.protocol),
                _ => Client::Percore,
            };
            if client != Client::Percore && case.rate.is_some() {
                continue; // the outside clients are closed loop
            }
            if client == Client::Wrk && !wrk {
                continue;
            }
            if client != Client::Percore && !config.benchmarking && case.server_threads > 1 {
                continue; // a quick smoke: the outside clients once per protocol
            }
            match run_case(case, client, &config, &programs) {
                Ok(runs) => {
                    verdicts.extend(judge(case, client, &runs));
                    if client == Client::Percore {
                        epoll_lines.push(epoll_beside_tokio(case, &runs));
                    }
                    summary.push(summary_line(case, client, &runs));
                }
                Err(err) => {
                    eprintln!(
                        "net_compare: {} ({} client): {err}",
                        case.name,
                        client.name()
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    println!("server CPU/req percore/tokio: ratio of medians; median of the per-round ratios [each round]");
    for line in summary {
        println!("  {line}");
    }
    if config.benchmarking {
        println!(
            "percore-epoll beside tokio (medians; both wait on epoll, so this is runtime overhead)"
        );
        for line in epoll_lines {
            println!("  {line}");
        }
        println!("targets (medians)");
        for (what, value, target, pass) in verdicts {
            println!(
                "  {what:<62} {value:>7.3} (target {target})  {}",
                if pass { "PASS" } else { "MISS" }
            );
        }
    }
    ExitCode::SUCCESS
}

/// percore's server is the `percore-bench` binary; the peers' servers and the
/// tokio client are this bench binary re-run.
fn programs() -> io::Result<Programs> {
    let this = std::env::current_exe()?;
    Ok(Programs {
        percore: env!("CARGO_BIN_EXE_percore-bench").into(),
        peer: Launcher {
            program: this.clone(),
            args: vec!["peer-server".into()],
        },
        c_uring: percore_bench::child::c_uring_server_near(&this),
        tokio_client: Launcher {
            program: this,
            args: vec!["peer-client".into()],
        },
    })
}

fn run_case(
    case: &Case,
    client: Client,
    config: &Config,
    programs: &Programs,
) -> io::Result<Vec<Run>> {
    let mut servers = SERVERS.map(str::to_owned).to_vec();
    if case.server_threads > 1 {
        // Work stealing across the threads: what issue 17 measured percore
        // against with two server threads.
        servers.push("tokio-mt".to_owned());
    }
    let plan = Plan {
        servers,
        clients: vec![client],
        rounds: config.rounds,
        reuse_servers: false,
        protocol: case.protocol,
        server_threads: case.server_threads,
        pin: true,
        percore_on_io_uring: true,
        load: LoadConfig {
            target: ([127, 0, 0, 1], 0).into(),
            protocol: case.protocol,
            size: case.size.max(1),
            connections: CONNECTIONS,
            duration: config.duration,
            cores: 1,
            rate: case.rate,
            first_cpu: Some(1),
            progress: false,
            send_alone: false,
        },
        warmup: None,
    };
    let runs = net::run_plan(&plan, programs)?;
    if let Some(run) = runs.iter().find(|run| run.load.errors > 0) {
        return Err(io::Error::other(format!(
            "{}: {} failed requests, first: {}",
            run.server,
            run.load.errors,
            run.load.first_error.as_deref().unwrap_or("?")
        )));
    }
    let mut options = NetOptions::new(case.protocol);
    options.connections = CONNECTIONS;
    options.size = case.size;
    options.duration = match client {
        Client::Wrk => Duration::from_secs(outside::wrk_seconds(config.duration)),
        _ => config.duration,
    };
    options.server_cores = case.server_threads;
    options.compare = true;
    options.rate = case.rate;
    options.clients = vec![client];
    println!("== {}, {} client", case.name, client.name());
    print!("{}", output::table(&options, &runs));
    println!();
    Ok(runs)
}

/// Server CPU per request of `server` in `runs`, in seconds, median.
fn cpu_of(runs: &[Run], server: &str) -> Option<f64> {
    median_of(runs, server, |r| {
        r.cpu_per_request().map(|d| d.as_secs_f64())
    })
}

/// percore/tokio server CPU per request: the ratio of the medians, and the
/// median of the per-round ratios with the rounds.
fn cpu_ratios(runs: &[Run]) -> Option<(f64, f64, Vec<f64>)> {
    let of_medians = cpu_of(runs, "percore")? / cpu_of(runs, "tokio")?;
    let rounds = per_round_ratios(runs, "percore", "tokio", |r| {
        r.cpu_per_request().map(|d| d.as_secs_f64())
    });
    Some((of_medians, median_f64(rounds.iter().copied()), rounds))
}

/// One line of the closing summary: the case, the client, the ratios.
fn summary_line(case: &Case, client: Client, runs: &[Run]) -> String {
    let what = format!("{}, {} client", case.name, client.name());
    match cpu_ratios(runs) {
        Some((of_medians, median, rounds)) => {
            let rounds: Vec<String> = rounds.iter().map(|r| format!("{r:.3}")).collect();
            format!(
                "{what:<58} {of_medians:.3}; {median:.3} [{}]",
                rounds.join(" ")
            )
        }
        None => format!("{what:<58} -"),
    }
}

/// (what, value, target, pass) for the project's targets that apply to
/// `case` under `client`: with an outside client, issue 17's (server CPU per
/// request at most 0.95× tokio's, median of the per-round ratios, one server
/// thread); with percore's client, the earlier ones below.
fn judge(case: &Case, client: Client, runs: &[Run]) -> Vec<(String, f64, String, bool)> {
    let cpu = |server: &str| cpu_of(runs, server);
    let rate = |server: &str| median_of(runs, server, |r| Some(r.load.rate()));
    let mut out = Vec::new();
    if case.rate.is_some() {
        // The targets are for the closed-loop cases; these are for reading.
        return out;
    }
    if client != Client::Percore {
        if let (1, Some((_, median, _))) = (case.server_threads, cpu_ratios(runs)) {
            out.push((
                format!(
                    "{}, {}: server CPU/req percore/tokio by round",
                    case.name,
                    client.name()
                ),
                median,
                format!("<= {OUTSIDE_CPU_LIMIT}"),
                median <= OUTSIDE_CPU_LIMIT,
            ));
        }
        return out;
    }
    let limit = match (case.protocol, case.server_threads) {
        (_, 1) => Some(1.03),
        (Protocol::Http, 2) => Some(0.97),
        _ => None,
    };
    if let (Some(limit), Some(p), Some(t)) = (limit, cpu("percore"), cpu("tokio")) {
        let ratio = p / t;
        out.push((
            format!("{}: server CPU/req percore/tokio", case.name),
            ratio,
            format!("<= {limit}"),
            ratio <= limit,
        ));
    }
    // The epoll backend is judged where the io_uring one is, against the
    // same tokio: it may cost a little more than tokio, not much.
    if let (Some(_), Some(e), Some(t)) = (limit, cpu("percore-epoll"), cpu("tokio")) {
        let ratio = e / t;
        out.push((
            format!("{}: server CPU/req percore-epoll/tokio", case.name),
            ratio,
            format!("<= {EPOLL_CPU_LIMIT}"),
            ratio <= EPOLL_CPU_LIMIT,
        ));
    }
    if let (Some(p), Some(t)) = (rate("percore"), rate("tokio")) {
        let ratio = p / t;
        out.push((
            format!("{}: req/s percore/tokio", case.name),
            ratio,
            ">= 1".into(),
            ratio >= 1.0,
        ));
    }
    if case.protocol == Protocol::Echo && case.server_threads == 1 {
        if let Some(sqes) = median_of(runs, "percore", Run::sqes_per_request) {
            out.push((
                format!("{}: percore SQEs/req", case.name),
                sqes,
                "<= 1.05".into(),
                sqes <= 1.05,
            ));
        }
    }
    out
}

/// percore's server CPU per request over tokio's under an outside client, at
/// most (issue 17).
const OUTSIDE_CPU_LIMIT: f64 = 0.95;

/// percore-epoll's server CPU per request over tokio's, at most.
const EPOLL_CPU_LIMIT: f64 = 1.05;

/// One line for `case`: percore-epoll's server CPU per request and req/s over
/// tokio's, and its `epoll_wait` calls per request (`-` where not measured).
fn epoll_beside_tokio(case: &Case, runs: &[Run]) -> String {
    let over = |figure: &dyn Fn(&Run) -> Option<f64>| {
        let ratio = median_of(runs, "percore-epoll", figure)? / median_of(runs, "tokio", figure)?;
        Some(format!("{ratio:.2}x"))
    };
    let cpu = over(&|r| r.cpu_per_request().map(|d| d.as_secs_f64()));
    let rate = over(&|r| Some(r.load.rate()));
    let enters = median_of(runs, "percore-epoll", Run::enters_per_request);
    let dash = || "-".to_owned();
    format!(
        "{:<40} server CPU/req {:>6}, req/s {:>6}, enters/req {}",
        case.name,
        cpu.unwrap_or_else(dash),
        rate.unwrap_or_else(dash),
        enters.map_or_else(dash, |e| format!("{e:.3}")),
    )
}
