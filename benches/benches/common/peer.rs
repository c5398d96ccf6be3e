//! The peers' echo and hello-world HTTP servers, written as percore's
//! (`percore_bench::server`): one thread per core, each with its own
//! single-threaded runtime and its own `SO_REUSEPORT` listener; tokio's
//! current-thread runtime (epoll) and monoio's io_uring driver. They answer
//! byte for byte what percore's servers answer. And `tokio-mt`: the same
//! tokio server on tokio's work-stealing multi-thread runtime (one listener,
//! one worker per server thread), the shape percore's placement of
//! connections across cores is measured against.
//!
//! Shared by the `net_compare` bench and the `peer_server` example (which
//! `percore-bench net --compare` runs as a child process).

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use percore::net::socket2::{Domain, Socket, Type};
use percore_bench::child;
use percore_bench::cli::{self, Command};
use percore_bench::cpu;
use percore_bench::http::{Cutter, BAD_REQUEST, RESPONSE};
use percore_bench::server::Protocol;

/// A peer runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// tokio, one current-thread runtime per thread.
    Tokio,
    /// monoio with its io_uring driver, one runtime per thread.
    Monoio,
    /// tokio's multi-thread runtime: one listener, a worker per thread, the
    /// process on the threads' CPUs (each worker free to run on any).
    TokioMt,
}

impl Peer {
    /// `tokio` or `monoio`.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Tokio => "tokio",
            Peer::Monoio => "monoio",
            Peer::TokioMt => "tokio-mt",
        }
    }

    /// The peer called `name`.
    pub fn from_name(name: &str) -> Option<Peer> {
        match name {
            "tokio" => Some(Peer::Tokio),
            "monoio" => Some(Peer::Monoio),
            "tokio-mt" => Some(Peer::TokioMt),
            _ => None,
        }
    }
}

/// Binds `threads` `SO_REUSEPORT` listeners on `addr` (port 0 picks one) and
/// starts one server thread per listener, thread `i` pinned to the
/// `first_cpu + i`-th allowed CPU when given; returns the address at once,
/// the threads serve until the process ends.
pub fn start(
    peer: Peer,
    protocol: Protocol,
    addr: SocketAddr,
    threads: usize,
    first_cpu: Option<usize>,
) -> io::Result<SocketAddr> {
    let first = bind(addr)?;
    let addr = first.local_addr()?;
    if peer == Peer::TokioMt {
        let cpus: Vec<usize> = first_cpu
            .map(|first| {
                (0..threads)
                    .filter_map(|i| cpu::cpu_for(first, i))
                    .collect()
            })
            .unwrap_or_default();
        std::thread::Builder::new()
            .name("tokio-mt".into())
            .spawn(move || {
                if let Err(err) = tokio_server::run_multi_thread(protocol, first, threads, &cpus) {
                    eprintln!("tokio-mt server: {err}");
                }
            })?;
        return Ok(addr);
    }
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(bind(addr)?);
    }
    for (i, listener) in listeners.into_iter().enumerate() {
        let cpu = first_cpu.and_then(|first| cpu::cpu_for(first, i));
        std::thread::Builder::new()
            .name(format!("{}-{i}", peer.name()))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    let _ = cpu::pin_to(cpu);
                }
                let result = match peer {
                    Peer::Tokio | Peer::TokioMt => tokio_server::run(protocol, listener),
                    Peer::Monoio => monoio_server::run(protocol, listener),
                };
                if let Err(err) = result {
                    eprintln!("{} server thread {i}: {err}", peer.name());
                }
            })?;
    }
    Ok(addr)
}

fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// What the HTTP servers append to `out` for the requests buffered in
/// `cutter`; true when the connection should close after writing it.
fn answer(cutter: &mut Cutter, out: &mut Vec<u8>) -> bool {
    loop {
        match cutter.next_message() {
            Ok(Some(head)) => {
                out.extend_from_slice(RESPONSE);
                if head.close {
                    return true;
                }
            }
            Ok(None) => return false,
            Err(_) => {
                out.extend_from_slice(BAD_REQUEST);
                return true;
            }
        }
    }
}

