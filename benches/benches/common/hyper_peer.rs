//! The HTTP comparison's peer: the same hello-world service
//! ([`percore_bench::http_serve::hello`]) on hyper 1.x over tokio, as a
//! tokio user would serve it — hyper-util's `auto` connection (HTTP/1.1
//! and h2c told apart by the preface) with tokio's executor and timer, or
//! after a tokio-rustls handshake hyper's HTTP/1.1 or HTTP/2 connection as
//! ALPN chose. Two shapes:
//!
//! - [`Flavor::CurrentThread`]: one thread per core, each with a
//!   current-thread runtime and its own `SO_REUSEPORT` listener, thread
//!   `i` pinned to the `first_cpu + i`-th allowed CPU (percore's shape);
//! - [`Flavor::MultiThread`]: one listener, tokio's multi-thread runtime
//!   with a worker per core, all of the process on the server's CPUs.
//!
//! Both set tokio's timer on hyper, so hyper's 30 s header read timeout
//! applies as percore-http's does (`hyper-tokio-ct`, `hyper-tokio-mt`);
//! `hyper-tokio-ct-bare` leaves it out, as hyper's own examples do (then
//! hyper arms no timer per request: a cheaper server, with no timeout).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use percore::net::socket2::{Domain, Socket, Type};
use percore_bench::cpu;
use percore_bench::http_serve::{self, SelfSigned};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// How the peer runs tokio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// A current-thread runtime per core (`hyper-tokio-ct`).
    CurrentThread,
    /// The multi-thread runtime (`hyper-tokio-mt`).
    MultiThread,
}

/// The peer a server name asks for: its flavor and whether hyper gets
/// tokio's timer (`hyper-tokio-ct`, `hyper-tokio-mt`, `hyper-tokio-ct-bare`).
pub fn from_name(name: &str) -> Option<(Flavor, bool)> {
    match name {
        "hyper-tokio-ct" => Some((Flavor::CurrentThread, true)),
        "hyper-tokio-ct-bare" => Some((Flavor::CurrentThread, false)),
        "hyper-tokio-mt" => Some((Flavor::MultiThread, true)),
        _ => None,
    }
}

/// rustls' server config for `cert`: the `ring` provider, TLS 1.3 and 1.2,
/// `h2` then `http/1.1` by ALPN — what percore-http's `TlsAcceptor` builds.
fn tls_config(cert: &SelfSigned) -> io::Result<Arc<ServerConfig>> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone()));
    let chain = vec![CertificateDer::from(cert.cert_der.clone())];
    // The provider percore-http's acceptor uses (deprecated in rustls 0.23.48
    // for lacking post-quantum key exchange; both sides alike).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Starts the peer on `addr` (port 0 picks one) with `cores` threads from
/// `first_cpu`, HTTPS with a fresh self-signed certificate if `tls`, hyper
/// with tokio's timer if `timer`;
/// returns the address at once, the threads serve until the process ends.
pub fn start(
    flavor: Flavor,
    timer: bool,
    addr: SocketAddr,
    cores: usize,
    first_cpu: Option<usize>,
    tls: bool,
) -> io::Result<SocketAddr> {
    let cores = cores.max(1);
    let acceptor = if tls {
        Some(TlsAcceptor::from(tls_config(&http_serve::self_signed()?)?))
    } else {
        None
    };
    let first = bind(addr)?;
    let addr = first.local_addr()?;
    match flavor {
        Flavor::CurrentThread => {
            let mut listeners = vec![first];
            for _ in 1..cores {
                listeners.push(bind(addr)?);
            }
            for (i, listener) in listeners.into_iter().enumerate() {
                let cpu = first_cpu.and_then(|first| cpu::cpu_for(first, i));
                let acceptor = acceptor.clone();
                std::thread::Builder::new()
                    .name(format!("hyper-tokio-{i}"))
                    .spawn(move || {
                        if let Some(cpu) = cpu {
                            let _ = cpu::pin_to(cpu);
                        }
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build();
                        let result = runtime.and_then(|runtime| {
                            runtime.block_on(accept_loop(listener, acceptor, timer))
                        });
                        if let Err(err) = result {
                            eprintln!("hyper-tokio-ct thread {i}: {err}");
                        }
                    })?;
            }
        }
        Flavor::MultiThread => {
            // Every thread the runtime starts inherits this thread's CPUs.
            if let Some(first) = first_cpu {
                let cpus: Vec<usize> = (0..cores).filter_map(|i| cpu::cpu_for(first, i)).collect();
                pin_to_set(&cpus)?;
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(cores)
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name("hyper-tokio-mt".into())
                .spawn(move || {
                    if let Err(err) = runtime.block_on(accept_loop(first, acceptor, timer)) {
                        eprintln!("hyper-tokio-mt: {err}");
                    }
                })?;
        }
    }
    Ok(addr)
}

/// Pins the calling thread (and the threads it starts after) to `cpus`.
fn pin_to_set(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus.iter().filter(|&&cpu| cpu < libc::CPU_SETSIZE as usize) {
        // SAFETY: `cpu` < CPU_SETSIZE (filtered above), so CPU_SET writes in bounds.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("pinning to CPUs {cpus:?}: {err}"),
        ));
    }
    Ok(())
}

async fn accept_loop(
    listener: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
    timer: bool,
) -> io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        drop(tokio::spawn(async move {
            match tls {
                Some(acceptor) => serve_tls(acceptor, stream, timer).await,
                None => serve_plain(stream, timer).await,
            }
        }));
    }
}

/// HTTP/1.1 or h2c (by the preface), as hyper-util serves a tokio stream.
async fn serve_plain(stream: TcpStream, timer: bool) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if timer {
        builder.http1().timer(TokioTimer::new());
        builder.http2().timer(TokioTimer::new());
    }
    let service = hyper::service::service_fn(http_serve::hello::<hyper::body::Incoming>);
    // Errors (a reset peer…) end this connection only.
    let _ = builder
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The TLS handshake, then HTTP/2 if ALPN chose `h2`, else HTTP/1.1.
async fn serve_tls(acceptor: TlsAcceptor, stream: TcpStream, timer: bool) {
    let Ok(stream) = acceptor.accept(stream).await else {
        return;
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(stream);
    let service = hyper::service::service_fn(http_serve::hello::<hyper::body::Incoming>);
    if h2 {
        let mut builder = http2::Builder::new(TokioExecutor::new());
        if timer {
            builder.timer(TokioTimer::new());
        }
        let _ = builder.serve_connection(io, service).await;
    } else {
        let mut builder = http1::Builder::new();
        if timer {
            builder.timer(TokioTimer::new());
        }
        let _ = builder.serve_connection(io, service).await;
    }
}
