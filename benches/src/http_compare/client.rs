//! The load generators of the HTTP comparison, run as child processes
//! pinned with `taskset`: wrk for HTTP/1.1 (clear and TLS), h2load for
//! HTTP/2 (h2c with prior knowledge, and h2 over TLS by ALPN); and what
//! their reports say (requests done, errors, elapsed time, latency).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A load of the comparison: which tool, which protocol, clear or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// HTTP/1.1 in the clear, loaded by wrk.
    H1,
    /// HTTP/2 in the clear with prior knowledge, loaded by h2load.
    H2c,
    /// HTTP/2 over TLS, chosen by ALPN, loaded by h2load.
    H2Tls,
    /// HTTP/1.1 over TLS (no ALPN offered), loaded by wrk.
    H1Tls,
}

impl Case {
    /// Every case, in the order the comparison runs them.
    pub const ALL: [Case; 4] = [Case::H1, Case::H2c, Case::H2Tls, Case::H1Tls];

    /// `h1`, `h2c`, `h2-tls` or `h1-tls`.
    pub fn name(self) -> &'static str {
        match self {
            Case::H1 => "h1",
            Case::H2c => "h2c",
            Case::H2Tls => "h2-tls",
            Case::H1Tls => "h1-tls",
        }
    }

    /// The case called `name`.
    pub fn from_name(name: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|case| case.name() == name)
    }

    /// Whether the server must speak TLS.
    pub fn tls(self) -> bool {
        matches!(self, Case::H2Tls | Case::H1Tls)
    }

    /// The tool that loads it: `wrk` or `h2load`.
    pub fn tool(self) -> &'static str {
        match self {
            Case::H1 | Case::H1Tls => "wrk",
            Case::H2c | Case::H2Tls => "h2load",
        }
    }
}

/// How hard to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Connections (`-c`).
    pub connections: usize,
    /// HTTP/2 streams in flight per connection (h2load's `-m`); wrk keeps one.
    pub streams: usize,
    /// Measured time.
    pub duration: Duration,
    /// The CPU to pin the tool to (`taskset -c`), if any.
    pub cpu: Option<usize>,
}

/// What one run of a tool reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientReport {
    /// Responses received in the measured time (h2load: succeeded).
    pub requests: u64,
    /// Socket errors, non-2xx responses, failed or errored requests.
    pub errors: u64,
    /// The measured time the tool reports.
    pub elapsed: Duration,
    /// Median latency (wrk only: h2load gives no percentiles).
    pub p50: Option<Duration>,
    /// 99th percentile latency (wrk only).
    pub p99: Option<Duration>,
    /// Mean latency.
    pub mean: Option<Duration>,
}

impl ClientReport {
    /// Requests per second over the measured time.
    pub fn req_per_s(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `name` on `PATH`, if there.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The command line that runs `case` against `addr` (without the pinning).
pub fn command_line(case: Case, addr: SocketAddr, load: &Load) -> Vec<String> {
    let scheme = if case.tls() { "https" } else { "http" };
    let url = format!("{scheme}://{addr}/");
    // Both take milliseconds ("500ms"); wrk only whole seconds, at least 1.
    let ms = load.duration.as_millis().max(1);
    match case {
        Case::H1 | Case::H1Tls => vec![
            "wrk".into(),
            "-t1".into(),
            format!("-c{}", load.connections),
            format!("-d{}s", ms.div_ceil(1000)),
            // wrk's default of 2 s counts a slow answer as an error; a
            // debug build on a busy machine is that slow now and then.
            "--timeout".into(),
            "10s".into(),
            "--latency".into(),
            url,
        ],
        Case::H2c | Case::H2Tls => vec![
            "h2load".into(),
            format!("-c{}", load.connections),
            format!("-m{}", load.streams),
            "-t1".into(),
            "-D".into(),
            format!("{ms}ms"),
            url,
        ],
    }
}

/// Runs `case` against `addr` and reads its report.
///
/// # Errors
///
/// The tool is missing or cannot start, fails, or prints a report that
/// does not parse (the error quotes its output).
pub fn run(case: Case, addr: SocketAddr, load: &Load) -> io::Result<ClientReport> {
    let line = command_line(case, addr, load);
    let mut command = match load.cpu.filter(|_| find_tool("taskset").is_some()) {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpu.to_string()).args(&line);
            command
        }
        None => {
            let mut command = Command::new(&line[0]);
            command.args(&line[1..]);
            command
        }
    };
    let output = run_bounded(&mut command, load.duration + TOOL_GRACE)
        .map_err(|err| io::Error::new(err.kind(), format!("`{}`: {err}", line.join(" "))))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "`{}` failed ({}): {}{}",
            line.join(" "),
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let parsed = match case {
        Case::H1 | Case::H1Tls => parse_wrk(&stdout),
        Case::H2c | Case::H2Tls => parse_h2load(&stdout),
    };
    let report = parsed.ok_or_else(|| {
        io::Error::other(format!(
            "`{}` printed a report that does not parse: {stdout:?}",
            line.join(" ")
        ))
    })?;
    if report.errors > 0 || report.requests == 0 {
        let lines: Vec<&str> = stdout
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.contains("requests in")
                    || l.starts_with("Socket errors")
                    || l.starts_with("Non-2xx")
                    || l.starts_with("requests:")
                    || l.starts_with("status codes:")
            })
            .collect();
        return Err(io::Error::other(format!(
            "`{}`: {} answered, {} errors ({})",
            line.join(" "),
            report.requests,
            report.errors,
            lines.join("; ")
        )));
    }
    // h2load on a busy machine sometimes drags its stop out long past the
    // duration, which would make a meaningless rate.
    if report.elapsed > load.duration * 2 + Duration::from_secs(1) {
        return Err(io::Error::other(format!(
            "`{}` measured {:?} for a {:?} run",
            line.join(" "),
            report.elapsed,
            load.duration
        )));
    }
    Ok(report)
}

