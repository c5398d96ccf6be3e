//! Servers in child processes: `percore-bench serve` and the peers'
//! `peer_server` example. A child prints one line `... listening on IP:PORT ...`,
//! answers a `stats` line on stdin with one JSON line, and exits when stdin
//! closes, so it never outlives its parent.

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use percore::Driver;

use crate::cpu;

/// The line protocol's request for counters.
pub const STATS_REQUEST: &str = "stats";

/// Counters a server child reports (percore's; peers report none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// `io_uring_enter` calls, or on the epoll backend `epoll_wait` calls.
    pub enters: u64,
    /// Submission entries (on the epoll backend, the SQEs it emulated).
    pub sqes: u64,
    /// The backend the server's cores run on, if it said.
    pub driver: Option<Driver>,
}

/// A running server child; dropping it ends the process.
#[derive(Debug)]
pub struct ServerChild {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl ServerChild {
    /// Starts `program args…` and waits for its `listening on` line.
    ///
    /// # Errors
    ///
    /// The program cannot start, or exits (or prints something else) before listening.
    pub fn spawn(name: &str, program: &Path, args: &[String]) -> io::Result<ServerChild> {
        ServerChild::spawn_with_env(name, program, args, &[])
    }

    /// As [`spawn`](ServerChild::spawn), with `env` (name, value) pairs set in
    /// the child's environment on top of this process's
    /// (`PERCORE_DRIVER=epoll`…).
    ///
    /// # Errors
    ///
    /// As [`spawn`](ServerChild::spawn).
    pub fn spawn_with_env(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> io::Result<ServerChild> {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("starting {name} server {}: {err}", program.display()),
                )
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("child without pipes"));
        };
        let mut server = ServerChild {
            name: name.to_owned(),
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut line = String::new();
        server.stdout.read_line(&mut line)?;
        server.addr = listening_addr(&line).ok_or_else(|| {
            io::Error::other(format!(
                "{name} server did not start (it said {:?})",
                line.trim()
            ))
        })?;
        Ok(server)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its name, as given to [`spawn`](ServerChild::spawn).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// CPU time all its threads have used so far.
    ///
    /// # Errors
    ///
    /// The process is gone.
    pub fn cpu_time(&self) -> io::Result<Duration> {
        cpu::process_cpu_time(self.child.id())
    }

    /// CPU time the whole process has used so far, as `/proc/<pid>/stat`
    /// counts it (`utime + stime`): it includes threads that already exited
    /// (an io_uring worker that came and went), which [`cpu_time`]
    /// (`schedstat` of the live threads) misses, but it moves in clock ticks
    /// (10 ms), so it is only a check on runs of a second or more.
    ///
    /// [`cpu_time`]: ServerChild::cpu_time
    ///
    /// # Errors
    ///
    /// The process is gone, or its `stat` line does not parse.
    pub fn cpu_time_stat(&self) -> io::Result<Duration> {
        let pid = self.child.id();
        let line = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        stat_cpu_time(&line, clock_ticks_per_second()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/{pid}/stat does not parse: {line:?}"),
            )
        })
    }

    /// Times its threads have gone to sleep so far: the sum over its live
    /// threads of `voluntary_ctxt_switches` (`/proc/<pid>/task/*/status`).
    /// Every sleep is followed by a wakeup, so per request this says how
    /// many requests a server handles per wakeup, for any runtime.
    ///
    /// # Errors
    ///
    /// The process is gone.
    pub fn sleeps(&self) -> io::Result<u64> {
        let pid = self.child.id();
        let mut total = 0;
        for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            // A thread may exit between the listing and the read.
            let Ok(status) = std::fs::read_to_string(entry?.path().join("status")) else {
                continue;
            };
            total += voluntary_switches(&status).unwrap_or(0);
        }
        Ok(total)
    }

    /// Its counters, if it reports any.
    pub fn stats(&mut self) -> Option<ServerStats> {
        let stdin = self.stdin.as_mut()?;
        writeln!(stdin, "{STATS_REQUEST}").ok()?;
        stdin.flush().ok()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).ok()?;
        let value: serde_json::Value = serde_json::from_str(&line).ok()?;
        Some(ServerStats {
            enters: value.get("enters")?.as_u64()?,
            sqes: value.get("sqes")?.as_u64()?,
            driver: value.get("driver").and_then(|d| d.as_str()?.parse().ok()),
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

/// `sysconf(_SC_CLK_TCK)`: the unit of `/proc/<pid>/stat`'s times (100 if
/// the kernel would not say).
fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// `utime + stime` of a `/proc/<pid>/stat` line (fields 14 and 15, counted
/// after the parenthesised command name, which may hold spaces).
fn stat_cpu_time(line: &str, ticks_per_second: u64) -> Option<Duration> {
    let after_name = &line[line.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first, so utime (14) is the 12th.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_nanos(
        ticks.saturating_mul(1_000_000_000) / ticks_per_second.max(1),
    ))
}

/// `voluntary_ctxt_switches` of a `/proc/<pid>/task/<tid>/status` text.
fn voluntary_switches(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))?
        .trim()
        .parse()
        .ok()
}

