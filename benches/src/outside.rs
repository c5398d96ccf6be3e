//! Clients that are not percore, so a server comparison does not depend on how
//! percore's own load generator paces its requests: **wrk** for HTTP (the
//! system's `wrk`, found on `PATH`) and a closed-loop **tokio** client for
//! echo and HTTP (one current-thread runtime, one task per connection; its
//! code is in `benches/benches/common/outside_client.rs`, run from the
//! `peer_server` example or the `net_compare` bench binary, since tokio is
//! only a dev-dependency here).
//!
//! Each outside client runs as a child process pinned to the client's CPU,
//! and reports what it measured on stdout; [`run`] turns that into a
//! [`LoadResult`] like the percore client's, plus the child's CPU time.

use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::Value;

use crate::cpu;
use crate::load::{self, LoadConfig, LoadResult};
use crate::server::Protocol;

/// Who sends the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// percore's own load generator ([`crate::load`]), in this process.
    Percore,
    /// The same with each request's write submitted by an `io_uring_enter` of
    /// its own ([`LoadConfig::send_alone`]), as an epoll client writes: a
    /// diagnostic, to see what the batching of percore's client does to the
    /// server's figures.
    PercoreUnbatched,
    /// The closed-loop tokio client, a child process.
    Tokio,
    /// `wrk -t<cores> -c<connections>`, a child process (HTTP only).
    Wrk,
}

impl Client {
    /// `percore`, `tokio` or `wrk`.
    pub fn name(self) -> &'static str {
        match self {
            Client::Percore => "percore",
            Client::PercoreUnbatched => "percore-unbatched",
            Client::Tokio => "tokio",
            Client::Wrk => "wrk",
        }
    }

    /// The client called `name`; `outside` is [`Client::outside`] for `protocol`.
    pub fn from_name(name: &str, protocol: Protocol) -> Option<Client> {
        match name {
            "percore" => Some(Client::Percore),
            "percore-unbatched" => Some(Client::PercoreUnbatched),
            "tokio" => Some(Client::Tokio),
            "wrk" => Some(Client::Wrk),
            "outside" => Some(Client::outside(protocol)),
            _ => None,
        }
    }

    /// The outside client of `protocol`: wrk for HTTP, tokio for echo.
    pub fn outside(protocol: Protocol) -> Client {
        match protocol {
            Protocol::Http => Client::Wrk,
            Protocol::Echo => Client::Tokio,
        }
    }

    /// Whether it can send `protocol` (wrk speaks only HTTP).
    pub fn speaks(self, protocol: Protocol) -> bool {
        self != Client::Wrk || protocol == Protocol::Http
    }
}

/// A program and the words that go before its own arguments (`peer_server
/// client`, `net_compare peer-client`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    /// The executable.
    pub program: PathBuf,
    /// Arguments before the ones a call adds.
    pub args: Vec<String>,
}

/// What one client run measured.
#[derive(Debug, Clone)]
pub struct ClientRun {
    /// Requests, latency, timeline (wrk gives no timeline: it stays empty).
    pub load: LoadResult,
    /// CPU time the client used (user + system; for the percore client, this
    /// process's, which does nothing else during a run).
    pub cpu: Option<Duration>,
}

/// After the run's duration, how long a client child may take to report
/// before it is killed.
const CHILD_GRACE: Duration = Duration::from_secs(15);

/// Runs `client` with `config` (target, protocol, connections, duration; the
/// client is pinned to the `config.first_cpu`-th allowed CPU when given).
/// `tokio_client` says how to start the tokio client.
///
/// # Errors
///
/// The client cannot start (wrk not installed, the tokio client's binary
/// missing), exits with a failure, or reports nothing readable; or, for the
/// percore client, what [`load::run`] returns. The outside clients take no
/// `rate` (closed loop only).
pub fn run(client: Client, config: &LoadConfig, tokio_client: &Launcher) -> io::Result<ClientRun> {
    if matches!(client, Client::Tokio | Client::Wrk) && config.rate.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the {} client is closed loop only", client.name()),
        ));
    }
    match client {
        Client::Percore | Client::PercoreUnbatched => {
            let mut config = config.clone();
            config.send_alone = client == Client::PercoreUnbatched;
            let before = cpu::own_cpu_time();
            let load = load::run(&config)?;
            let cpu = cpu::own_cpu_time().saturating_sub(before);
            Ok(ClientRun {
                load,
                cpu: Some(cpu),
            })
        }
        Client::Tokio => run_tokio(config, tokio_client),
        Client::Wrk => run_wrk(config),
    }
}

