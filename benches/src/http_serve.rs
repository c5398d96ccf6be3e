//! The hello-world service on percore-http, as `percore-bench serve http
//! --server percore-http` runs it and as the `http_compare` bench starts it:
//! `percore::http::server`'s per-core path ([`Builder::serve_listener`]) on
//! one `SO_REUSEPORT` listener per core, HTTP/1.1 and h2c (told apart by the
//! preface) in the clear, or HTTPS with `h2`/`http/1.1` by ALPN (`--tls`,
//! a self-signed certificate made at start).
//!
//! The service ([`hello`]) is the one its hyper-on-tokio peer answers with
//! too, so both send the same bytes: `200`, `content-type: text/plain`,
//! `Hello, world!`, and the `content-length` and `date` hyper adds.
//!
//! [`Stack::Compat`] serves it the way percore's `hyper` example did before
//! percore-http: hyper's HTTP/1.1 connection over `TcpStream::into_compat`
//! (a 16 KiB buffer each way, a `recv` SQE per read), with percore's hyper
//! timer — what percore-http's I/O path is measured against.
//!
//! [`Builder::serve_listener`]: percore::http::server::Builder::serve_listener

use std::convert::Infallible;
use std::future::Future;
use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::select;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response};
use percore::http::io::Io;
use percore::http::server::{Accept, Accepted, Body, Builder, Protocol};
use percore::http::tls::{TlsAcceptor, TlsStream};
use percore::net::balance::Balance;
use percore::net::compat::HyperTimer;
use percore::net::graceful::Connections;
use percore::net::tcp::ListenOptions;
use percore::net::TcpListener;
use percore::shutdown::Shutdown;
use percore::{Runtime, Stats};

use crate::child::STATS_REQUEST;
use crate::cli::ServeOptions;
use crate::cpu;
use crate::server::Placement;

/// The body every server of the HTTP comparison answers with.
pub const HELLO: &[u8] = b"Hello, world!";

/// The hello-world response: `200`, `content-type: text/plain`, [`HELLO`].
pub fn hello_response() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(HELLO)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// The service: every request answered with [`hello_response`], its body
/// left unread (a hello-world request has none).
pub async fn hello<B>(_request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(hello_response())
}

/// A self-signed certificate for `localhost` and `127.0.0.1` (ECDSA P-256,
/// rcgen's default), in PEM and DER.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its private key, DER (PKCS#8).
    pub key_der: Vec<u8>,
}

/// Makes a [`SelfSigned`] certificate (load generators here do not verify).
///
/// # Errors
///
/// rcgen could not make the key or the certificate.
pub fn self_signed() -> io::Result<SelfSigned> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|err| io::Error::other(format!("making a self-signed certificate: {err}")))?;
    Ok(SelfSigned {
        cert_pem: made.cert.pem(),
        key_pem: made.key_pair.serialize_pem(),
        cert_der: made.cert.der().to_vec(),
        key_der: made.key_pair.serialize_der(),
    })
}

/// The TLS step of the server: rustls by percore-http's [`TlsAcceptor`],
/// the protocol as ALPN chose it (HTTP/1.1 when the client offered none).
#[derive(Debug, Clone)]
struct Tls(TlsAcceptor);

impl Accept for Tls {
    type Conn = TlsStream<Io>;

    fn accept(&self, io: Io) -> impl Future<Output = io::Result<Accepted<TlsStream<Io>>>> {
        let acceptor = self.0.clone();
        async move {
            let conn = acceptor.accept(io).await?;
            let protocol = if conn.is_h2() {
                Protocol::Http2
            } else {
                Protocol::Http1
            };
            Ok(Accepted {
                conn,
                protocol: Some(protocol),
            })
        }
    }
}

/// How the hello-world server speaks HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// `percore::http::server`: HTTP/1.1 and HTTP/2, TLS if asked.
    PercoreHttp,
    /// hyper's HTTP/1.1 connection over percore's `Compat` (no HTTP/2, no TLS).
    Compat,
}

/// A running hello-world server on percore-http; dropping it stops its cores.
#[derive(Debug)]
pub struct HelloServer {
    runtime: Runtime,
    addr: SocketAddr,
    shutdown: Shutdown,
    tls: bool,
}

