//! percore's echo and HTTP servers against tokio's and monoio's, under the same
//! load generator (`percore_bench::load`), in one run, alternating.
//!
//! Every server runs in its own child process on 127.0.0.1: percore's is the
//! `percore-bench serve` binary, the peers are this bench binary re-run as
//! `peer-server` (`common/peer.rs`). Servers sit on the first CPU (and the
//! second, with two threads), the client on the second, one core. On a 2-core
//! machine the client saturates first, so the figure that separates runtimes
//! is the **server's CPU time per request**: the CPU all the server process's
//! threads used during a run (`/proc/<pid>/task/*/schedstat`, nanoseconds),
//! divided by the responses the client received. For percore the server also
//! reports its SQEs and `io_uring_enter` calls (`percore::stats()`).
//!
//! percore's server runs twice: `percore` on io_uring and `percore-epoll`, the
//! same binary on the epoll backend (`PERCORE_DRIVER` set in each child's
//! environment, so an inherited value changes neither). tokio waits on epoll
//! too, so `percore-epoll` against tokio is runtime overhead against runtime
//! overhead on the same kernel interface. Its SQEs are the backend's emulation,
//! not submissions, so only its enters (`epoll_wait` calls) are shown.
//!
//! The cases are closed loop; the one-thread cases then run again
//! open loop at 50k req/s, so CPU per request is also seen at equal throughput.
//!
//! `cargo bench -p percore-bench --bench net_compare` (about 4.5 minutes);
//! under `cargo test --benches` one short round runs as a smoke check.

#[path = "common/peer.rs"]
mod peer;

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use percore::Driver;
use percore_bench::child::ServerChild;
use percore_bench::cli::NetOptions;
use percore_bench::load::LoadConfig;
use percore_bench::net::{self, median_of, Run};
use percore_bench::output;
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

/// The backend each of percore's servers must run on.
fn percore_driver(name: &str) -> Option<Driver> {
    match name {
        "percore" => Some(Driver::IoUring),
        "percore-epoll" => Some(Driver::Epoll),
        _ => None,
    }
}

struct Config {
    rounds: usize,
    duration: Duration,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("peer-server") {
        return peer::serve_main(args[1..].to_vec());
    }
    let benchmarking = args.iter().any(|arg| arg == "--bench");
    let config = if benchmarking {
        Config {
            rounds: 3,
            duration: Duration::from_secs(2),
        }
    } else {
        Config {
            rounds: 1,
            duration: Duration::from_millis(200),
        }
    };
    if let Ok(driver) = std::env::var("PERCORE_DRIVER") {
        // The servers' backends are set per row; the client is a percore
        // runtime of this process, so it takes the variable.
        println!("net_compare: PERCORE_DRIVER={driver} applies to the client only");
    }
    let mut verdicts = Vec::new();
    let mut epoll_lines = Vec::new();
    for case in &CASES {
        match run_case(case, &config) {
            Ok(runs) => {
                verdicts.extend(judge(case, &runs));
                epoll_lines.push(epoll_beside_tokio(case, &runs));
            }
            Err(err) => {
                eprintln!("net_compare: {}: {err}", case.name);
                return ExitCode::FAILURE;
            }
        }
    }
    if benchmarking {
        println!(
            "percore-epoll beside tokio (medians; both wait on epoll, so this is runtime overhead)"
        );
        for line in epoll_lines {
            println!("  {line}");
        }
        println!("targets (medians)");
        for (what, value, target, pass) in verdicts {
            println!(
                "  {what:<46} {value:>7.3} (target {target})  {}",
                if pass { "PASS" } else { "MISS" }
            );
        }
    }
    ExitCode::SUCCESS
}

fn start(name: &str, case: &Case) -> io::Result<ServerChild> {
    let args = |first: &str| {
        vec![
            first.to_owned(),
            case.protocol.name().to_owned(),
            "--addr".into(),
            "127.0.0.1:0".into(),
            "--cores".into(),
            case.server_threads.to_string(),
            "--first-cpu".into(),
            "0".into(),
            "--control".into(),
        ]
    };
    if let Some(driver) = percore_driver(name) {
        let percore = env!("CARGO_BIN_EXE_percore-bench");
        let env = [("PERCORE_DRIVER", driver.name())];
        let mut server = ServerChild::spawn_with_env(name, percore.as_ref(), &args("serve"), &env)?;
        let runs_on = server.stats().and_then(|stats| stats.driver);
        if runs_on != Some(driver) {
            return Err(io::Error::other(format!(
                "{name} server should run on {driver}, it reports {runs_on:?}"
            )));
        }
        Ok(server)
    } else {
        let mut all = vec!["peer-server".to_owned()];
        all.extend(args(name));
        ServerChild::spawn(name, &std::env::current_exe()?, &all)
    }
}

fn run_case(case: &Case, config: &Config) -> io::Result<Vec<Run>> {
    let mut servers = SERVERS
        .iter()
        .map(|name| start(name, case))
        .collect::<io::Result<Vec<_>>>()?;
    let mut runs = Vec::new();
    for round in 0..config.rounds {
        for i in 0..servers.len() {
            let count = servers.len();
            let server = &mut servers[(round + i) % count];
            let load = LoadConfig {
                target: server.addr(),
                protocol: case.protocol,
                size: case.size.max(1),
                connections: CONNECTIONS,
                duration: config.duration,
                cores: 1,
                rate: case.rate,
                first_cpu: Some(1),
                progress: false,
            };
            let run = net::measure(server, &load)?;
            if run.load.errors > 0 {
                return Err(io::Error::other(format!(
                    "{}: {} failed requests, first: {}",
                    run.server,
                    run.load.errors,
                    run.load.first_error.as_deref().unwrap_or("?")
                )));
            }
            runs.push(run);
        }
    }
    let mut options = NetOptions::new(case.protocol);
    options.connections = CONNECTIONS;
    options.size = case.size;
    options.duration = config.duration;
    options.server_cores = case.server_threads;
    options.compare = true;
    options.rate = case.rate;
    println!("== {}", case.name);
    print!("{}", output::table(&options, &runs));
    println!();
    Ok(runs)
}

/// (what, value, target, pass) for the project's targets that apply to `case`.
fn judge(case: &Case, runs: &[Run]) -> Vec<(String, f64, String, bool)> {
    let cpu = |server: &str| {
        median_of(runs, server, |r| {
            r.cpu_per_request().map(|d| d.as_secs_f64())
        })
    };
    let rate = |server: &str| median_of(runs, server, |r| Some(r.load.rate()));
    let mut out = Vec::new();
    if case.rate.is_some() {
        // The targets are for the closed-loop cases; these are for reading.
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
