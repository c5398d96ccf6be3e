//! `Builder::rehome`: keep-alive HTTP/1.1 connections served on core 0 move
//! to core 1 between requests when their `Balance` asks
//! (`Balance::move_connections`), and every request is answered once, in
//! order, whole — a request sent alone, and two pipelined in one write that
//! the move may split (the second one read on core 0, served on core 1).
//! The connections end up served on core 1; the server drains and leaves
//! no fd behind.

mod server_util;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::select;
use http_body_util::Full;
use hyper::{Request, Response};
use percore::net::balance::Balance;
use percore::net::graceful::Connections;
use percore::net::tcp::ListenOptions;
use percore::net::TcpListener;
use percore::shutdown::Shutdown;
use percore_http::server::{Body, Builder, Server};
use server_util::*;

const CONNECTIONS: usize = 8;

/// The tests count the process's fds: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// Requests a connection sends, after the move was asked, before it must
/// be served on core 1 (it moves after the first).
const MAX_ROUNDS: usize = 20;

/// Answers `<core> <path>`: which core served which request.
async fn which_core(request: Request<Body>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = format!("{} {}", percore::current_core(), request.uri().path());
    Ok(Response::new(Full::new(Bytes::from(body))))
}

/// A keep-alive client on a blocking socket.
struct Client {
    stream: std::net::TcpStream,
    /// Bytes received past the last response read.
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        // Bounds every read: a lost request fails the test, not hangs it.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends a GET of each path in one write.
    fn send(&mut self, paths: &[&str]) {
        let mut out = Vec::new();
        for path in paths {
            out.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        }
        self.stream.write_all(&out).expect("send");
    }

    /// Reads one response: its body's core and path.
    fn response(&mut self) -> (usize, String) {
        let (status, body) = self.text_response();
        assert_eq!(status, 200, "{body}");
        let (core, path) = body.split_once(' ').expect("`<core> <path>`");
        (core.parse().expect("a core"), path.to_owned())
    }

    /// Reads one response: its status and body.
    fn text_response(&mut self) -> (u16, String) {
        let end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill();
        };
        let head = String::from_utf8(self.buf[..end].to_vec()).expect("head in UTF-8");
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().expect("a length"))
            })
            .expect("content-length");
        while self.buf.len() < end + length {
            self.fill();
        }
        let body = String::from_utf8(self.buf[end..end + length].to_vec()).expect("UTF-8");
        self.buf.drain(..end + length);
        (status, body)
    }

    fn fill(&mut self) {
        let mut chunk = [0; 4096];
        let n = self.stream.read(&mut chunk).expect("read a response");
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// One request, answered: by which core.
    fn get(&mut self, path: &str) -> usize {
        self.send(&[path]);
        let (core, answered) = self.response();
        assert_eq!(answered, path);
        core
    }
}

#[test]
fn idle_connections_move_to_another_core_between_requests() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let fds_before = fd_count();
    let runtime = percore::Runtime::builder().cores(2).build().unwrap();
    // A listener per core; the clients connect to core 0's. A margin no
    // count reaches keeps every fresh connection where it was accepted.
    let mut listeners = Vec::new();
    for _ in 0..2 {
        let listener = ListenOptions::new().bind_tcp("127.0.0.1:0").unwrap();
        listeners.push(listener.into_std().unwrap());
    }
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let balance = Balance::new(2).margin(usize::MAX);
    let shutdown = Shutdown::new();
    let mut served = Vec::new();
    for (core, listener) in listeners.into_iter().enumerate() {
        let (balance, shutdown) = (balance.clone(), shutdown.clone());
        let handle = runtime
            .spawn_on(core, move || async move {
                let listener = TcpListener::from_std(listener);
                let connections = Connections::new(&shutdown);
                let service = hyper::service::service_fn(which_core);
                let builder = Builder::new().signals(false).rehome(true);
                let serving =
                    builder.serve_balanced(&listener, &balance, service, connections.clone());
                let _ = select(pin!(serving), pin!(shutdown.begun())).await;
                connections.finish().await;
                let _ = percore::time::timeout(Duration::from_secs(10), shutdown.drained()).await;
            })
            .unwrap();
        served.push(handle);
    }

    // Core 1 takes connections (its `Balanced` is registered) once it
    // answers one of its own.
    assert_eq!(Client::connect(addrs[1]).get("/probe"), 1);
    let mut clients: Vec<Client> = (0..CONNECTIONS)
        .map(|_| Client::connect(addrs[0]))
        .collect();
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.get(&format!("/first/{i}")), 0, "connection {i}");
    }
    assert_eq!(balance.moves(), 0);

    balance.move_connections(0, 1, CONNECTIONS);
    for (i, client) in clients.iter_mut().enumerate() {
        if i % 2 == 0 {
            // Alone: answered where it is, then the connection moves.
            client.get(&format!("/alone/{i}"));
        } else {
            // Two in one write: the move may come between them.
            let (a, b) = (format!("/a/{i}"), format!("/b/{i}"));
            client.send(&[&a, &b]);
            let (core_a, path_a) = client.response();
            let (core_b, path_b) = client.response();
            assert_eq!((path_a.as_str(), path_b.as_str()), (&*a, &*b));
            assert!(core_a <= core_b, "connection {i}: {core_a} then {core_b}");
        }
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let mut rounds = 0;
        while client.get(&format!("/next/{i}/{rounds}")) != 1 {
            rounds += 1;
            assert!(rounds < MAX_ROUNDS, "connection {i} still on core 0");
        }
        // It stays there.
        assert_eq!(client.get(&format!("/stays/{i}")), 1, "connection {i}");
    }
    assert_eq!(balance.moves(), CONNECTIONS as u64);
    assert_eq!(balance.live()[0], 0, "{:?}", balance.live());

    drop(clients);
    shutdown.begin();
    percore::run(async move {
        for handle in served {
            handle.await.unwrap();
        }
    })
    .unwrap();
    drop(runtime);
    assert_eq!(settle_fds(fds_before), fds_before, "fd delta");
}

/// `Server::builder().rehome(true)`: a server whose cores move connections
/// by their load answers keep-alive requests whole and in order, wherever
/// they are served (whether any moves depends on the machine's load), and
/// drains leaving no fd behind.
#[test]
fn a_rehoming_server_answers_every_request() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let fds_before = fd_count();
    let server = start_app(Server::builder().rehome(true), app());
    let mut clients: Vec<Client> = (0..4).map(|_| Client::connect(server.addr)).collect();
    for round in 0..50 {
        for client in &mut clients {
            client.send(&["/", "/"]);
            for _ in 0..2 {
                let (status, body) = client.text_response();
                assert_eq!(
                    (status, body.as_str()),
                    (200, "Hello, world!"),
                    "round {round}"
                );
            }
        }
    }
    drop(clients);
    server.stop().unwrap();
    assert_eq!(settle_fds(fds_before), fds_before, "fd delta");
}
