//! percore-http against hyper on tokio, loaded by wrk and h2load: the
//! driver of the `http_compare` bench (the peers' servers live in the
//! bench, this library has no tokio).
//!
//! Every measurement starts a fresh server process ([`ServerSpec`]) pinned
//! from the first CPU, loads it with one tool ([`Case`]) pinned to the CPU
//! after, and divides the server's CPU time over the run (all its threads,
//! `clock_getcpuclockid`) by the requests the tool saw answered. Rounds
//! alternate the servers, the one going first rotating; ratios are taken
//! per round against the baseline server, then their median.
//!
//! [`idle`] measures memory per idle keep-alive connection: the server's
//! resident set (and live heap, when it reports one) before and after
//! opening many connections that each made one request.

pub mod client;
pub mod idle;
mod report;

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

pub use client::{Case, ClientReport, Load};
pub use idle::IdleProtocol;
pub use report::{case_report, idle_report, CaseSummary, IdleSummary};

use crate::child::{listening_addr, STATS_REQUEST};
use crate::cpu;

/// A server to start for each measurement: `program args… --addr
/// 127.0.0.1:0 --cores N --first-cpu C --control [--tls]` (the flags of
/// `percore-bench serve`), which prints a `listening on` line and answers
/// `stats` lines on stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Its name in reports (`percore-http`, `hyper-tokio-ct`…).
    pub name: String,
    /// The program to run.
    pub program: PathBuf,
    /// Its arguments before the serve flags.
    pub args: Vec<String>,
    /// Environment set for it (`PERCORE_DRIVER=epoll`…).
    pub env: Vec<(String, String)>,
    /// The backend it must report (`io_uring`, `epoll`), for percore
    /// servers: a server on another one stops the comparison.
    pub driver: Option<String>,
    /// It speaks plain HTTP/1.1 only: loads other than [`Case::H1`] and idle
    /// connections other than [`IdleProtocol::H1`] leave it out.
    pub http1_only: bool,
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct Options {
    /// The servers, in the order of the first round.
    pub servers: Vec<ServerSpec>,
    /// The server every other is divided by (its name).
    pub baseline: String,
    /// The loads.
    pub cases: Vec<Case>,
    /// How hard each load is.
    pub load: Load,
    /// Rounds per case.
    pub rounds: usize,
    /// Cores (threads) of each server.
    pub server_cores: usize,
    /// The first CPU of the servers (among the allowed ones).
    pub server_cpu: Option<usize>,
    /// Before each measured run, load the fresh server this long, unmeasured.
    pub warmup: Option<Duration>,
}

/// A server child; dropping it ends the process.
#[derive(Debug)]
pub struct ServerChild {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

/// What a server child said on a `stats` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildStats {
    /// `io_uring_enter`/`epoll_wait` calls (percore servers).
    pub enters: Option<u64>,
    /// SQEs (percore servers).
    pub sqes: Option<u64>,
    /// The backend (percore servers).
    pub driver: Option<String>,
    /// Live heap bytes (glibc's count, plus percore's task arena), if it
    /// reports it.
    pub heap: Option<u64>,
}