/// Whether `wrk` can be started (it is on `PATH` and answers `-v`).
pub fn wrk_available() -> bool {
    Command::new("wrk")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn run_tokio(config: &LoadConfig, launcher: &Launcher) -> io::Result<ClientRun> {
    if config.cores > 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the tokio client runs one thread: use --cores 1",
        ));
    }
    let mut command = Command::new(&launcher.program);
    command.args(&launcher.args).args([
        config.protocol.name().to_owned(),
        "--target".into(),
        config.target.to_string(),
        "--connections".into(),
        config.connections.to_string(),
        "--size".into(),
        config.size.max(1).to_string(),
        "--duration".into(),
        config.duration.as_secs_f64().to_string(),
    ]);
    let (out, cpu) = run_child(command, "tokio client", config)?;
    let line = out
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .ok_or_else(|| io::Error::other(format!("the tokio client printed no report: {out:?}")))?;
    let load = parse_tokio_report(line, config.duration)?;
    Ok(ClientRun {
        load,
        cpu: Some(cpu),
    })
}

/// What wrk's `done` hook prints: one line after [`WRK_MARK`], a JSON object
/// with the request count, the run's length, the error counts, and the
/// latency (µs) at 1,000 evenly spaced percentiles (0.1 %, 0.2 %, … 100 %).
const WRK_SCRIPT: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "percore-wrk {\"requests\":%d,\"duration_us\":%d,\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d,\"latency_us\":[",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
  for i = 1, 1000 do
    if i > 1 then io.write(",") end
    io.write(string.format("%d", latency:percentile(i / 10)))
  end
  io.write("]}\n")
end
"#;

/// The start of the line [`WRK_SCRIPT`] prints.
const WRK_MARK: &str = "percore-wrk ";

/// wrk takes whole seconds: shorter runs are rounded up to one.
pub fn wrk_seconds(duration: Duration) -> u64 {
    duration.as_secs_f64().ceil().max(1.0) as u64
}

fn run_wrk(config: &LoadConfig) -> io::Result<ClientRun> {
    if config.protocol != Protocol::Http {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "wrk speaks HTTP only: use the tokio client for echo",
        ));
    }
    let script = std::env::temp_dir().join(format!("percore-bench-wrk-{}.lua", std::process::id()));
    std::fs::write(&script, WRK_SCRIPT).map_err(|err| {
        io::Error::new(err.kind(), format!("writing {}: {err}", script.display()))
    })?;
    let mut command = Command::new("wrk");
    command.args([
        format!("-t{}", config.cores.clamp(1, config.connections.max(1))),
        format!("-c{}", config.connections),
        format!("-d{}s", wrk_seconds(config.duration)),
        "-s".into(),
        script.display().to_string(),
        format!("http://{}/", config.target),
    ]);
    let result = run_child(command, "wrk", config);
    let _ = std::fs::remove_file(&script);
    let (out, cpu) = result.map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => io::Error::new(
            err.kind(),
            format!("{err} (install it: `apt-get install -y wrk`)"),
        ),
        _ => err,
    })?;
    let load = parse_wrk_report(&out)?;
    Ok(ClientRun {
        load,
        cpu: Some(cpu),
    })
}

