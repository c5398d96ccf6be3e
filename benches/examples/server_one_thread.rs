//! percore's benchmark echo or HTTP server (as `percore-bench serve` runs it:
//! a provided-buffer ring, one multishot receive per connection), or
//! percore-http's hello world (`percore-http`: as `percore-bench serve http
//! --server percore-http` serves it), on the main thread alone, for
//! `valgrind --tool=callgrind`: a server with no other thread never waits on
//! a wake from one, which valgrind cannot follow. It serves for SECONDS after
//! its first connection, then exits.
//!
//! ```sh
//! cargo build --release -p percore-bench --bin percore-bench --example server_one_thread
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/s.out \
//!     target/release/examples/server_one_thread echo 127.0.0.1:7000 6 &
//! target/release/percore-bench net echo --target 127.0.0.1:7000 --size 65536 -d 5 --json
//! ```
//!
//! Instructions per request: valgrind's "Collected" total over the client's
//! request count (benches/scripts/kernel_features_callgrind.sh does both).
//! At its end it prints its own counters (enters, SQEs, CQEs) and CPU time,
//! which benches/scripts/kernel_features.sh reads with `SERVER=one_thread`.

use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use percore::net::{BufRing, TcpListener, TcpStream};
use percore_bench::http::{Cutter, BAD_REQUEST, RESPONSE};

/// As `percore-bench serve`: 16 MiB of receive buffers per core
/// (`RING=COUNT/BYTES` in the environment sets others).
const RING_BUFFERS: u16 = 1024;
const RING_BUFFER_SIZE: u32 = 16 * 1024;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(protocol), Some(addr), Some(seconds)) = (args.get(1), args.get(2), args.get(3))
    else {
        eprintln!("usage: server_one_thread echo|http|percore-http IP:PORT SECONDS");
        std::process::exit(2);
    };
    let http = match protocol.as_str() {
        "echo" => false,
        "http" => true,
        "percore-http" => return percore_http(addr, seconds),
        other => {
            eprintln!("server_one_thread: {other:?} is not echo, http or percore-http");
            std::process::exit(2);
        }
    };
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidInput, err))?;
    let seconds: f64 = seconds
        .parse()
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidInput, err))?;
    let (count, size) = match std::env::var("RING") {
        Ok(ring) => {
            let parsed = ring
                .split_once('/')
                .and_then(|(count, size)| Some((count.parse().ok()?, size.parse().ok()?)));
            parsed.ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("RING={ring:?}: give COUNT/BYTES, e.g. 256/65536"),
                )
            })?
        }
        Err(_) => (RING_BUFFERS, RING_BUFFER_SIZE),
    };
    percore::run(async move {
        let ring = BufRing::new(count, size)?;
        let listener = TcpListener::bind(addr)?;
        println!("server_one_thread: listening on {}", listener.local_addr()?);
        let mut incoming = listener.incoming();
        let mut first = true;
        // Set at the first connection (below).
        let mut deadline: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> =
            Box::pin(std::future::pending());
        loop {
            let next = incoming.next();
            match select(pin!(next), deadline.as_mut()).await {
                Either::Left((Some(Ok(stream)), _)) => {
                    let _ = stream.set_nodelay(true);
                    if first {
                        first = false;
                        deadline = Box::pin(percore::time::sleep(Duration::from_secs_f64(seconds)));
                    }
                    let ring = ring.clone();
                    drop(if http {
                        percore::spawn(serve_http(stream, ring))
                    } else {
                        percore::spawn(echo(stream, ring))
                    });
                }
                Either::Left((Some(Err(_)), _)) => {}
                Either::Left((None, _)) | Either::Right(_) => break,
            }
        }
        // For benches/scripts/kernel_features.sh: this core's own counters.
        let stats = percore::stats();
        println!(
            "server_one_thread: stats enters {} sqes {} cqes {} cpu_us {}",
            stats.enters,
            stats.sqes,
            stats.cqes,
            percore_bench::cpu::thread_cpu_time().as_micros()
        );
        std::io::Result::Ok(())
    })?
}

