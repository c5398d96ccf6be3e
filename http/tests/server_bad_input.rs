//! Bad inputs: each is answered or closed, the server stays up (a normal
//! request succeeds after each), and no fd is left behind. One test: fd
//! counts are per process, so the inputs go one after the other.

mod server_util;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use percore_http::server::Server;
use server_util::*;

/// The fd count once it stops moving (the server's runtime, rings and
/// listeners are up after `alive`; the probe's socket closes after it).
fn steady_fds() -> usize {
    let mut last = fd_count();
    let mut same = 0;
    let start = Instant::now();
    while same < 10 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
        let now = fd_count();
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

/// An answer with `status`, or nothing, and the server closed it.
fn answered_or_closed(what: &str, got: &[u8], end: End, status: &str) {
    let text = String::from_utf8_lossy(&got[..got.len().min(200)]);
    eprintln!("{what}: {:?}", text.lines().next());
    assert!(
        got.is_empty() || text.starts_with(&format!("HTTP/1.1 {status}")),
        "{what}: answered {text:?}, expected {status} or nothing"
    );
    assert_eq!(end, End::Closed, "{what}: the server closes the connection");
}

#[test]
fn bad_inputs_are_answered_or_closed_and_leave_nothing_behind() {
    let server = start(Server::builder().header_read_timeout(Duration::from_secs(2)));
    let addr = server.addr;
    alive(addr);
    let baseline = steady_fds();

    // A 1 MiB head.
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    head.extend_from_slice(b"\r\n\r\n");
    let (got, end) = raw(addr, &head);
    answered_or_closed("a 1 MiB head", &got, end, "431");
    alive(addr);

    // NUL bytes, in the request line and in a header.
    for request in [
        &b"GET /\0\0 HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &b"GET / HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n"[..],
        &b"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\r\n\r\n"[..],
    ] {
        let (got, end) = raw(addr, request);
        answered_or_closed("NUL bytes", &got, end, "400");
        alive(addr);
    }

    // 10,000 headers.
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..10_000 {
        head.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let (got, end) = raw(addr, &head);
    answered_or_closed("10,000 headers", &got, end, "431");
    alive(addr);

    // 1,000 pipelined requests in one write: every one answered.
    let mut requests = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(999);
    requests.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (got, end) = raw(addr, &requests);
    assert_eq!(
        count(&got, b"HTTP/1.1 200 OK"),
        1000,
        "1,000 pipelined requests answered"
    );
    assert_eq!(end, End::Closed);
    alive(addr);

    // A head dripped one byte a second: closed after the 2 s header read
    // timeout, long before the head is whole.
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: dripping one byte at a time\r\n\r\n";
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut sent = 0;
    let mut closed = false;
    for byte in head {
        if stream.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        sent += 1;
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => panic!("dripped head: answered {:?}", &buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed && sent < head.len(),
        "the dripped head is cut off (closed: {closed}, {sent} of {} bytes sent)",
        head.len()
    );
    drop(stream);
    alive(addr);

    // A 1 GiB declared body: 413 without reading it.
    let mut request =
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n".to_vec();
    request.extend(std::iter::repeat_n(b'b', 64 * 1024));
    let (got, end) = raw(addr, &request);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413"), "a 1 GiB body: {text:?}");
    assert_eq!(end, End::Closed);
    alive(addr);

    let left = settle_fds(baseline);
    assert_eq!(
        left as isize - baseline as isize,
        0,
        "fds after the bad inputs ({left}) against before ({baseline})"
    );
    server.stop().unwrap();
}
