//! Idle HTTP/1.1 connections whose hyper state is retired (after
//! `retire_idle_after`, here 1 ms so that every pause retires) go on as if
//! nothing happened: requests after a pause, pipelined ones and a head
//! split across it are answered in order, the timeouts and the shutdown
//! still apply, and no fd is left behind. Verdicts do not depend on timing:
//! a retire that did not happen in time changes none of them (the unit
//! tests in `src/server/tests.rs` check on virtual time that it happens).

mod server_util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::get;
use axum::Router;
use percore_http::server::Server;
use server_util::*;

/// The tests of this file one at a time: one counts the process's fds.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A pause that outlasts the retire delay.
const PAUSE: Duration = Duration::from_millis(20);

fn retiring() -> percore_http::server::Builder {
    Server::builder().retire_idle_after(Duration::from_millis(1))
}

fn connect(addr: SocketAddr) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Reads until `n` answers of `/` are in, and returns them.
fn read_hellos(stream: &mut std::net::TcpStream, n: usize) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while count(&got, b"Hello, world!") < n {
        let read = stream.read(&mut buf).expect("an answer");
        assert!(
            read > 0,
            "closed after {} answers: {:?}",
            count(&got, b"Hello, world!"),
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..read]);
    }
    String::from_utf8(got).unwrap()
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn retired_connections_answer_after_pauses_pipelined_and_split_heads_and_leave_no_fd() {
    let _one = one_at_a_time();
    let server = start(retiring());
    let addr = server.addr;
    alive(addr);
    let baseline = settle_fds(fd_count());
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = connect(addr);
                // One request, a pause, another.
                for _ in 0..3 {
                    stream.write_all(GET).unwrap();
                    let got = read_hellos(&mut stream, 1);
                    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
                    std::thread::sleep(PAUSE);
                }
                // Three pipelined and the start of a fourth; a pause; the rest.
                let mut batch = GET.repeat(3);
                batch.extend_from_slice(&GET[..9]);
                stream.write_all(&batch).unwrap();
                let got = read_hellos(&mut stream, 3);
                assert_eq!(count(got.as_bytes(), b"HTTP/1.1 200 OK"), 3, "{got}");
                std::thread::sleep(PAUSE);
                stream.write_all(&GET[9..]).unwrap();
                read_hellos(&mut stream, 1);
                // A head byte by byte, with pauses.
                for (i, byte) in GET.iter().enumerate() {
                    stream.write_all(&[*byte]).unwrap();
                    if i % 5 == 0 {
                        std::thread::sleep(PAUSE);
                    }
                }
                read_hellos(&mut stream, 1);
                // The last one closes the connection.
                std::thread::sleep(PAUSE);
                stream
                    .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .unwrap();
                let (got, end) = read_all(&mut stream);
                assert_eq!(end, End::Closed);
                assert!(String::from_utf8_lossy(&got).ends_with("Hello, world!"));
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    alive(addr);
    assert!(settle_fds(baseline) <= baseline, "fds left behind");
    server.stop().unwrap();
}

#[test]
fn the_timeouts_still_apply_to_a_retired_connection() {
    let _one = one_at_a_time();
    let server = start(
        retiring()
            .keep_alive_timeout(Duration::from_millis(300))
            .header_read_timeout(Duration::from_millis(300)),
    );
    // Idle after its request: retired, then closed by the keep-alive timeout.
    let mut idle = connect(server.addr);
    idle.write_all(GET).unwrap();
    read_hellos(&mut idle, 1);
    // Retired, then a head that never ends: closed by the header timeout.
    let mut dripping = connect(server.addr);
    dripping.write_all(GET).unwrap();
    read_hellos(&mut dripping, 1);
    std::thread::sleep(PAUSE);
    dripping.write_all(b"GET / HT").unwrap();
    for stream in [&mut idle, &mut dripping] {
        let (got, end) = read_all(stream);
        assert_eq!(end, End::Closed);
        assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    }
    server.stop().unwrap();
}

#[test]
fn the_shutdown_closes_a_retired_connection_and_returns() {
    let _one = one_at_a_time();
    let server = start(retiring());
    let mut stream = connect(server.addr);
    stream.write_all(GET).unwrap();
    read_hellos(&mut stream, 1);
    std::thread::sleep(PAUSE);
    // The idle connection is closed at once (not cut at the end of the
    // grace), and the shutdown returns.
    let stopping = std::thread::spawn(move || server.stop());
    let (got, end) = read_all(&mut stream);
    assert_eq!(end, End::Closed);
    assert!(got.is_empty());
    stopping.join().unwrap().unwrap();
}

#[test]
fn a_connection_hyper_closes_after_a_slow_response_is_closed_not_retired() {
    let _one = one_at_a_time();
    // hyper answers with `Connection: close` and shuts the connection down
    // once the response is out; the body is taken at once, so the
    // connection is idle (and due to retire) long before the client reads
    // it all.
    const BIG: usize = 16 << 20;
    let app = Router::new().route("/big", get(|| async { Bytes::from(vec![b'x'; BIG]) }));
    let mut builder = retiring();
    builder.http1().keep_alive(false);
    let server = start_app(builder, app);
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Not read for a while: the response waits in the server's send.
    std::thread::sleep(Duration::from_millis(200));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (got, end) = read_all(&mut stream);
    assert_eq!(end, End::Closed, "the connection was kept open");
    assert!(got.ends_with(&vec![b'x'; 1024]), "the body arrived");
    assert!(got.len() > BIG, "{} bytes", got.len());
    assert!(
        String::from_utf8_lossy(&got[..200]).contains("connection: close"),
        "{:?}",
        String::from_utf8_lossy(&got[..200])
    );
}