/// percore-http's hello world, as `percore-bench serve http --server
/// percore-http` serves it on each core, on this thread for SECONDS after
/// the first request, then its counters as for the other servers.
fn percore_http(addr: &str, seconds: &str) -> std::io::Result<()> {
    use percore::http::server::{Body, Builder};
    use percore::net::graceful::Connections;
    use percore::shutdown::Shutdown;

    let invalid = |err: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, err);
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|err| invalid(format!("{addr}: {err}")))?;
    let seconds: f64 = seconds
        .parse()
        .map_err(|err| invalid(format!("{seconds}: {err}")))?;
    percore::run(async move {
        let listener = TcpListener::bind(addr)?;
        println!("server_one_thread: listening on {}", listener.local_addr()?);
        let shutdown = Shutdown::new();
        let connections = Connections::new(&shutdown);
        let builder = Builder::new().signals(false);
        // The first request starts the clock.
        let started = std::rc::Rc::new(std::cell::Cell::new(false));
        let service = {
            let started = std::rc::Rc::clone(&started);
            hyper::service::service_fn(move |request: hyper::Request<Body>| {
                started.set(true);
                percore_bench::http_serve::hello(request)
            })
        };
        let watch = async move {
            while !started.get() {
                percore::time::sleep(Duration::from_micros(200)).await;
            }
            percore::time::sleep(Duration::from_secs_f64(seconds)).await;
        };
        let served = builder.serve_listener(listener, service, connections);
        let _ = select(pin!(served), pin!(watch)).await;
        let stats = percore::stats();
        println!(
            "server_one_thread: stats enters {} sqes {} cqes {} cpu_us {}",
            stats.enters,
            stats.sqes,
            stats.cqes,
            percore_bench::cpu::thread_cpu_time().as_micros()
        );
        std::io::Result::Ok(())
    })?
}

async fn echo(stream: TcpStream, ring: BufRing) {
    let mut incoming = stream.recv_stream(&ring);
    // GATHER=1: what a send bundle would do, with a plain sendmsg: every
    // buffer received so far (the rest of a receive bundle) goes out in one
    // SQE.
    let gather = std::env::var_os("GATHER").is_some();
    while let Some(Ok(buf)) = incoming.next().await {
        if gather {
            let mut bufs = vec![buf];
            while let Some(Some(Ok(more))) = futures_util::FutureExt::now_or_never(incoming.next())
            {
                bufs.push(more);
            }
            if bufs.len() > 1 {
                let total: usize = bufs.iter().map(|b| b.len()).sum();
                let (res, bufs) = stream.writev(bufs).await;
                let Ok(mut sent) = res else { return };
                if sent < total {
                    for buf in bufs {
                        if sent >= buf.len() {
                            sent -= buf.len();
                            continue;
                        }
                        let skip = sent;
                        sent = 0;
                        let (res, _) = stream.write_all(buf[skip..].to_vec()).await;
                        if res.is_err() {
                            return;
                        }
                    }
                }
                continue;
            }
            let Some(buf) = bufs.pop() else { return };
            let (res, _buf) = stream.write_all(buf).await;
            if res.is_err() {
                return;
            }
            continue;
        }
        let (res, _buf) = stream.write_all(buf).await;
        if res.is_err() {
            return;
        }
    }
}

async fn serve_http(stream: TcpStream, ring: BufRing) {
    let mut incoming = stream.recv_stream(&ring);
    let mut cutter = Cutter::new(false);
    let mut out = Vec::with_capacity(RESPONSE.len() * 4);
    loop {
        let mut close = false;
        loop {
            match cutter.next_message() {
                Ok(Some(head)) => {
                    out.extend_from_slice(RESPONSE);
                    if head.close {
                        close = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    out.extend_from_slice(BAD_REQUEST);
                    close = true;
                    break;
                }
            }
        }
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
        let Some(Ok(buf)) = incoming.next().await else {
            return;
        };
        cutter.prepare_read();
        cutter.buf.extend_from_slice(&buf);
    }
}