/// Starts `command` pinned to the client's CPU, reads all its stdout, reaps it
/// and returns the output and the CPU time it used. A child still running
/// [`CHILD_GRACE`] after the run's end is killed.
fn run_child(
    mut command: Command,
    what: &str,
    config: &LoadConfig,
) -> io::Result<(String, Duration)> {
    if let Some(cpu) = config.first_cpu.and_then(|first| cpu::cpu_for(first, 0)) {
        pin_child(&mut command, cpu)?;
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|err| io::Error::new(err.kind(), format!("starting {what}: {err}")))?;
    let pid = child.id();
    let Some(mut stdout) = child.stdout.take() else {
        return Err(io::Error::other("child without a stdout pipe"));
    };
    // The watchdog kills the child only while this thread has not reaped it:
    // it stops as soon as the output is read, before the wait below.
    let (stop, stopped) = mpsc::channel::<()>();
    let limit = config.duration + CHILD_GRACE;
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(limit) {
            // SAFETY: kill(2) with a pid and a signal number; the child is not
            // reaped yet (the reaping thread waits for this one first), so the
            // pid is still the child's.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    });
    let mut out = String::new();
    let read = stdout.read_to_string(&mut out);
    drop(stop);
    let _ = watchdog.join();
    let (status, cpu) = wait_with_cpu(pid)?;
    read.map_err(|err| io::Error::new(err.kind(), format!("reading {what}'s output: {err}")))?;
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(io::Error::other(format!(
            "{what} failed (wait status {status:#x}); its output: {:?}",
            out.trim()
        )));
    }
    Ok((out, cpu))
}

