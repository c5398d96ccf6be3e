//! percore-http against hyper on tokio: the same hello-world service
//! (`percore_bench::http_serve::hello`), loaded by wrk (HTTP/1.1, clear and
//! TLS) and h2load (h2c with prior knowledge, and h2 over TLS by ALPN).
//!
//! Servers, each a fresh child process per measurement (this bench binary
//! re-run as `serve NAME`), pinned from the first CPU; the tool pinned to
//! the CPU after them:
//!
//! - `percore-http`: `percore::http::server` on io_uring;
//! - `percore-http-epoll`: the same on the epoll backend;
//! - `hyper-tokio-ct`: hyper-util's connection on a tokio current-thread
//!   runtime per core (the baseline: every ratio is over it);
//! - `hyper-tokio-mt`: the same on tokio's multi-thread runtime;
//! - `hyper-tokio-ct-bare` (only with `--servers`, and in the smoke):
//!   `hyper-tokio-ct` without tokio's timer on hyper, as hyper's own
//!   examples serve — no header read timeout, no timer armed per request.
//!
//! - `percore-compat` (only with `--servers`, and in the smoke; HTTP/1.1
//!   only, so `--cases h1`): hyper's HTTP/1.1 over percore's `Compat`, as
//!   percore's `hyper` example served before percore-http — what
//!   percore-http's I/O path replaces.
//!
//! percore-http and the first three arm the same 30 s header read timeout
//! (so does `percore-compat`, hyper's own, on percore's timer).
//!
//! Per round and server: requests/s, the server's CPU per answered request
//! (all its threads), percore's SQEs and enters per request; then medians,
//! per-round ratios to the baseline and their median, and the issue's
//! targets (CPU/req ≤ 0.85×, req/s ≥ 1.1× at one server core). Then memory
//! per idle keep-alive connection (HTTP/1.1 and h2c, opened from here):
//! resident set and live heap growth (glibc's heap, plus percore's task
//! arena: a connection's task is not on glibc's heap), target < 2 KiB.
//!
//! ```text
//! cargo bench -p percore-bench --bench http_compare                       # 3 rounds of 5 s, every case
//! cargo bench -p percore-bench --bench http_compare -- --cases h1,h2c --rounds 5 --duration 10
//! cargo bench -p percore-bench --bench http_compare -- --servers percore-http,hyper-tokio-ct --idle 5000
//! ```
//!
//! Flags: `--duration SECS` (5), `--rounds N` (3), `--connections N` (64),
//! `--streams N` (h2load's `-m`, 10), `--server-cores N` (1), `--warmup
//! SECS` (none), `--cases h1,h2c,h2-tls,h1-tls`, `--servers …`, `--idle N`
//! (connections held for the memory figure, 2000; 0 skips it),
//! `--idle-rounds N` (3), `--no-pin`.
//!
//! Under `cargo test -p percore-bench` (no `--bench` argument) it runs as a
//! smoke: one round of 1 s per case and server at 8 connections, 50 idle
//! connections (read 100 ms after they were answered, not 1.5 s); a case
//! whose tool is not installed is skipped with a note.
//! It checks every run was answered without errors and judges no figure.

#[path = "common/hyper_peer.rs"]
mod hyper_peer;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use percore_bench::cli::{self, Command};
use percore_bench::cpu;
use percore_bench::http_compare::{
    self, case_report, client, idle_report, Case, IdleProtocol, Load, Options, ServerSpec,
};
use percore_bench::http_serve::{self, ChildReport, Stack};

/// Every server this bench can start, the baseline first.
const SERVERS: [&str; 6] = [
    "hyper-tokio-ct",
    "percore-http",
    "percore-http-epoll",
    "hyper-tokio-mt",
    "hyper-tokio-ct-bare",
    "percore-compat",
];
/// The servers run unless `--servers` says otherwise.
const DEFAULT_SERVERS: [&str; 4] = [
    "hyper-tokio-ct",
    "percore-http",
    "percore-http-epoll",
    "hyper-tokio-mt",
];
const BASELINE: &str = "hyper-tokio-ct";