impl ServerChild {
    /// Starts `spec` with `cores` cores from `first_cpu` (TLS if `tls`) and
    /// waits for its `listening on` line; checks its backend if `spec` names one.
    ///
    /// # Errors
    ///
    /// It cannot start, exits or says something else before listening, or
    /// runs on another backend than `spec.driver`.
    pub fn start(
        spec: &ServerSpec,
        cores: usize,
        first_cpu: Option<usize>,
        tls: bool,
    ) -> io::Result<ServerChild> {
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .args(["--addr", "127.0.0.1:0", "--cores", &cores.to_string()])
            .arg("--control");
        if let Some(cpu) = first_cpu {
            command.args(["--first-cpu", &cpu.to_string()]);
        }
        if tls {
            command.arg("--tls");
        }
        let mut child = command
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!(
                        "starting the {} server ({}): {err}",
                        spec.name,
                        spec.program.display()
                    ),
                )
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("a server child without pipes"));
        };
        let mut server = ServerChild {
            name: spec.name.clone(),
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut line = String::new();
        server.stdout.read_line(&mut line)?;
        server.addr = listening_addr(&line).ok_or_else(|| {
            io::Error::other(format!(
                "the {} server did not start (it said {:?})",
                spec.name,
                line.trim()
            ))
        })?;
        if let Some(expected) = &spec.driver {
            let said = server.stats()?.driver;
            if said.as_deref() != Some(expected.as_str()) {
                return Err(io::Error::other(format!(
                    "the {} server runs on {said:?}, not {expected}",
                    spec.name
                )));
            }
        }
        Ok(server)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the whole process has used so far.
    ///
    /// # Errors
    ///
    /// The process is gone.
    pub fn cpu_time(&self) -> io::Result<Duration> {
        process_cpu_time(self.pid())
    }

    /// Asks for its `stats` line.
    ///
    /// # Errors
    ///
    /// It does not answer, or the answer is not JSON.
    pub fn stats(&mut self) -> io::Result<ChildStats> {
        let name = &self.name;
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("stdin already closed"))?;
        writeln!(stdin, "{STATS_REQUEST}")?;
        stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let value: serde_json::Value = serde_json::from_str(&line).map_err(|err| {
            io::Error::other(format!("the {name} server's stats {line:?}: {err}"))
        })?;
        Ok(ChildStats {
            enters: value.get("enters").and_then(|v| v.as_u64()),
            sqes: value.get("sqes").and_then(|v| v.as_u64()),
            driver: value
                .get("driver")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            heap: value.get("heap").and_then(|v| v.as_u64()),
        })
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        // Closing stdin asks it to exit; kill makes sure.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) process `pid` has used, every thread of it,
/// exited ones included (`clock_getcpuclockid`); where the kernel refuses
/// that, the sum of its live threads' `schedstat`.
///
/// # Errors
///
/// The process is gone.
pub fn process_cpu_time(pid: u32) -> io::Result<Duration> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid, writable clockid_t for the call.
    let rc = unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) };
    if rc == 0 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call.
        if unsafe { libc::clock_gettime(clock, &mut ts) } == 0 {
            return Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
        }
    }
    cpu::process_cpu_time(pid)
}

/// One measured run: a server, a load, what the tool and the server said.
#[derive(Debug, Clone)]
pub struct Run {
    /// The server's name.
    pub server: String,
    /// The load.
    pub case: Case,
    /// The round, from 0.
    pub round: usize,
    /// The tool's report.
    pub client: ClientReport,
    /// The server's CPU time over the run.
    pub server_cpu: Duration,
    /// SQEs over the run (percore servers).
    pub sqes: Option<u64>,
    /// `io_uring_enter`/`epoll_wait` calls over the run (percore servers).
    pub enters: Option<u64>,
}

impl Run {
    /// Server CPU time per answered request.
    pub fn cpu_per_request(&self) -> Duration {
        Duration::from_secs_f64(self.server_cpu.as_secs_f64() / self.client.requests.max(1) as f64)
    }

    /// `counter` per answered request.
    fn per_request(&self, counter: Option<u64>) -> Option<f64> {
        counter.map(|c| c as f64 / self.client.requests.max(1) as f64)
    }

    /// SQEs per answered request.
    pub fn sqes_per_request(&self) -> Option<f64> {
        self.per_request(self.sqes)
    }

    /// Enters per answered request.
    pub fn enters_per_request(&self) -> Option<f64> {
        self.per_request(self.enters)
    }
}

/// The servers in the order of round `round`: the first rotates.
pub fn round_order(servers: &[ServerSpec], round: usize) -> Vec<&ServerSpec> {
    let n = servers.len().max(1);
    (0..servers.len())
        .map(|i| &servers[(i + round) % n])
        .collect()
}

