//! With io_uring blocked by a seccomp filter (as in containers' default
//! profiles), the default runtime runs on epoll and real sockets work on it:
//! a TCP echo of 100 messages from 1 B to 64 KiB comes back byte-exact, and
//! keep-alive HTTP/1.1 requests get their responses on one connection. Forcing
//! io_uring there fails with an error that names the blocked call and the
//! likely cause.
//!
//! The filter cannot be removed once installed, so the work runs in a child
//! process: the parent test re-runs this binary on `child_under_seccomp` and
//! checks the `RESULT:` lines the child prints.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::process::Command;

use percore::net::{TcpListener, TcpStream};
use percore::{Driver, IoBuf, JoinError};

const CHILD_ENV: &str = "PERCORE_SECCOMP_FALLBACK_CHILD";

/// Messages the echo client sends.
const MESSAGES: usize = 100;
/// Requests the HTTP client sends on its one connection.
const REQUESTS: usize = 20;
/// Most bytes of a request or response head either HTTP side accepts.
const MAX_HEAD: usize = 8 * 1024;

#[path = "../runtime/tests/util/seccomp.rs"]
mod seccomp;
use seccomp::block_io_uring_setup;

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A task's own result, or its panic or cancellation as an error.
fn joined<T>(joined: Result<io::Result<T>, JoinError>) -> io::Result<T> {
    joined.map_err(|err| io::Error::other(format!("task: {err}")))?
}

/// Length of echo message `i`: powers of two from 1 B to 64 KiB, every other
/// one a byte short of its power.
fn message_len(i: usize) -> usize {
    let power = 1 << (i % 17);
    if i % 2 == 1 && power > 1 {
        power - 1
    } else {
        power
    }
}

/// Echo message `i`, a pattern that differs between messages and positions.
fn message(i: usize) -> Vec<u8> {
    (0..message_len(i))
        .map(|j| (i * 31 + j * 7 + j / 251) as u8)
        .collect()
}

fn echo_total() -> usize {
    (0..MESSAGES).map(message_len).sum()
}

/// Accepts one connection and echoes it until end of stream; returns the bytes echoed.
async fn echo_server(listener: TcpListener) -> io::Result<usize> {
    let (stream, _) = listener.accept().await?;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut total = 0;
    // Each pass echoes at least one byte or ends, and the client sends echo_total() bytes.
    for _ in 0..=echo_total() {
        buf.clear();
        let (res, back) = stream.read(buf).await;
        let n = res?;
        if n == 0 {
            stream.shutdown(Shutdown::Write).await?;
            return Ok(total);
        }
        let (res, back) = stream.write_all(back).await;
        res?;
        buf = back;
        total += n;
    }
    Err(invalid(format!(
        "echo server: more than {} bytes",
        echo_total()
    )))
}

/// Sends the messages from a writer task while reading each one back exactly.
async fn echo_round_trip() -> io::Result<usize> {
    let listener = TcpListener::bind(localhost())?;
    let addr = listener.local_addr()?;
    let server = percore::spawn(echo_server(listener));
    let (read, write) = TcpStream::connect(addr).await?.into_split();
    // Writing and reading at once: the echo cannot stall on full socket buffers.
    let writer = percore::spawn(async move {
        for i in 0..MESSAGES {
            let (res, _) = write.write_all(message(i)).await;
            res?;
        }
        write.shutdown().await
    });
    for i in 0..MESSAGES {
        let len = message_len(i);
        let (res, back) = read
            .read_exact(Vec::<u8>::with_capacity(len).slice(..len))
            .await;
        res?;
        if back.into_inner() != message(i) {
            return Err(invalid(format!("echo message {i} ({len} B) differs")));
        }
    }
    let (res, _) = read.read(Vec::with_capacity(1)).await;
    if res? != 0 {
        return Err(invalid("bytes after the last echo".to_string()));
    }
    joined(writer.await)?;
    joined(server.await)
}

/// Bytes read from a stream and not yet consumed, cut into heads and bodies.
struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    fn new() -> Reader {
        Reader {
            buf: Vec::with_capacity(MAX_HEAD),
        }
    }

    /// Reads once more, appending to the buffer; `Ok(0)` is end of stream.
    async fn fill(&mut self, stream: &TcpStream) -> io::Result<usize> {
        if self.buf.len() == self.buf.capacity() {
            self.buf.reserve(4096);
        }
        let (res, back) = stream.read(std::mem::take(&mut self.buf)).await;
        self.buf = back;
        res
    }

    /// The next head, up to and including `\r\n\r\n`, as text; `None` at end
    /// of stream between messages.
    async fn head(&mut self, stream: &TcpStream) -> io::Result<Option<String>> {
        // Each pass reads at least one byte or ends.
        for _ in 0..=MAX_HEAD {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8(head)
                    .map(Some)
                    .map_err(|_| invalid("head is not UTF-8".to_string()));
            }
            if self.buf.len() > MAX_HEAD {
                break;
            }
            if self.fill(stream).await? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Err(invalid(format!("head longer than {MAX_HEAD} bytes")))
    }

    /// The next `len` bytes.
    async fn body(&mut self, stream: &TcpStream, len: usize) -> io::Result<Vec<u8>> {
        // Each pass reads at least one byte or ends.
        for _ in 0..=len {
            if self.buf.len() >= len {
                return Ok(self.buf.drain(..len).collect());
            }
            if self.fill(stream).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Err(invalid(format!("body of {len} bytes never completed")))
    }
}