/// How long past its duration a tool may run before it is killed: wrk and
/// h2load stop by themselves, but h2load has been seen to hang in its stop
/// on a loaded machine.
const TOOL_GRACE: Duration = Duration::from_secs(30);

/// Runs `command` to its end, or kills it after `limit`.
fn run_bounded(command: &mut Command, limit: Duration) -> io::Result<std::process::Output> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let start = Instant::now();
    // The reports are a few KiB: they fit in the pipes while this waits.
    while child.try_wait()?.is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("still running after {limit:?}, killed"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output()
}

/// A duration as wrk and h2load print it: `441.24us`, `2.50ms`, `1.02s`,
/// `1.5m`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let secs = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// The number in `text` right before `label` (`"0 failed"` for `failed`).
fn number_before(text: &str, label: &str) -> Option<u64> {
    let at = text.find(label)?;
    text[..at].split_whitespace().last()?.parse().ok()
}

/// wrk's report: `N requests in 5.00s, …`, `Socket errors: connect A, read
/// B, write C, timeout D`, `Non-2xx or 3xx responses: E`, `--latency`'s
/// distribution and the thread stats' `Latency` mean.
pub fn parse_wrk(out: &str) -> Option<ClientReport> {
    let mut report = ClientReport {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        p50: None,
        p99: None,
        mean: None,
    };
    let mut found = false;
    for line in out.lines().map(str::trim) {
        if let Some(at) = line.find(" requests in ") {
            report.requests = line[..at].trim().parse().ok()?;
            let rest = &line[at + " requests in ".len()..];
            report.elapsed = parse_duration(rest.split(',').next()?)?;
            found = true;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            for part in rest.split(',') {
                report.errors += part.split_whitespace().last()?.parse::<u64>().ok()?;
            }
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            report.errors += rest.trim().parse::<u64>().ok()?;
        } else if let Some(rest) = line.strip_prefix("Latency ") {
            // The thread stats' line; `Latency Distribution` heads the percentiles.
            if let Some(mean) = parse_duration(rest.split_whitespace().next()?) {
                report.mean = Some(mean);
            }
        } else if let Some(rest) = line.strip_prefix("50%") {
            report.p50 = parse_duration(rest);
        } else if let Some(rest) = line.strip_prefix("99%") {
            report.p99 = parse_duration(rest);
        }
    }
    found.then_some(report)
}