/// The issue's targets, for percore-http over the baseline at one core.
const CPU_TARGET: f64 = 0.85;
const RATE_TARGET: f64 = 1.1;
const IDLE_TARGET_BYTES: f64 = 2048.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve_main(&args[1..]);
    }
    let bench = args.iter().any(|a| a == "--bench");
    let settings = if bench {
        match Settings::parse(&args) {
            Ok(settings) => settings,
            Err(err) => {
                eprintln!("http_compare: {err}");
                return ExitCode::from(2);
            }
        }
    } else {
        Settings::smoke()
    };
    match compare(&settings, bench) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("http_compare: {err}");
            ExitCode::FAILURE
        }
    }
}

/// What to run.
struct Settings {
    options: Options,
    idle: usize,
    idle_rounds: usize,
    /// Before each memory reading: [`http_compare::IDLE_SETTLE`], shorter
    /// in the smoke (which judges no figure).
    idle_settle: Duration,
}

impl Settings {
    fn defaults() -> Settings {
        Settings {
            options: Options {
                servers: Vec::new(),
                baseline: BASELINE.into(),
                cases: Case::ALL.to_vec(),
                load: Load {
                    connections: 64,
                    streams: 10,
                    duration: Duration::from_secs(5),
                    cpu: None,
                },
                rounds: 3,
                server_cores: 1,
                server_cpu: Some(0),
                warmup: None,
            },
            idle: 2000,
            idle_rounds: 3,
            idle_settle: http_compare::IDLE_SETTLE,
        }
    }

    fn smoke() -> Settings {
        let mut settings = Settings::defaults();
        settings.options.load.connections = 8;
        settings.options.load.streams = 4;
        settings.options.load.duration = Duration::from_secs(1);
        settings.options.rounds = 1;
        settings.idle = 50;
        settings.idle_rounds = 1;
        // The smoke checks that every server answers and is measured; the
        // figures mean nothing at 50 connections. 3 s a run less (17 runs).
        settings.idle_settle = Duration::from_millis(100);
        settings.finish(&SERVERS.map(String::from))
    }

    fn parse(args: &[String]) -> Result<Settings, String> {
        let mut settings = Settings::defaults();
        let mut servers: Vec<String> = DEFAULT_SERVERS.map(String::from).to_vec();
        let mut pin = true;
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("`{flag}` needs a value"))
            };
            let secs = |text: String| -> Result<Duration, String> {
                let secs: f64 = text
                    .parse()
                    .map_err(|_| format!("`{flag} {text}`: seconds"))?;
                if !(0.01..=3600.0).contains(&secs) {
                    return Err(format!("`{flag} {text}`: 0.01 to 3600 seconds"));
                }
                Ok(Duration::from_secs_f64(secs))
            };
            let number = |text: String, max: usize| -> Result<usize, String> {
                match text.parse() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(format!("`{flag} {text}`: a number from 1 to {max}")),
                }
            };
            let o = &mut settings.options;
            match flag.as_str() {
                "--bench" => {}
                "--duration" => o.load.duration = secs(value()?)?,
                "--warmup" => o.warmup = Some(secs(value()?)?),
                "--rounds" => o.rounds = number(value()?, 25)?,
                "--connections" => o.load.connections = number(value()?, 10_000)?,
                "--streams" => o.load.streams = number(value()?, 1000)?,
                "--server-cores" => o.server_cores = number(value()?, 64)?,
                "--idle" => {
                    let text = value()?;
                    settings.idle = if text == "0" {
                        0
                    } else {
                        number(text, 50_000)?
                    };
                }
                "--idle-rounds" => settings.idle_rounds = number(value()?, 25)?,
                "--no-pin" => pin = false,
                "--cases" => {
                    o.cases = value()?
                        .split(',')
                        .map(|name| {
                            Case::from_name(name.trim()).ok_or_else(|| {
                                format!("`--cases`: `{name}` is not one of h1, h2c, h2-tls, h1-tls")
                            })
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--servers" => {
                    servers = value()?.split(',').map(|s| s.trim().to_owned()).collect();
                    if let Some(bad) = servers.iter().find(|s| !SERVERS.contains(&s.as_str())) {
                        return Err(format!(
                            "`--servers`: `{bad}` is not one of {}",
                            SERVERS.join(", ")
                        ));
                    }
                }
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        if !pin {
            settings.options.server_cpu = None;
        }
        Ok(settings.finish(&servers))
    }

    /// Fills in the servers and the client's CPU (the one after the servers').
    fn finish(mut self, servers: &[String]) -> Settings {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("http_compare"));
        self.options.servers = servers.iter().map(|name| spec(&exe, name)).collect();
        self.options.load.cpu = self
            .options
            .server_cpu
            .and_then(|first| cpu::cpu_for(first, self.options.server_cores));
        self
    }
}