/// The body the server answers for `/item/{i}`: from 9 B to about 26 KiB.
fn http_body(i: usize) -> Vec<u8> {
    format!("item {i:02}\n").into_bytes().repeat(1 + i * i * 8)
}

/// Serves GET requests on one keep-alive connection until the client closes;
/// returns how many it answered.
async fn http_server(listener: TcpListener) -> io::Result<usize> {
    let (stream, _) = listener.accept().await?;
    let mut reader = Reader::new();
    for served in 0..=REQUESTS {
        let Some(head) = reader.head(&stream).await? else {
            return Ok(served);
        };
        let request_line = head.split("\r\n").next().unwrap_or_default();
        let item = match request_line.split(' ').collect::<Vec<_>>()[..] {
            ["GET", path, "HTTP/1.1"] => path.strip_prefix("/item/").and_then(|i| i.parse().ok()),
            _ => None,
        };
        let Some(item) = item else {
            return Err(invalid(format!("unexpected request {request_line:?}")));
        };
        let body = http_body(item);
        let mut response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(&body);
        let (res, _) = stream.write_all(response).await;
        res?;
    }
    Err(invalid(format!("more than {REQUESTS} requests")))
}

/// Sends `REQUESTS` GETs on one connection, checking each response's status
/// line and body; returns how many responses were right.
async fn http_round_trip() -> io::Result<usize> {
    let listener = TcpListener::bind(localhost())?;
    let addr = listener.local_addr()?;
    let server = percore::spawn(http_server(listener));
    let stream = TcpStream::connect(addr).await?;
    let mut reader = Reader::new();
    for i in 0..REQUESTS {
        let request = format!("GET /item/{i} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n");
        let (res, _) = stream.write_all(request.into_bytes()).await;
        res?;
        let head = reader
            .head(&stream)
            .await?
            .ok_or_else(|| invalid(format!("connection closed before response {i}")))?;
        let mut lines = head.split("\r\n");
        if lines.next() != Some("HTTP/1.1 200 OK") {
            return Err(invalid(format!("response {i}: status line of {head:?}")));
        }
        let len = lines
            .find_map(|line| line.strip_prefix("Content-Length: "))
            .and_then(|len| len.parse::<usize>().ok())
            .ok_or_else(|| invalid(format!("response {i}: no Content-Length in {head:?}")))?;
        let body = reader.body(&stream, len).await?;
        if body != http_body(i) {
            return Err(invalid(format!("response {i}: body differs")));
        }
    }
    stream.shutdown(Shutdown::Write).await?;
    if reader.head(&stream).await?.is_some() {
        return Err(invalid("a response nobody asked for".to_string()));
    }
    let served = joined(server.await)?;
    if served != REQUESTS {
        return Err(invalid(format!("server answered {served} requests")));
    }
    Ok(REQUESTS)
}

/// Runs only in the child process the parent test starts.
#[test]
fn child_under_seccomp() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    block_io_uring_setup();
    let auto = percore::run(async {
        println!("RESULT: auto runs {}", percore::stats().driver);
        match echo_round_trip().await {
            Ok(bytes) => println!("RESULT: echo {MESSAGES} messages, {bytes} bytes, exact"),
            Err(err) => println!("RESULT: echo failed: {err}"),
        }
        match http_round_trip().await {
            Ok(n) => println!("RESULT: http {n} keep-alive responses, exact"),
            Err(err) => println!("RESULT: http failed: {err}"),
        }
    });
    if let Err(err) = auto {
        println!("RESULT: auto failed: {err}");
    }
    let forced = percore::Builder::new()
        .driver(Driver::IoUring)
        .block_on(async {});
    match forced {
        Ok(()) => println!("RESULT: forced started"),
        Err(err) => {
            println!("RESULT: forced kind={:?}", err.kind());
            println!("RESULT: forced message={err}");
        }
    }
}

#[test]
fn blocked_io_uring_falls_back_to_epoll_and_serves_tcp_and_http() {
    let exe = std::env::current_exe().expect("test binary path");
    let output = Command::new(exe)
        .env_remove("PERCORE_DRIVER")
        .args([
            "--exact",
            "child_under_seccomp",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed: {stdout}\n{stderr}");
    // The first line starts with libtest's "test child_under_seccomp ... ".
    let result = |prefix: &str| -> Option<&str> {
        stdout
            .lines()
            .find_map(|line| line.split_once("RESULT: ")?.1.strip_prefix(prefix))
    };

    assert_eq!(result("auto runs "), Some("epoll"), "{stdout}");
    let echo = format!("{MESSAGES} messages, {} bytes, exact", echo_total());
    assert_eq!(result("echo "), Some(echo.as_str()), "{stdout}");
    let http = format!("{REQUESTS} keep-alive responses, exact");
    assert_eq!(result("http "), Some(http.as_str()), "{stdout}");

    assert_eq!(result("forced kind="), Some("PermissionDenied"), "{stdout}");
    let message = result("forced message=").expect("forced io_uring fails");
    assert!(
        message.contains("io_uring_setup"),
        "names the call: {message}"
    );
    assert!(message.contains("seccomp"), "names the cause: {message}");

    let announced: Vec<_> = stderr
        .lines()
        .filter(|line| line.contains("running on epoll"))
        .collect();
    assert_eq!(announced.len(), 1, "one line says why: {stderr}");
    assert!(announced[0].contains("io_uring_setup"), "{stderr}");
}