impl HelloServer {
    /// Binds `cores` listeners on `addr` (port 0 picks one) and serves
    /// [`hello`] on as many cores; core `i` pins itself to the `first_cpu +
    /// i`-th allowed CPU when `first_cpu` is given. With `tls`, HTTPS with a
    /// fresh [`self_signed`] certificate. The runtime reads `PERCORE_DRIVER`.
    ///
    /// # Errors
    ///
    /// Binding fails (address in use…), the certificate cannot be made, or
    /// the runtime cannot start.
    pub fn start(
        addr: SocketAddr,
        cores: usize,
        first_cpu: Option<usize>,
        tls: bool,
    ) -> io::Result<HelloServer> {
        HelloServer::start_stack(
            Stack::PercoreHttp,
            addr,
            cores,
            first_cpu,
            tls,
            Placement::Kernel,
        )
    }

    /// As [`start`](HelloServer::start), on `stack`; with
    /// [`Placement::Balance`], the cores place fresh connections by load
    /// ([`Builder::serve_balanced`]); with [`Placement::Rehome`], plain
    /// HTTP/1.1 connections also move between requests from a core that
    /// waits for its CPU to one with room ([`Builder::rehome`]).
    ///
    /// # Errors
    ///
    /// As [`start`](HelloServer::start); `tls` or a placement other than
    /// the kernel's with [`Stack::Compat`].
    pub fn start_stack(
        stack: Stack,
        addr: SocketAddr,
        cores: usize,
        first_cpu: Option<usize>,
        tls: bool,
        placement: Placement,
    ) -> io::Result<HelloServer> {
        if tls && stack == Stack::Compat {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the Compat server speaks plain HTTP/1.1 only: leave out --tls",
            ));
        }
        if placement != Placement::Kernel && stack == Stack::Compat {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the Compat server serves each core's own listener: leave out --balance and --rehome",
            ));
        }
        let cores = cores.max(1);
        let options = ListenOptions::new().reuse_port(true).backlog(4096);
        let first = options.bind_tcp(addr)?;
        let addr = first.local_addr()?;
        let mut listeners = vec![first.into_std()?];
        for _ in 1..cores {
            listeners.push(options.bind_tcp(addr)?.into_std()?);
        }
        let acceptor = if tls {
            let cert = self_signed()?;
            Some(TlsAcceptor::from_pem(
                cert.cert_pem.as_bytes(),
                cert.key_pem.as_bytes(),
            )?)
        } else {
            None
        };
        let runtime = Runtime::builder()
            .cores(cores)
            .stall_threshold(None)
            .build()?;
        let shutdown = Shutdown::new();
        let rehome = placement == Placement::Rehome;
        let balance = match placement {
            Placement::Kernel => None,
            Placement::Balance => Some(Balance::new(cores)),
            Placement::Rehome => Some(Balance::new(cores).rehome(true)),
        };
        for (core, listener) in listeners.into_iter().enumerate() {
            let cpu = first_cpu.and_then(|first| cpu::cpu_for(first, core));
            let shutdown = shutdown.clone();
            let acceptor = acceptor.clone();
            let balance = balance.clone();
            let _detached = runtime.spawn_on(core, move || async move {
                if let Some(cpu) = cpu {
                    // Unpinned is still a correct server; the caller asked for best effort.
                    let _ = cpu::pin_to(cpu);
                }
                let listener = TcpListener::from_std(listener);
                match acceptor {
                    None if stack == Stack::Compat => serve_compat(listener, &shutdown).await,
                    Some(acceptor) => {
                        let builder = Builder::new()
                            .signals(false)
                            .rehome(rehome)
                            .acceptor(Tls(acceptor));
                        serve_core(&builder, listener, balance, &shutdown).await;
                    }
                    None => {
                        let builder = Builder::new().signals(false).rehome(rehome);
                        serve_core(&builder, listener, balance, &shutdown).await;
                    }
                }
            })?;
        }
        Ok(HelloServer {
            runtime,
            addr,
            shutdown,
            tls,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it serves HTTPS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// Listens for `SIGTERM` and `SIGINT` (from now on they no longer end
    /// the process): the first begins the server's shutdown.
    ///
    /// # Errors
    ///
    /// The handlers cannot be installed, or core 0 has stopped.
    pub fn drain_on_signals(&self) -> io::Result<()> {
        crate::server::drain_on_signals(&self.runtime, &self.shutdown)
    }

    /// Waits for the shutdown to begin, then up to `grace` for every
    /// connection to finish what it received; returns how many were still
    /// open.
    ///
    /// # Errors
    ///
    /// Core 0 has stopped.
    pub fn wait_for_shutdown(&self, grace: Duration) -> io::Result<usize> {
        crate::server::wait_for_shutdown(&self.runtime, &self.shutdown, grace)
    }

    /// Every core's counters, summed (`core` is the number of cores).
    ///
    /// # Errors
    ///
    /// A core has stopped.
    pub fn stats(&self) -> io::Result<Stats> {
        crate::server::summed_stats(&self.runtime)
    }
}

/// One core: serves `listener` with `builder` until the shutdown begins,
/// then lets the connections finish.
async fn serve_core<A: Accept>(
    builder: &Builder<A>,
    listener: TcpListener,
    balance: Option<Balance>,
    shutdown: &Shutdown,
) {
    let connections = Connections::new(shutdown);
    let service = hyper::service::service_fn(hello::<Body>);
    match balance {
        None => {
            let served = builder.serve_listener(listener, service, connections.clone());
            // Dropping `served` closes the listener.
            let _ = select(pin!(served), pin!(shutdown.begun())).await;
        }
        Some(balance) => {
            let served = builder.serve_balanced(&listener, &balance, service, connections.clone());
            // The balance is made for every core: `served` runs until dropped.
            let _ = select(pin!(served), pin!(shutdown.begun())).await;
            drop(listener);
        }
    }
    shutdown.begun().await;
    connections.finish().await;
}

/// One core of [`Stack::Compat`]: a task per connection serving hyper's
/// HTTP/1.1 over `Compat` until the shutdown begins.
async fn serve_compat(listener: TcpListener, shutdown: &Shutdown) {
    let connections = Connections::new(shutdown);
    let accepting = async {
        let mut incoming = listener.incoming();
        while let Some(next) = futures_util::StreamExt::next(&mut incoming).await {
            // Accept errors (EMFILE…) are retried by `incoming` after a pause.
            let Ok(stream) = next else { continue };
            let _ = stream.set_nodelay(true);
            let guard = connections.guard();
            drop(percore::spawn(async move {
                let _guard = guard;
                let service = hyper::service::service_fn(hello::<hyper::body::Incoming>);
                // Errors (a reset peer…) end this connection only.
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(HyperTimer)
                    .serve_connection(stream.into_compat(), service)
                    .await;
            }));
        }
    };
    // Dropping `accepting` closes the listener.
    let _ = select(pin!(accepting), pin!(shutdown.begun())).await;
    shutdown.begun().await;
    connections.finish().await;
}

/// Live heap bytes of this process as glibc's allocator counts them
/// (`mallinfo2`: `uordblks + hblkhd`, over all arenas); `None` where that
/// is not glibc.
pub fn heap_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments and returns a plain struct;
        // it only reads the allocator's bookkeeping (under its locks).
        let info = unsafe { libc::mallinfo2() };
        Some((info.uordblks + info.hblkhd) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// What a server child of the HTTP comparison reports on a `stats` line:
/// percore's counters (when it is percore) and the process's live heap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildReport {
    /// `io_uring_enter` (or `epoll_wait`) calls, percore servers only.
    pub enters: Option<u64>,
    /// Submission entries, percore servers only.
    pub sqes: Option<u64>,
    /// `io_uring` or `epoll`, percore servers only.
    pub driver: Option<&'static str>,
    /// The live heap: [`heap_in_use`], plus on percore the cells of its task
    /// arena ([`percore::Stats::task_bytes`], summed over the cores), memory
    /// glibc does not see (tokio's tasks are on glibc's heap).
    pub heap: Option<u64>,
}

impl ChildReport {
    /// The report as one JSON line (fields left out when unknown); a
    /// superset of what [`child::ServerChild::stats`](crate::child::ServerChild::stats)
    /// reads.
    pub fn to_json(&self) -> String {
        let mut fields = Vec::new();
        if let Some(enters) = self.enters {
            fields.push(format!("\"enters\":{enters}"));
        }
        if let Some(sqes) = self.sqes {
            fields.push(format!("\"sqes\":{sqes}"));
        }
        if let Some(driver) = self.driver {
            fields.push(format!("\"driver\":\"{driver}\""));
        }
        if let Some(heap) = self.heap {
            fields.push(format!("\"heap\":{heap}"));
        }
        format!("{{{}}}", fields.join(","))
    }
}

/// Serves the child line protocol on stdin/stdout until stdin closes:
/// each `stats` line is answered with `report()` as one JSON line.
pub fn answer_stdin(mut report: impl FnMut() -> ChildReport) {
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
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{}", report().to_json());
        let _ = out.flush();
    }
}