/// h2load's report: `finished in 5.00s, …`, `requests: N total, N started,
/// N done, N succeeded, N failed, N errored, N timeout`, `status codes: N
/// 2xx, …` and the mean of `time for request`.
pub fn parse_h2load(out: &str) -> Option<ClientReport> {
    let mut report = ClientReport {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        p50: None,
        p99: None,
        mean: None,
    };
    let (mut finished, mut counted) = (false, false);
    let mut ok_status = None;
    for line in out.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            report.elapsed = parse_duration(rest.split(',').next()?)?;
            finished = true;
        } else if let Some(rest) = line.strip_prefix("requests:") {
            report.requests = number_before(rest, " succeeded")?;
            report.errors += number_before(rest, " failed")?;
            report.errors += number_before(rest, " errored")?;
            report.errors += number_before(rest, " timeout")?;
            counted = true;
        } else if let Some(rest) = line.strip_prefix("status codes:") {
            ok_status = number_before(rest, " 2xx");
        } else if let Some(rest) = line.strip_prefix("time for request:") {
            // min, max, mean, sd, +/- sd
            report.mean = parse_duration(rest.split_whitespace().nth(2)?);
        }
    }
    // Succeeded but not 2xx (a 4xx counts as succeeded in h2load) is an error too.
    if let Some(ok) = ok_status {
        report.errors += report.requests.saturating_sub(ok);
        report.requests = report.requests.min(ok);
    }
    (finished && counted).then_some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "\
Running 1s test @ http://127.0.0.1:40123/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   441.24us  102.11us   2.03ms   80.00%
    Req/Sec   140.00k     3.00k  145.00k    70.00%
  Latency Distribution
     50%  420.00us
     75%  480.00us
     90%  550.00us
     99%    1.10ms
  139000 requests in 1.00s, 17.63MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec: 139000.00
Transfer/sec:     17.63MB
";

    const H2LOAD: &str = "\
starting benchmark...
spawning thread #0: 64 total client(s). Timing-based test with 0s of warm-up time and 1s of main duration for measurements.
Warm-up phase is over for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 1.00s, 250000.00 req/s, 8.00MB/s
requests: 250000 total, 250640 started, 250000 done, 249990 succeeded, 10 failed, 0 errored, 0 timeout
status codes: 249980 2xx, 0 3xx, 10 4xx, 0 5xx
traffic: 8.00MB (8388608) total, 1.00MB (1048576) headers (space savings 90.00%), 3.10MB (3250000) data
                     min         max         mean         sd        +/- sd
time for request:      226us     20.24ms      2.50ms       1.00ms    90.00%
time for connect:      200us      2.00ms       1.00ms       0.50ms    60.00%
time to 1st byte:      1.00ms     3.00ms       2.00ms       0.50ms    60.00%
req/s           :    3900.00     4000.00     3906.25        10.00    70.00%
";

    #[test]
    fn wrk_reports_parse() {
        let report = parse_wrk(WRK).unwrap();
        assert_eq!(report.requests, 139_000);
        assert_eq!(report.errors, 7);
        assert_eq!(report.elapsed, Duration::from_secs(1));
        assert_eq!(report.p50, Some(Duration::from_micros(420)));
        assert_eq!(report.p99, Some(Duration::from_micros(1100)));
        assert_eq!(report.mean, Some(Duration::from_nanos(441_240)));
        assert!((report.req_per_s() - 139_000.0).abs() < 1.0);
        assert_eq!(parse_wrk("unable to connect to 127.0.0.1:1"), None);
    }

    #[test]
    fn h2load_reports_parse() {
        let report = parse_h2load(H2LOAD).unwrap();
        // 249,990 succeeded, of which 10 were 4xx.
        assert_eq!(report.requests, 249_980);
        assert_eq!(report.errors, 20);
        assert_eq!(report.elapsed, Duration::from_secs(1));
        assert_eq!(report.mean, Some(Duration::from_micros(2500)));
        assert_eq!(report.p99, None);
        assert_eq!(parse_h2load("starting benchmark...\n"), None);
    }

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("226us"), Some(Duration::from_micros(226)));
        assert_eq!(parse_duration(" 2.5ms"), Some(Duration::from_micros(2500)));
        assert_eq!(parse_duration("1.00s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5parsecs"), None);
    }

    #[test]
    fn command_lines_name_the_load() {
        let load = Load {
            connections: 64,
            streams: 10,
            duration: Duration::from_millis(1500),
            cpu: Some(1),
        };
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            command_line(Case::H1, addr, &load).join(" "),
            "wrk -t1 -c64 -d2s --timeout 10s --latency http://127.0.0.1:8080/"
        );
        assert_eq!(
            command_line(Case::H2Tls, addr, &load).join(" "),
            "h2load -c64 -m10 -t1 -D 1500ms https://127.0.0.1:8080/"
        );
        for case in Case::ALL {
            assert_eq!(Case::from_name(case.name()), Some(case));
        }
    }
}