/// Runs `case`: `options.rounds` rounds, each every server once in a fresh
/// process; `each` sees every run as it ends.
///
/// # Errors
///
/// A server does not start, or a tool fails or reports errors.
pub fn run_case(options: &Options, case: Case, mut each: impl FnMut(&Run)) -> io::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for round in 0..options.rounds {
        for spec in round_order(&options.servers, round) {
            if spec.http1_only && case != Case::H1 {
                continue;
            }
            let run = measure_with_retries(options, spec, case, round)?;
            each(&run);
            runs.push(run);
        }
    }
    Ok(runs)
}

/// Tries per measurement: a tool that hangs or fails on a busy machine is
/// run again against a fresh server (each failure is printed on stderr).
const TRIES: usize = 3;

fn measure_with_retries(
    options: &Options,
    spec: &ServerSpec,
    case: Case,
    round: usize,
) -> io::Result<Run> {
    let mut tries = 1;
    loop {
        match measure(options, spec, case, round) {
            Ok(run) => return Ok(run),
            Err(err) if tries < TRIES => {
                eprintln!(
                    "http_compare: {} under {}, try {tries} of {TRIES}: {err}; again",
                    spec.name,
                    case.name()
                );
                tries += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

/// One measured run of `spec` under `case`.
fn measure(options: &Options, spec: &ServerSpec, case: Case, round: usize) -> io::Result<Run> {
    let mut server =
        ServerChild::start(spec, options.server_cores, options.server_cpu, case.tls())?;
    if let Some(warmup) = options.warmup {
        let load = Load {
            duration: warmup,
            ..options.load
        };
        client::run(case, server.addr(), &load)?;
    }
    let stats_before = server.stats()?;
    let cpu_before = server.cpu_time()?;
    let report = client::run(case, server.addr(), &options.load)?;
    let cpu_after = server.cpu_time()?;
    let stats_after = server.stats()?;
    if report.requests == 0 || report.errors > 0 {
        return Err(io::Error::other(format!(
            "{} under {}: {} requests answered, {} errors",
            spec.name,
            case.name(),
            report.requests,
            report.errors
        )));
    }
    let delta = |after: Option<u64>, before: Option<u64>| Some(after?.saturating_sub(before?));
    Ok(Run {
        server: spec.name.clone(),
        case,
        round,
        client: report,
        server_cpu: cpu_after.saturating_sub(cpu_before),
        sqes: delta(stats_after.sqes, stats_before.sqes),
        enters: delta(stats_after.enters, stats_before.enters),
    })
}

/// Memory of one server before and after holding idle connections.
#[derive(Debug, Clone)]
pub struct IdleRun {
    /// The server's name.
    pub server: String,
    /// What each connection spoke.
    pub protocol: IdleProtocol,
    /// The round, from 0.
    pub round: usize,
    /// Connections held.
    pub connections: usize,
    /// Resident set before opening them, bytes.
    pub rss_before: u64,
    /// Resident set with them open and idle, bytes.
    pub rss_after: u64,
    /// Live heap before, bytes, if the server reports it.
    pub heap_before: Option<u64>,
    /// Live heap with them open, bytes.
    pub heap_after: Option<u64>,
}

impl IdleRun {
    /// Resident set growth per connection, bytes (negative if it shrank).
    pub fn rss_per_connection(&self) -> f64 {
        (self.rss_after as f64 - self.rss_before as f64) / self.connections.max(1) as f64
    }

    /// Heap growth per connection, bytes, if known.
    pub fn heap_per_connection(&self) -> Option<f64> {
        Some((self.heap_after? as f64 - self.heap_before? as f64) / self.connections.max(1) as f64)
    }
}

/// How long the server may settle (its tasks go idle, its allocator
/// returns what it frees) before each memory reading: longer than
/// percore-http's default `retire_idle_after` (1 s), after which an idle
/// HTTP/1 connection holds no hyper state, so what is read is what an idle
/// connection holds, not one that has just been answered.
pub const IDLE_SETTLE: Duration = Duration::from_millis(1500);

/// Opens `connections` idle connections speaking `protocol` to a fresh
/// process of each server, `rounds` times; `each` sees every run. Each
/// memory reading comes `settle` after the connections were answered
/// ([`IDLE_SETTLE`] for a figure that means something; a smoke that judges
/// none may wait less).
///
/// # Errors
///
/// A server does not start, or a connection is not answered.
pub fn run_idle(
    options: &Options,
    protocol: IdleProtocol,
    connections: usize,
    rounds: usize,
    settle: Duration,
    mut each: impl FnMut(&IdleRun),
) -> io::Result<Vec<IdleRun>> {
    let mut runs = Vec::new();
    for round in 0..rounds {
        for spec in round_order(&options.servers, round) {
            if spec.http1_only && protocol != IdleProtocol::H1 {
                continue;
            }
            let mut server = ServerChild::start(
                spec,
                options.server_cores,
                options.server_cpu,
                protocol.tls(),
            )?;
            // One connection first: what the first request makes once (the
            // core's ring, hyper's first buffers) is not per connection.
            let warm = idle::open(server.addr(), protocol, 1)?;
            std::thread::sleep(settle);
            let heap_before = server.stats()?.heap;
            let rss_before = idle::rss(server.pid())?;
            let held = idle::open(server.addr(), protocol, connections)?;
            std::thread::sleep(settle);
            let heap_after = server.stats()?.heap;
            let rss_after = idle::rss(server.pid())?;
            drop(held);
            drop(warm);
            let run = IdleRun {
                server: spec.name.clone(),
                protocol,
                round,
                connections,
                rss_before,
                rss_after,
                heap_before,
                heap_after,
            };
            each(&run);
            runs.push(run);
        }
    }
    Ok(runs)
}

/// The load average (`/proc/loadavg`'s first three fields), to say how
/// busy the machine was.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> ServerSpec {
        ServerSpec {
            name: name.into(),
            program: PathBuf::from("/bin/true"),
            args: Vec::new(),
            env: Vec::new(),
            driver: None,
            http1_only: false,
        }
    }

    #[test]
    fn the_first_server_rotates_by_round() {
        let servers = [spec("a"), spec("b"), spec("c")];
        let names = |round| -> Vec<&str> {
            round_order(&servers, round)
                .iter()
                .map(|s| s.name.as_str())
                .collect()
        };
        assert_eq!(names(0), ["a", "b", "c"]);
        assert_eq!(names(1), ["b", "c", "a"]);
        assert_eq!(names(3), ["a", "b", "c"]);
    }

    #[test]
    fn this_process_cpu_time_is_read() {
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        assert!(x > 0);
        assert!(process_cpu_time(std::process::id()).unwrap() > Duration::ZERO);
    }

    #[test]
    fn a_server_that_never_listens_is_an_error() {
        let err = ServerChild::start(&spec("silent"), 1, None, false).unwrap_err();
        assert!(err.to_string().contains("did not start"), "{err}");
    }

    #[test]
    fn per_request_figures_divide_by_answered_requests() {
        let run = Run {
            server: "a".into(),
            case: Case::H1,
            round: 0,
            client: ClientReport {
                requests: 1000,
                errors: 0,
                elapsed: Duration::from_secs(1),
                p50: None,
                p99: None,
                mean: None,
            },
            server_cpu: Duration::from_millis(5),
            sqes: Some(1500),
            enters: None,
        };
        assert_eq!(run.cpu_per_request(), Duration::from_micros(5));
        assert_eq!(run.sqes_per_request(), Some(1.5));
        assert_eq!(run.enters_per_request(), None);
    }
}