/// The address in a `... listening on IP:PORT ...` line.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Serves the line protocol on this process's stdin/stdout until stdin closes:
/// each `stats` line is answered with `stats()` as one JSON line
/// (`{"enters":N,"sqes":N,"driver":"epoll"}`; `driver` only when known).
pub fn answer_stdin(mut stats: impl FnMut() -> Option<ServerStats>) {
    let stdin = io::stdin();
    let mut line = String::new();
    loop {
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.trim() != STATS_REQUEST {
            continue;
        }
        let answer = match stats() {
            Some(s) => {
                let driver = s
                    .driver
                    .map(|d| format!(",\"driver\":\"{d}\""))
                    .unwrap_or_default();
                format!("{{\"enters\":{},\"sqes\":{}{driver}}}", s.enters, s.sqes)
            }
            None => "{}".to_owned(),
        };
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{answer}");
        let _ = out.flush();
    }
}

/// `target/<profile>/examples/peer_server` next to this binary (or next to the
/// `deps/` folder a test or bench binary runs from).
pub fn peer_server_path() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    let path = dir.join("examples").join("peer_server");
    if path.is_file() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "`--compare` needs the peer servers: build them with \
                 `cargo build --release -p percore-bench --example peer_server` (looked for {})",
                path.display()
            ),
        ))
    }
}

/// The file name of the hand-written C io_uring server (`benches/c/uring_server.c`).
pub const C_URING_SERVER: &str = "c_uring_server";

/// Where the C io_uring server is expected: `c_uring_server` in the folder of
/// `binary` (`target/release/` for `target/release/percore-bench`), or of the
/// folder above it when `binary` runs from `deps/` or `examples/` (a test or
/// bench binary). `benches/scripts/build_c_server.sh` builds it there.
pub fn c_uring_server_near(binary: &Path) -> PathBuf {
    let mut dir = binary.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    dir.join(C_URING_SERVER)
}

/// `path` if it is a file, else an error that says how to build the C server.
///
/// # Errors
///
/// `path` is not a file (the C server was not built).
pub fn c_uring_server_at(path: &Path) -> io::Result<&Path> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "the `c-uring` server is not built: run `benches/scripts/build_c_server.sh` \
                 (with the same CARGO_TARGET_DIR; needs `apt-get install -y liburing-dev`), \
                 looked for {}",
                path.display()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_c_server_is_looked_for_next_to_the_binary() {
        assert_eq!(
            c_uring_server_near(Path::new("/t/release/percore-bench")),
            Path::new("/t/release/c_uring_server")
        );
        assert_eq!(
            c_uring_server_near(Path::new("/t/release/deps/net_compare-123")),
            Path::new("/t/release/c_uring_server")
        );
        let missing = Path::new("/nonexistent/c_uring_server");
        let err = c_uring_server_at(missing).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("build_c_server.sh"), "{err}");
    }

    #[test]
    fn the_listening_line_gives_the_address() {
        assert_eq!(
            listening_addr("percore-bench serve: http listening on 127.0.0.1:7000 (2 cores)\n"),
            Some("127.0.0.1:7000".parse().unwrap())
        );
        assert_eq!(listening_addr("error: address in use"), None);
    }

    #[test]
    fn status_gives_voluntary_switches() {
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t42\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(voluntary_switches(status), Some(42));
        assert_eq!(voluntary_switches("Name:\tx\n"), None);
        let own = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(voluntary_switches(&own).is_some());
    }

    #[test]
    fn stat_lines_give_user_plus_system_time() {
        let line =
            "4242 (peer server) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 2 0 1000 0 0";
        assert_eq!(stat_cpu_time(line, 100), Some(Duration::from_secs(3)));
        assert_eq!(stat_cpu_time("4242 (x) S 1", 100), None);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(stat_cpu_time(&own, clock_ticks_per_second()).is_some());
    }
}
