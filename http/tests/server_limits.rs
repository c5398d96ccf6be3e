//! The server's timeouts and limits: each one fires where it should and only
//! there. Timing is one-sided: a test either waits for something that must
//! happen (bounded widely) or checks that something does *not* happen over
//! a pause, which a slow machine cannot turn into a failure.

mod server_util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use percore_http::server::Server;
use server_util::*;

fn connect(addr: SocketAddr) -> std::net::TcpStream {
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Reads one response that ends with `tail`.
fn read_response(stream: &mut std::net::TcpStream, tail: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).ends_with(tail) {
        let n = stream.read(&mut buf).expect("a response");
        assert!(
            n > 0,
            "closed before the response: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Waits (up to 30 s) for the server to close `stream`.
fn closed_within_30s(stream: &mut std::net::TcpStream) -> bool {
    let start = Instant::now();
    let mut buf = [0u8; 64];
    while start.elapsed() < Duration::from_secs(30) {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(
        Server::builder()
            .keep_alive_timeout(Duration::from_secs(1))
            .header_read_timeout(None),
    );
    // After a request.
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let response = read_response(&mut stream, "Hello, world!");
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    assert!(closed_within_30s(&mut stream), "closed once idle");
    // And a connection that never sent a byte.
    let mut silent = connect(server.addr);
    assert!(
        closed_within_30s(&mut silent),
        "a silent connection is closed"
    );
    // HTTP/2: told to go away, then closed.
    let addr = server.addr;
    percore::run(async move {
        let stream = percore::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            percore_http::rt::Executor,
            percore_http::io::Io::new(stream),
        )
        .await
        .unwrap();
        let conn = percore::spawn(conn);
        let (status, _) = text(sender.send_request(get_req("/")).await.unwrap()).await;
        assert_eq!(status, 200);
        let ended = percore::time::timeout(Duration::from_secs(30), conn).await;
        assert!(ended.is_ok(), "the idle h2 connection ends");
    })
    .unwrap();
    server.stop().unwrap();
}

#[test]
fn the_idle_timeout_spares_a_request_in_progress_and_the_header_timeout_spares_idleness() {
    let server = start(
        Server::builder()
            .keep_alive_timeout(Duration::from_millis(500))
            .header_read_timeout(Duration::from_secs(60)),
    );
    // A body paused for longer than the idle timeout: the request is in
    // progress, so the connection stays.
    let mut stream = connect(server.addr);
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    stream.write_all(b"world").unwrap();
    let response = read_response(&mut stream, "helloworld");
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    server.stop().unwrap();

    let server = start(
        Server::builder()
            .keep_alive_timeout(Duration::from_secs(60))
            .header_read_timeout(Duration::from_millis(500)),
    );
    // Idle longer than the header timeout: not a slow head, so it stays.
    let mut stream = connect(server.addr);
    std::thread::sleep(Duration::from_secs(2));
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let response = read_response(&mut stream, "Hello, world!");
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    // Then idle again after a response, also longer than the header timeout.
    std::thread::sleep(Duration::from_secs(2));
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let response = read_response(&mut stream, "Hello, world!");
    assert!(response.starts_with("HTTP/1.1 200"), "{response:?}");
    server.stop().unwrap();
}

#[test]
fn a_stalled_body_times_out() {
    let server = start(Server::builder().body_read_timeout(Duration::from_millis(500)));
    let mut stream = connect(server.addr);
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        .unwrap();
    // axum answers a body that failed to arrive with 400.
    let (got, _) = read_all(&mut stream);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 400"), "{text:?}");
    server.stop().unwrap();
}

#[test]
fn bodies_over_the_limit_are_refused_and_bodies_at_it_are_not() {
    let server = start(Server::builder().max_body_size(1000));
    let addr = server.addr;
    // Declared: 413 from the server, the service never called.
    let (got, end) = raw(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413"), "{text:?}");
    assert!(text.contains("connection: close"), "{text:?}");
    assert_eq!(end, End::Closed);
    // At the limit: served.
    let mut request =
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n"
            .to_vec();
    request.extend(std::iter::repeat_n(b'a', 1000));
    let (got, _) = raw(addr, &request);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    // Streamed (chunked) past the limit: the body errs with a length
    // limit, which axum answers 413.
    let mut request =
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_vec();
    for _ in 0..5 {
        request.extend_from_slice(b"3e8\r\n");
        request.extend(std::iter::repeat_n(b'a', 1000));
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let (got, _) = raw(addr, &request);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413"), "{text:?}");
    // Over HTTP/2 too.
    percore::run(async move {
        let mut sender = h2(addr).await;
        let (status, _) = text_of(
            sender
                .send_request(post_req("/echo", vec![b'a'; 1001]))
                .await,
        )
        .await;
        assert_eq!(status, 413);
        let (status, body) = text_of(
            sender
                .send_request(post_req("/echo", vec![b'a'; 1000]))
                .await,
        )
        .await;
        assert_eq!((status, body.len()), (200, 1000));
    })
    .unwrap();
    server.stop().unwrap();
}

async fn text_of(
    response: Result<hyper::Response<hyper::body::Incoming>, hyper::Error>,
) -> (u16, String) {
    text(response.unwrap()).await
}

#[test]
fn heads_over_the_size_and_count_limits_get_431() {
    let server = start(Server::builder().max_head_size(1024).max_headers(10));
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 2048));
    head.extend_from_slice(b"\r\n\r\n");
    let (got, _) = raw(server.addr, &head);
    assert!(
        got.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..20 {
        head.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let (got, _) = raw(server.addr, &head);
    assert!(
        got.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    let (got, _) = raw(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nConnection: close\r\n\r\n",
    );
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    server.stop().unwrap();
}