/// Sets the child's CPU affinity to `cpu` between fork and exec.
fn pin_child(command: &mut Command, cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is out of range"),
        ));
    }
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` < CPU_SETSIZE (checked above), so CPU_SET writes in bounds.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: the hook runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: it makes one system call on a set
    // built before the fork (copied in, nothing allocated) and builds its
    // error from errno without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// Reaps child `pid` and returns its wait status and the CPU time (user +
/// system) it used, from `wait4(2)`'s resource usage.
fn wait_with_cpu(pid: u32) -> io::Result<(i32, Duration)> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for the kernel to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid, writable and live across the call.
        let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if rc >= 0 {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(io::Error::new(
                err.kind(),
                format!("waiting for the client: {err}"),
            ));
        }
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok((status, time(usage.ru_utime) + time(usage.ru_stime)))
}

/// Reads the line wrk's `done` hook printed into a [`LoadResult`]: errors are
/// wrk's socket errors plus non-2xx/3xx responses; the latency histogram holds
/// wrk's 1,000 percentiles, one count each.
///
/// # Errors
///
/// No such line, or one that does not parse.
pub fn parse_wrk_report(out: &str) -> io::Result<LoadResult> {
    let bad =
        |why: &str| io::Error::other(format!("wrk's report {why}; wrk said: {:?}", out.trim()));
    let line = out
        .lines()
        .find_map(|line| line.strip_prefix(WRK_MARK))
        .ok_or_else(|| bad("is missing"))?;
    let doc: Value = serde_json::from_str(line).map_err(|_| bad("is not JSON"))?;
    let number = |key: &str| doc.get(key).and_then(Value::as_u64).ok_or_else(|| bad(key));
    let requests = number("requests")?;
    let elapsed = Duration::from_micros(number("duration_us")?);
    let mut errors = 0;
    let mut first_error = None;
    for kind in ["connect", "read", "write", "status", "timeout"] {
        let n = number(kind)?;
        if n > 0 && first_error.is_none() {
            first_error = Some(match kind {
                "status" => format!("{n} responses not 2xx or 3xx"),
                _ => format!("{n} {kind} errors"),
            });
        }
        errors += n;
    }
    let mut latency = load::new_histogram();
    for us in doc
        .get("latency_us")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("has no latency"))?
    {
        let us = us.as_u64().ok_or_else(|| bad("has a bad latency"))?;
        latency.saturating_record(us.max(1) * 1000);
    }
    Ok(LoadResult {
        requests,
        errors,
        first_error,
        connected: 0,
        elapsed,
        latency,
        timeline: Vec::new(),
    })
}

/// Reads the tokio client's report (one JSON line, see
/// `common/outside_client.rs`) into a [`LoadResult`].
///
/// # Errors
///
/// A line that is not such a report.
pub fn parse_tokio_report(line: &str, duration: Duration) -> io::Result<LoadResult> {
    let bad = |why: &str| io::Error::other(format!("the tokio client's report {why}: {line:?}"));
    let doc: Value = serde_json::from_str(line).map_err(|_| bad("is not JSON"))?;
    let number = |key: &str| doc.get(key).and_then(Value::as_u64).ok_or_else(|| bad(key));
    let mut latency: Histogram<u64> = load::new_histogram();
    for pair in doc
        .get("latency_ns")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("has no latency"))?
    {
        let (Some(ns), Some(count)) = (
            pair.get(0).and_then(Value::as_u64),
            pair.get(1).and_then(Value::as_u64),
        ) else {
            return Err(bad("has a bad latency pair"));
        };
        latency
            .record_n(ns.max(1), count)
            .map_err(|_| bad("has a latency out of range"))?;
    }
    let timeline = doc
        .get("timeline")
        .and_then(Value::as_array)
        .map(|steps| steps.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    Ok(LoadResult {
        requests: number("requests")?,
        errors: number("errors")?,
        first_error: doc
            .get("first_error")
            .and_then(Value::as_str)
            .map(str::to_owned),
        connected: number("connected")? as usize,
        elapsed: duration,
        latency,
        timeline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_by_name() {
        assert_eq!(
            Client::from_name("outside", Protocol::Http),
            Some(Client::Wrk)
        );
        assert_eq!(
            Client::from_name("outside", Protocol::Echo),
            Some(Client::Tokio)
        );
        assert_eq!(Client::from_name("wrk", Protocol::Echo), Some(Client::Wrk));
        assert_eq!(Client::from_name("ab", Protocol::Http), None);
        assert!(!Client::Wrk.speaks(Protocol::Echo));
        assert!(Client::Tokio.speaks(Protocol::Echo) && Client::Tokio.speaks(Protocol::Http));
    }

    #[test]
    fn wrk_report_parses() {
        let latency: Vec<String> = (1..=1000).map(|i| (i * 10).to_string()).collect();
        let out = format!(
            "Running 1s test @ http://127.0.0.1:1/\n{WRK_MARK}{{\"requests\":1234,\"duration_us\":1000500,\
             \"connect\":0,\"read\":0,\"write\":0,\"status\":3,\"timeout\":0,\"latency_us\":[{}]}}\n",
            latency.join(",")
        );
        let load = parse_wrk_report(&out).unwrap();
        assert_eq!(load.requests, 1234);
        assert_eq!(load.errors, 3);
        assert_eq!(
            load.first_error.as_deref(),
            Some("3 responses not 2xx or 3xx")
        );
        assert_eq!(load.elapsed, Duration::from_micros(1_000_500));
        let p50 = load.quantile(0.5).as_micros();
        assert!((4990..=5010).contains(&p50), "p50 {p50} µs");
        let p99 = load.quantile(0.99).as_micros();
        assert!((9890..=9910).contains(&p99), "p99 {p99} µs");
        assert!(parse_wrk_report("Running 1s test\n").is_err());
    }

    #[test]
    fn tokio_report_parses() {
        let line = r#"{"requests":10,"errors":1,"first_error":"reset","connected":4,"latency_ns":[[1000,9],[5000,1]],"timeline":[4,6]}"#;
        let load = parse_tokio_report(line, Duration::from_secs(1)).unwrap();
        assert_eq!(load.requests, 10);
        assert_eq!(load.errors, 1);
        assert_eq!(load.first_error.as_deref(), Some("reset"));
        assert_eq!(load.connected, 4);
        assert_eq!(load.latency.len(), 10);
        assert_eq!(load.timeline, [4, 6]);
        assert!(parse_tokio_report("{}", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn wrk_durations_are_whole_seconds() {
        assert_eq!(wrk_seconds(Duration::from_millis(200)), 1);
        assert_eq!(wrk_seconds(Duration::from_secs(2)), 2);
        assert_eq!(wrk_seconds(Duration::from_millis(2100)), 3);
    }
}
