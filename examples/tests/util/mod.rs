//! What the tests of the example binaries share: finding a binary, starting
//! a server example and reading its "listening on" line, plain-socket HTTP.

#![allow(dead_code)] // each test file uses its own part

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Far longer than anything here takes on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The example binary `name`, built by `cargo test` next to this test's.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("this test's path");
    // target/<profile>/deps/<test>-… → target/<profile>/examples/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test -p percore-examples` builds it",
        path.display()
    );
    path
}

/// A running example, killed if the test fails before it exits.
pub struct Running {
    pub child: Child,
    /// Its stdout after the "listening on" line.
    pub stdout: BufReader<ChildStdout>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Sends it `SIGTERM`.
    pub fn sigterm(&self) {
        let pid = i32::try_from(self.child.id()).expect("a pid");
        // SAFETY: a signal to our own child, which has not been waited for
        // (its pid is not reused before then).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    }

    /// Waits for the exit (within [`PATIENCE`], else kills it and panics):
    /// whether it exited 0, and the rest of its stdout.
    pub fn wait(mut self) -> (bool, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the example did not exit");
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut out = String::new();
        self.stdout.read_to_string(&mut out).expect("stdout");
        (status.success(), out)
    }
}

/// Starts the example `name` with `args` and reads its first line, which
/// must say `… listening on ADDR …`.
pub fn start(name: &str, args: &[&str]) -> Running {
    let mut child = Command::new(example(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|err| panic!("{name} starts: {err}"));
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut running = Running {
        child,
        stdout,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    let mut line = String::new();
    running.stdout.read_line(&mut line).expect("stdout");
    running.addr = listening_addr(&line)
        .unwrap_or_else(|| panic!("{name}: no \"listening on ADDR\" in {line:?}"));
    running
}

/// The address of a `NAME: listening on ADDR (N cores)` line (as
/// percore-bench's `listening_addr` reads it).
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// A blocking client socket with a read timeout of [`PATIENCE`].
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream
}

/// Reads until end of stream: the bytes, or the error (a reset, a timeout).
pub fn read_to_eof(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    Ok(all)
}

/// Reads one HTTP/1.1 response with a `Content-Length` from `stream`: its
/// head (status line and headers, lower-cased) and its body.
pub fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("a content-length in {head:?}"));
    let mut body = vec![0; length];
    stream.read_exact(&mut body).expect("the body");
    (head, body)
}

/// `GET path` over a new connection; the response's head and body.
pub fn get(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
    let mut stream = connect(addr);
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").expect("send");
    read_response(&mut stream)
}

/// Runs curl with `args`, if it is installed: its output.
pub fn curl(args: &[&str]) -> Option<Output> {
    match Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(args)
        .output()
    {
        Ok(output) => Some(output),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            eprintln!("curl is not installed: its part of the test is skipped");
            None
        }
        Err(err) => panic!("curl: {err}"),
    }
}
