//! What the server tests share: an axum app, a server on its own thread,
//! hyper clients over percore, raw sockets, fd counts.

#![allow(dead_code)] // each test file uses its own part

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use percore::net::TcpStream;
use percore::shutdown::Shutdown;
use percore_http::io::Io;
use percore_http::rt::Executor;
use percore_http::server::Builder;

/// Chunks `/chunked` streams, and their text.
pub const CHUNKS: usize = 5;
pub fn chunk(i: usize) -> String {
    format!("chunk {i}\n")
}

/// The app every test serves.
pub fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "Hello, world!" }))
        .route("/echo", post(|body: Bytes| async move { body }))
        .route(
            "/chunked",
            get(|| async {
                let chunks = (0..CHUNKS).map(|i| Ok::<_, std::io::Error>(chunk(i)));
                axum::body::Body::from_stream(futures_util::stream::iter(chunks))
            }),
        )
        .route(
            "/slow",
            get(|| async {
                percore::time::sleep(Duration::from_millis(300)).await;
                "slow"
            }),
        )
}

/// A server on a thread of its own, stopped (drained) when dropped.
pub struct Running {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

/// Serves `app()` with `builder`'s options on two cores, 127.0.0.1 only.
pub fn start(builder: Builder) -> Running {
    start_app(builder, app())
}

pub fn start_app(builder: Builder, app: Router) -> Running {
    start_on(builder.cores(2), app)
}

/// Serves `app` with `builder`'s options, its number of cores included.
pub fn start_on(builder: Builder, app: Router) -> Running {
    let server = builder
        .signals(false)
        .grace(Duration::from_secs(10))
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.serve(app));
    Running {
        addr,
        shutdown,
        thread: Some(thread),
    }
}

impl Running {
    /// Begins the shutdown and waits for `serve` to return.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.shutdown.begin();
        let thread = self.thread.take().unwrap();
        thread.join().expect("the server thread panicked")
    }

    /// Whether `serve` has returned.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.shutdown.begin();
            let _ = thread.join();
        }
    }
}

/// An HTTP/1.1 client connection (hyper's, over percore-http's `Io`).
pub async fn h1(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(Io::new(stream))
        .await
        .unwrap();
    drop(percore::spawn(conn));
    sender
}

/// An HTTP/2 (h2c, prior knowledge) client connection.
pub async fn h2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(Executor, Io::new(stream))
        .await
        .unwrap();
    drop(percore::spawn(conn));
    sender
}

pub fn get_req(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

pub fn post_req(path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "localhost")
        .body(Full::new(body.into()))
        .unwrap()
}

/// Status and body text of a response.
pub async fn text(response: Response<hyper::body::Incoming>) -> (u16, String) {
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits (bounded, 30 s) for the fd count to come back to `baseline`;
/// returns the count then.
pub fn settle_fds(baseline: usize) -> usize {
    let start = Instant::now();
    loop {
        let now = fd_count();
        if now <= baseline || start.elapsed() > Duration::from_secs(30) {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How a raw exchange ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The server closed (end of stream, or a reset).
    Closed,
    /// Nothing more came for the read timeout (the server kept it open).
    Open,
}

/// Writes `request` on a plain socket (ignoring write errors: the server
/// may close early), then reads what comes until the server closes or 10 s
/// pass without a byte.
pub fn raw(addr: SocketAddr, request: &[u8]) -> (Vec<u8>, End) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request);
    read_all(&mut stream)
}

/// Reads until end of stream, a reset, or 10 s without a byte.
pub fn read_all(stream: &mut std::net::TcpStream) -> (Vec<u8>, End) {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, End::Closed),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return (got, End::Open),
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => return (got, End::Open),
            Err(_) => return (got, End::Closed),
        }
    }
}

/// How many times `needle` occurs in `haystack`.
pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle)
        .count()
}

/// One normal request on a fresh connection: the server is alive.
pub fn alive(addr: SocketAddr) {
    let (got, _) = raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("Hello, world!"),
        "a normal request after the bad input: {text:?}"
    );
}
