//! A two-core percore-http server drained by SIGTERM: every request in
//! hand is answered in full and its connection closed with a FIN, idle
//! connections close with a FIN (not a reset), new connects are refused,
//! the server returns with no connection cut, and no fd is left. Then the
//! `echo`, `http`, `hyper` and `axum_json` example binaries drain the same
//! way and exit 0.

mod util;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use percore::http::server::{Body, Builder};
use percore::shutdown::Shutdown;
use percore_examples::server::{bind, Flags};
use util::{connect, read_response, read_to_eof, start, PATIENCE};

/// SIGTERM goes to the whole test process: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const WAIT: &[u8] = b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n";

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// Waits until connects to `addr` are refused: the listeners are closed.
fn until_refused(addr: SocketAddr) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect(addr) {
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => return,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "connects still accepted: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

#[test]
fn sigterm_drains_a_two_core_server_and_answers_every_request_in_hand() {
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
    // `/wait` says it has started, then waits for the gate; the test opens
    // the gate once the server is draining.
    let gate = Shutdown::new();
    let (started, has_started) = mpsc::channel();
    let (done, finished) = mpsc::channel();
    let server = std::thread::spawn({
        let gate = gate.clone();
        move || {
            let left = bound.serve_http("drain-test", Builder::new(), move |_core| {
                let gate = gate.clone();
                let started = started.clone();
                service_fn(move |request: Request<Body>| {
                    let gate = gate.clone();
                    let started = started.clone();
                    async move {
                        if request.uri().path() == "/wait" {
                            let _ = started.send(());
                            gate.begun().await;
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"done"))))
                    }
                })
            });
            let _ = done.send(());
            left
        }
    });
    // Idle keep-alive connections: one request answered, then nothing.
    let mut idle: Vec<TcpStream> = (0..8).map(|_| connect(addr)).collect();
    for stream in &mut idle {
        stream.write_all(GET).expect("request");
        let (head, body) = read_response(stream);
        assert!(head.starts_with("http/1.1 200 ok"), "{head}");
        assert_eq!(body, b"done");
    }
    // Connections with a request in the service's hands at the signal.
    let mut busy: Vec<TcpStream> = (0..8).map(|_| connect(addr)).collect();
    for stream in &mut busy {
        stream.write_all(WAIT).expect("request");
    }
    for _ in &busy {
        has_started
            .recv_timeout(PATIENCE)
            .expect("every /wait reached the service");
    }
    // SAFETY: SIGTERM to this process; the server listens for it (its
    // handler was installed before the first request was answered).
    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGTERM) }, 0);
    // The listeners close at once; the requests in hand are still waiting.
    until_refused(addr);
    for (i, stream) in idle.iter_mut().enumerate() {
        let rest = read_to_eof(stream).unwrap_or_else(|err| panic!("idle {i}: {err}"));
        assert!(
            rest.is_empty(),
            "idle {i}: FIN and nothing else, got {rest:?}"
        );
    }
    gate.begin();
    for (i, stream) in busy.iter_mut().enumerate() {
        let (head, body) = read_response(stream);
        assert!(head.starts_with("http/1.1 200 ok"), "busy {i}: {head}");
        assert!(head.contains("connection: close"), "busy {i}: {head}");
        assert_eq!(body, b"done", "busy {i}");
        let rest = read_to_eof(stream).unwrap_or_else(|err| panic!("busy {i}: {err}"));
        assert!(rest.is_empty(), "busy {i}: then FIN, got {rest:?}");
    }
    finished
        .recv_timeout(PATIENCE)
        .expect("the server returned within the patience");
    let left = server.join().expect("no panic").expect("served");
    assert_eq!(left, 0, "connections cut at the end of the grace");
    drop((idle, busy));
    assert_eq!(open_fds(), fds_before, "fd delta after the server returned");
}

#[test]
fn the_server_examples_exit_0_on_sigterm_after_answering() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let args = ["--addr", "127.0.0.1:0", "--cores", "2", "--grace", "20"];

    // echo: a message echoed, one more in flight at the signal, echoed too.
    let echo = start("echo", &args);
    let mut stream = connect(echo.addr);
    stream.write_all(b"ping").expect("send");
    let mut first = [0; 4];
    stream.read_exact(&mut first).expect("an echo");
    stream.write_all(b"pong").expect("send");
    echo.sigterm();
    let rest = read_to_eof(&mut stream).expect("echo: FIN, not a reset");
    assert_eq!(rest, b"pong", "echo: the bytes in flight echoed, then FIN");
    let (exited_0, out) = echo.wait();
    assert!(exited_0, "echo: stdout {out:?}");
    assert!(
        out.contains("echo: shut down (0 connections cut"),
        "{out:?}"
    );

    // http, axum_json: a request answered, the connection idle at the
    // signal: FIN, and the server exits 0.
    for (name, says) in [
        ("http", "http: shut down (0 connections cut"),
        ("axum_json", "axum_json: shut down"),
    ] {
        let server = start(name, &args);
        let mut stream = connect(server.addr);
        stream.write_all(GET).expect("request");
        let (head, _) = read_response(&mut stream);
        assert!(head.starts_with("http/1.1 200 ok"), "{name}: {head}");
        server.sigterm();
        let rest = read_to_eof(&mut stream).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert!(rest.is_empty(), "{name}: FIN and nothing else: {rest:?}");
        let (exited_0, out) = server.wait();
        assert!(exited_0, "{name}: stdout {out:?}");
        assert!(out.contains(says), "{name}: {out:?}");
    }

    // hyper: a body being echoed at the signal; the rest of it, sent after
    // the signal, is echoed too, then FIN.
    let hyper = start("hyper", &args);
    let mut stream = connect(hyper.addr);
    let (first, second) = ("a".repeat(1000), "b".repeat(1000));
    write!(
        stream,
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n{first}"
    )
    .expect("request");
    let mut echoed = Vec::new();
    let mut buf = [0; 4096];
    while !String::from_utf8_lossy(&echoed).contains(&first) {
        let n = stream.read(&mut buf).expect("the first half echoed");
        assert!(n > 0, "hyper: closed early: {echoed:?}");
        echoed.extend_from_slice(&buf[..n]);
    }
    hyper.sigterm();
    // The rest of the body goes out once the server drains.
    until_refused(hyper.addr);
    stream
        .write_all(second.as_bytes())
        .expect("the second half");
    let rest = read_to_eof(&mut stream).expect("hyper: FIN, not a reset");
    let all = String::from_utf8_lossy(&echoed) + String::from_utf8_lossy(&rest);
    assert!(all.starts_with("HTTP/1.1 200 OK"), "{all:?}");
    assert!(
        all.contains(&second),
        "hyper: the whole body echoed: {all:?}"
    );
    let (exited_0, out) = hyper.wait();
    assert!(exited_0, "hyper: stdout {out:?}");
    assert!(
        out.contains("hyper: shut down (0 connections cut"),
        "{out:?}"
    );
}