/// How to start the server called `name`: this binary, `serve NAME`.
fn spec(exe: &std::path::Path, name: &str) -> ServerSpec {
    let (args_name, driver) = match name {
        "percore-http" => ("percore-http", Some("io_uring")),
        "percore-http-epoll" => ("percore-http", Some("epoll")),
        "percore-compat" => ("percore-compat", Some("io_uring")),
        other => (other, None),
    };
    ServerSpec {
        name: name.into(),
        program: exe.to_path_buf(),
        args: vec!["serve".into(), args_name.into()],
        env: driver
            .map(|d| vec![("PERCORE_DRIVER".to_owned(), d.to_owned())])
            .unwrap_or_default(),
        driver: driver.map(str::to_owned),
        http1_only: name == "percore-compat",
    }
}

fn compare(settings: &Settings, bench: bool) -> io::Result<()> {
    let options = &settings.options;
    let load = &options.load;
    println!(
        "http_compare: {} server core(s) from CPU {}, client on CPU {}; {} round(s) of {:?}; \
         load average {} (figures measured under load if that is not ~0); {}",
        options.server_cores,
        options.server_cpu.map_or("-".into(), |c| c.to_string()),
        load.cpu.map_or("-".into(), |c| c.to_string()),
        options.rounds,
        load.duration,
        http_compare::load_average(),
        cpu::machine()
    );
    let mut verdicts = Vec::new();
    for &case in &options.cases {
        if client::find_tool(case.tool()).is_none() {
            println!(
                "\n{}: skipped, `{}` is not installed (apt-get install -y {})",
                case.name(),
                case.tool(),
                if case.tool() == "wrk" {
                    "wrk"
                } else {
                    "nghttp2-client"
                }
            );
            continue;
        }
        let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let line = client::command_line(case, any_port, load).join(" ");
        let title = format!("\n{}: {}", case.name(), line.replace(":0/", ":PORT/"));
        eprintln!("running {}", case.name());
        let runs = http_compare::run_case(options, case, |run| {
            eprintln!(
                "  round {} {:<20} {:>10}  CPU/req {}",
                run.round + 1,
                run.server,
                percore_bench::report::rate(run.client.req_per_s()),
                percore_bench::report::duration(run.cpu_per_request())
            );
        })?;
        let (text, summaries) = case_report(&title, &runs, &options.baseline);
        print!("{text}");
        if let Some(mine) = summaries.iter().find(|s| s.server == "percore-http") {
            if let (Some(cpu), Some(rate)) = (mine.cpu_ratio(), mine.rate_ratio()) {
                verdicts.push(format!(
                    "{}: CPU/req percore-http/{BASELINE} {cpu:.3} (target <= {CPU_TARGET}: {}), \
                     req/s {rate:.3} (target >= {RATE_TARGET}: {})",
                    case.name(),
                    pass(cpu <= CPU_TARGET),
                    pass(rate >= RATE_TARGET)
                ));
            }
        }
    }
    if settings.idle > 0 {
        for protocol in [IdleProtocol::H1, IdleProtocol::H2c, IdleProtocol::H1Tls] {
            let title = format!(
                "\nidle keep-alive connections, {}: {} per server, one request each",
                protocol.name(),
                settings.idle
            );
            eprintln!("running idle {}", protocol.name());
            let runs = http_compare::run_idle(
                options,
                protocol,
                settings.idle,
                settings.idle_rounds,
                settings.idle_settle,
                |run| {
                    eprintln!(
                        "  round {} {:<20} RSS/conn {:.0} B",
                        run.round + 1,
                        run.server,
                        run.rss_per_connection()
                    )
                },
            )?;
            let (text, summaries) = idle_report(&title, &runs);
            print!("{text}");
            if let Some(mine) = summaries.iter().find(|s| s.server == "percore-http") {
                verdicts.push(format!(
                    "idle {}: percore-http RSS/conn {:.0} B, heap/conn {} (target < {IDLE_TARGET_BYTES} B: {})",
                    protocol.name(),
                    mine.rss_per_connection,
                    mine.heap_per_connection
                        .map_or("-".into(), |h| format!("{h:.0} B")),
                    pass(mine.rss_per_connection.max(mine.heap_per_connection.unwrap_or(0.0))
                        < IDLE_TARGET_BYTES)
                ));
            }
        }
    }
    if bench {
        println!("\ntargets (issue 16, one server core):");
        for verdict in &verdicts {
            println!("  {verdict}");
        }
    } else {
        println!("\nsmoke: every run answered without errors (no figure judged)");
    }
    println!("load average at the end: {}", http_compare::load_average());
    Ok(())
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

/// `serve NAME` and the flags of `percore-bench serve` (`--addr --cores
/// --first-cpu --control --tls`): runs one server of the comparison.
fn serve_main(args: &[String]) -> ExitCode {
    let Some((name, flags)) = args.split_first() else {
        eprintln!(
            "http_compare serve: expected a server name: {}",
            SERVERS.join(", ")
        );
        return ExitCode::from(2);
    };
    // The flags parse as `percore-bench serve http --server percore-http`'s.
    let line = ["serve", "http", "--server", "percore-http"]
        .into_iter()
        .map(String::from)
        .chain(flags.iter().cloned());
    let options = match cli::parse(line) {
        Ok(Command::Serve(options)) => options,
        Ok(_) => {
            eprintln!("http_compare serve: expected server flags");
            return ExitCode::from(2);
        }
        Err(err) => {
            eprintln!("http_compare serve: {err}");
            return ExitCode::from(2);
        }
    };
    let result = match name.as_str() {
        "percore-http" => http_serve::serve(&options),
        "percore-compat" => http_serve::serve_stack(Stack::Compat, &options),
        other => match hyper_peer::from_name(other) {
            Some((flavor, timer)) => serve_peer(flavor, timer, other, &options),
            None => {
                eprintln!("http_compare serve: unknown server `{other}`");
                return ExitCode::from(2);
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("http_compare serve {name}: {err}");
            ExitCode::from(2)
        }
    }
}

fn serve_peer(
    flavor: hyper_peer::Flavor,
    timer: bool,
    name: &str,
    options: &cli::ServeOptions,
) -> io::Result<()> {
    let addr = hyper_peer::start(
        flavor,
        timer,
        options.addr,
        options.cores,
        options.first_cpu,
        options.tls,
    )?;
    println!(
        "http_compare serve: {name}{} listening on {addr} ({} threads)",
        if options.tls { " (TLS)" } else { "" },
        options.cores
    );
    if options.control {
        http_serve::answer_stdin(|| ChildReport {
            heap: http_serve::heap_in_use(),
            ..ChildReport::default()
        });
        return Ok(());
    }
    loop {
        std::thread::park();
    }
}