/// The `peer_server` command: `tokio|monoio echo|http` and the flags of
/// `percore-bench serve`; `args` excludes the program name.
pub fn serve_main(mut args: Vec<String>) -> ExitCode {
    let Some(peer) = args.first().and_then(|name| Peer::from_name(name)) else {
        eprintln!(
            "peer_server: expected `tokio`, `tokio-mt` or `monoio` first, then as `percore-bench serve`"
        );
        return ExitCode::from(2);
    };
    // The rest parses exactly as `percore-bench serve`.
    args[0] = "serve".into();
    let options = match cli::parse(args) {
        Ok(Command::Serve(options)) => options,
        Ok(_) => {
            eprintln!("peer_server: expected `tokio|monoio echo|http [--addr ..] [--cores N]`");
            return ExitCode::from(2);
        }
        Err(err) => {
            eprintln!("peer_server: {err}");
            return ExitCode::from(2);
        }
    };
    let addr = match start(
        peer,
        options.protocol,
        options.addr,
        options.cores,
        options.first_cpu,
    ) {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("peer_server: {} on {}: {err}", peer.name(), options.addr);
            return ExitCode::from(2);
        }
    };
    println!(
        "peer_server: {} {} listening on {addr} ({} threads)",
        peer.name(),
        options.protocol,
        options.cores
    );
    if options.control {
        child::answer_stdin(|| None);
        return ExitCode::SUCCESS;
    }
    loop {
        std::thread::park();
    }
}

mod tokio_server {
    use std::io;

    use percore_bench::http::Cutter;
    use percore_bench::server::Protocol;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    pub fn run(protocol: Protocol, listener: std::net::TcpListener) -> io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        serve(&runtime, protocol, listener)
    }

    /// The same server on a multi-thread runtime of `workers` workers; the
    /// calling thread (and every thread the runtime starts) is first pinned
    /// to the set `cpus`, if any.
    pub fn run_multi_thread(
        protocol: Protocol,
        listener: std::net::TcpListener,
        workers: usize,
        cpus: &[usize],
    ) -> io::Result<()> {
        if !cpus.is_empty() {
            pin_to_set(cpus)?;
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .enable_io()
            .build()?;
        serve(&runtime, protocol, listener)
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
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn serve(
        runtime: &tokio::runtime::Runtime,
        protocol: Protocol,
        listener: std::net::TcpListener,
    ) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener)?;
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                match protocol {
                    Protocol::Echo => drop(tokio::spawn(echo(stream))),
                    Protocol::Http => drop(tokio::spawn(http(stream))),
                }
            }
        })
    }

    async fn echo(mut stream: TcpStream) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if stream.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    async fn http(mut stream: TcpStream) {
        let mut cutter = Cutter::new(false);
        let mut out = Vec::with_capacity(512);
        loop {
            let close = super::answer(&mut cutter, &mut out);
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
            }
            if close {
                let _ = stream.shutdown().await;
                return;
            }
            cutter.prepare_read();
            match stream.read_buf(&mut cutter.buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

mod monoio_server {
    use std::io;

    use monoio::buf::IoBufMut;
    use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
    use monoio::net::{TcpListener, TcpStream};
    use percore_bench::http::Cutter;
    use percore_bench::server::Protocol;

    pub fn run(protocol: Protocol, listener: std::net::TcpListener) -> io::Result<()> {
        let mut runtime = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()?;
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener)?;
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                match protocol {
                    Protocol::Echo => drop(monoio::spawn(echo(stream))),
                    Protocol::Http => drop(monoio::spawn(http(stream))),
                }
            }
        })
    }

    async fn echo(mut stream: TcpStream) {
        let mut buf = Vec::with_capacity(16 * 1024);
        loop {
            buf.clear();
            let (res, back) = stream.read(buf).await;
            match res {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let (res, back) = stream.write_all(back).await;
            if res.is_err() {
                return;
            }
            buf = back;
        }
    }

    async fn http(mut stream: TcpStream) {
        let mut cutter = Cutter::new(false);
        let mut out = Vec::with_capacity(512);
        loop {
            let close = super::answer(&mut cutter, &mut out);
            if !out.is_empty() {
                let (res, back) = stream.write_all(out).await;
                if res.is_err() {
                    return;
                }
                out = back;
                out.clear();
            }
            if close {
                return;
            }
            cutter.prepare_read();
            let buf = std::mem::take(&mut cutter.buf);
            let len = buf.len();
            let (res, back) = stream.read(buf.slice_mut(len..)).await;
            cutter.buf = back.into_inner();
            match res {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}