/// `percore-bench serve http --server percore-http [--tls]`: starts the
/// server, prints its `listening on` line, then with `--control` answers
/// `stats` lines until stdin closes, else serves until `SIGTERM`/`SIGINT`
/// and drains.
///
/// # Errors
///
/// The server cannot start (address in use…), or stdout is closed.
pub fn serve(options: &ServeOptions) -> io::Result<()> {
    serve_stack(Stack::PercoreHttp, options)
}

/// [`serve`] on `stack`.
///
/// # Errors
///
/// As [`serve`].
pub fn serve_stack(stack: Stack, options: &ServeOptions) -> io::Result<()> {
    let name = match stack {
        Stack::PercoreHttp => "percore-http",
        Stack::Compat => "hyper over Compat",
    };
    let server = HelloServer::start_stack(
        stack,
        options.addr,
        options.cores,
        options.first_cpu,
        options.tls,
        options.placement(),
    )?;
    if !options.control {
        // Before the line below: a SIGTERM right after it drains the server.
        server.drain_on_signals()?;
    }
    let cores = options.cores;
    {
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "percore-bench serve: http ({name}{}) listening on {} ({cores} core{})",
            if options.tls { ", TLS" } else { "" },
            server.addr(),
            if cores == 1 { "" } else { "s" }
        )?;
        out.flush()?;
    }
    if options.control {
        answer_stdin(|| {
            let stats = server.stats().ok();
            ChildReport {
                enters: stats.map(|s| s.enters),
                sqes: stats.map(|s| s.sqes),
                driver: stats.map(|s| driver_name(s.driver)),
                heap: heap_in_use()
                    .zip(stats)
                    .map(|(heap, s)| heap + s.task_bytes as u64),
            }
        });
        return Ok(());
    }
    let left = server.wait_for_shutdown(options.grace)?;
    println!(
        "percore-bench serve: shut down ({left} connections cut at the end of the {:?} grace)",
        options.grace
    );
    Ok(())
}

