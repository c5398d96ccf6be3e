//! A two-core server drained by SIGTERM: every request received is answered
//! in full, idle connections close with a FIN (not a reset), new connects are
//! refused, the server returns with no connection cut, and no fd is left.
//! Then the `echo`, `http` and `hyper` example binaries do the same and exit 0.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use percore::net::graceful::Connections;
use percore::net::TcpListener;
use percore_examples::http;
use percore_examples::server::{bind, Flags};

/// Far longer than anything here takes on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// SIGTERM goes to the whole test process: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// The length of the http example's answer to [`REQUEST`].
fn response_len() -> usize {
    let mut reader = http::RequestReader::new();
    let mut buf = reader.take_buf();
    buf.extend_from_slice(REQUEST);
    reader.put_buf(buf);
    let http::Parsed::Request(request) = reader.next_request() else {
        panic!("REQUEST is a whole request");
    };
    let mut out = Vec::new();
    http::respond(&request, &mut out);
    out.len()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

fn client(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream
}

/// Reads until end of stream: the bytes, or the error (a reset, a timeout).
fn read_to_eof(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    Ok(all)
}

/// The http example's accept loop, on the library's connection loop.
async fn serve_http(listener: TcpListener, connections: Connections) {
    let mut incoming = listener.incoming();
    while let Some(next) = incoming.next().await {
        if let Ok(stream) = next {
            let stream = connections.track(stream);
            let connections = connections.clone();
            drop(percore::spawn(async move {
                http::serve(&stream, || connections.is_finishing()).await
            }));
        }
    }
}

#[test]
fn sigterm_drains_a_two_core_server_and_answers_every_request_received() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let fds_before = open_fds();
    let bound = bind(Flags {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        cores: 2,
        grace: Duration::from_secs(20),
    })
    .expect("bind");
    let addr = bound.addr();
    let (done, finished) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let left = bound.serve("drain-test", |_core, listener, connections| {
            serve_http(listener, connections)
        });
        let _ = done.send(());
        left
    });
    let one = response_len();
    // Idle keep-alive connections: one request answered, then nothing.
    let mut idle: Vec<TcpStream> = (0..8).map(|_| client(addr)).collect();
    for stream in &mut idle {
        stream.write_all(REQUEST).expect("request");
        let mut response = vec![0; one];
        stream.read_exact(&mut response).expect("a response");
    }
    // Connections with requests in flight: three each, none read yet.
    let mut busy: Vec<TcpStream> = (0..8).map(|_| client(addr)).collect();
    for stream in &mut busy {
        stream.write_all(&REQUEST.repeat(3)).expect("requests");
    }
    // SAFETY: SIGTERM to this process; the server listens for it (its
    // handler was installed before the first request was answered).
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGTERM) }, 0);
    for (i, stream) in busy.iter_mut().enumerate() {
        let all = read_to_eof(stream).unwrap_or_else(|err| panic!("busy {i}: {err}"));
        assert_eq!(
            all.len(),
            3 * one,
            "busy {i}: three whole responses, then FIN"
        );
    }
    for (i, stream) in idle.iter_mut().enumerate() {
        let rest = read_to_eof(stream).unwrap_or_else(|err| panic!("idle {i}: {err}"));
        assert!(
            rest.is_empty(),
            "idle {i}: FIN and nothing else, got {rest:?}"
        );
    }
    // New connects are refused once the listeners are closed.
    let deadline = Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect(addr) {
            Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "connects still accepted: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    finished
        .recv_timeout(PATIENCE)
        .expect("the server returned within the patience");
    let left = server.join().expect("no panic").expect("served");
    assert_eq!(left, 0, "connections cut at the end of the grace");
    drop((idle, busy));
    assert_eq!(open_fds(), fds_before, "fd delta after the server returned");
}

/// Kills the example if the test fails before it exits.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example binary `name`, built by `cargo test` next to this test's.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("this test's path");
    // target/<profile>/deps/shutdown-… → target/<profile>/examples/<name>
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

#[test]
fn the_echo_http_and_hyper_examples_exit_0_on_sigterm_after_answering() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for (name, request, answer) in [
        ("echo", &b"ping"[..], 4),
        ("http", REQUEST, response_len()),
        ("hyper", REQUEST, 0),
    ] {
        let mut child = Killed(
            Command::new(example(name))
                .args(["--addr", "127.0.0.1:0", "--cores", "2", "--grace", "20"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("the example starts"),
        );
        let mut stdout = child.0.stdout.take().expect("piped stdout");
        let mut line = Vec::new();
        let mut byte = [0];
        while stdout.read(&mut byte).expect("stdout") == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        let addr: SocketAddr = line
            .split_whitespace()
            .nth(3)
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no address in {line:?}"));
        let mut stream = client(addr);
        stream.write_all(request).expect("request");
        let mut first = vec![0; answer.max(1)];
        stream.read_exact(&mut first).expect("an answer");
        // One more request in flight at the signal.
        stream.write_all(request).expect("request");
        let pid = i32::try_from(child.0.id()).expect("a pid");
        // SAFETY: SIGTERM to our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let rest = read_to_eof(&mut stream).unwrap_or_else(|err| panic!("{name}: {err}"));
        if answer > 0 {
            assert_eq!(
                rest.len(),
                answer,
                "{name}: the request in flight answered, then FIN"
            );
        } else {
            let text = String::from_utf8_lossy(&first) + String::from_utf8_lossy(&rest);
            assert_eq!(
                text.matches("200 OK").count(),
                2,
                "{name}: both requests answered, then FIN: {text:?}"
            );
        }
        let status = child.0.wait().expect("wait");
        let mut out = String::new();
        stdout.read_to_string(&mut out).expect("stdout");
        assert!(status.success(), "{name}: {status}; stdout {out:?}");
        assert!(
            out.contains("shut down (0 connections cut"),
            "{name}: {out:?}"
        );
    }
}