/// `io_uring` or `epoll`, as `percore::Driver` prints.
fn driver_name(driver: percore::Driver) -> &'static str {
    match driver {
        percore::Driver::Epoll => "epoll",
        _ => "io_uring",
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn a_report_is_one_json_object() {
        let full = ChildReport {
            enters: Some(3),
            sqes: Some(4),
            driver: Some("epoll"),
            heap: Some(5),
        };
        let value: serde_json::Value = serde_json::from_str(&full.to_json()).unwrap();
        assert_eq!(value["enters"], 3);
        assert_eq!(value["sqes"], 4);
        assert_eq!(value["driver"], "epoll");
        assert_eq!(value["heap"], 5);
        assert_eq!(ChildReport::default().to_json(), "{}");
    }

    #[test]
    fn the_heap_is_counted_on_glibc() {
        // Other test threads allocate and free at the same time (a server's
        // buffers are megabytes), so one reading can be moved by theirs: a
        // 64 MiB block must show in one of a few tries.
        let mut seen = Vec::new();
        for _ in 0..5 {
            let before = heap_in_use();
            let block = std::hint::black_box(vec![0u8; 64 << 20]);
            let during = heap_in_use();
            drop(block);
            let (Some(before), Some(during)) = (before, during) else {
                return; // not glibc: nothing to count
            };
            if during >= before + (32 << 20) {
                return;
            }
            seen.push((before, during));
        }
        panic!("a 64 MiB block never showed in the heap count: {seen:?}");
    }

    #[test]
    fn both_stacks_answer_hello_over_http1() {
        for stack in [Stack::PercoreHttp, Stack::Compat] {
            let addr = "127.0.0.1:0".parse().unwrap();
            let server =
                HelloServer::start_stack(stack, addr, 1, None, false, Placement::Kernel).unwrap();
            answers_hello(&server, 1);
        }
        let addr = "127.0.0.1:0".parse().unwrap();
        for placement in [Placement::Balance, Placement::Rehome] {
            let server =
                HelloServer::start_stack(Stack::PercoreHttp, addr, 2, None, false, placement);
            let server = server.unwrap();
            for _ in 0..4 {
                answers_hello(&server, 2);
            }
        }
        let compat =
            |tls, placement| HelloServer::start_stack(Stack::Compat, addr, 1, None, tls, placement);
        assert!(compat(true, Placement::Kernel).is_err());
        assert!(compat(false, Placement::Balance).is_err());
        assert!(compat(false, Placement::Rehome).is_err());
    }

    /// `server`, of `cores` cores, answers hello world.
    fn answers_hello(server: &HelloServer, cores: usize) {
        let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut got = String::new();
        stream.read_to_string(&mut got).unwrap();
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got:?}");
        let lower = got.to_ascii_lowercase();
        assert!(lower.contains("content-type: text/plain\r\n"), "{got:?}");
        assert!(lower.contains("content-length: 13\r\n"), "{got:?}");
        assert!(got.ends_with("\r\n\r\nHello, world!"), "{got:?}");
        assert_eq!(server.stats().unwrap().core, cores);
    }
}
