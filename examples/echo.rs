//! An echo server: one `SO_REUSEPORT` listener per core, each accepting with
//! multishot accept and echoing every connection in its own task. Connections
//! receive through the core's provided-buffer ring (one multishot `recv` each),
//! so an idle connection holds no buffer and an echo costs one SQE: the send of
//! the very buffer the kernel received into.
//!
//! `SIGTERM` or Ctrl-C drains it: the listeners close, every byte received is
//! echoed, connections close, and it exits within `--grace` seconds.
//!
//! `cargo run --release -p percore-examples --example echo -- --addr 127.0.0.1:7000 --cores 2`

use std::io;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use percore::net::graceful::{Connections, Tracked};
use percore::net::{BufRing, TcpListener};
use percore_examples::server::{serve_per_core, Flags};

/// Echoes until end of stream (or an error, which ends this connection only).
/// At a shutdown the stream's reading side is shut: what was received is
/// still echoed, then the stream ends and the connection closes with a FIN.
async fn echo(stream: Tracked, ring: BufRing) -> io::Result<()> {
    let mut incoming = stream.recv_stream(&ring);
    while let Some(buf) = incoming.next().await {
        // The ring buffer goes out as it is, and back to the ring once sent.
        let (res, _buf) = stream.write_all(buf?).await;
        res?;
    }
    Ok(())
}

async fn serve(listener: TcpListener, connections: Connections) {
    // 1,024 buffers of 16 KiB shared by all of this core's connections.
    let ring = match BufRing::new(1024, 16 * 1024) {
        Ok(ring) => ring,
        Err(err) => {
            return eprintln!(
                "echo: buffer ring on core {}: {err}",
                percore::current_core()
            )
        }
    };
    let mut incoming = listener.incoming();
    let mut last_report: Option<Instant> = None;
    while let Some(next) = incoming.next().await {
        match next {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                drop(percore::spawn(echo(
                    connections.track(stream),
                    ring.clone(),
                )));
            }
            // `incoming` already backs off on EMFILE/ENFILE; report at most once a second.
            Err(err) => {
                if last_report.is_none_or(|at| at.elapsed() > Duration::from_secs(1)) {
                    eprintln!("echo: accept on core {}: {err}", percore::current_core());
                    last_report = Some(Instant::now());
                }
            }
        }
    }
}

fn main() -> io::Result<()> {
    let flags = Flags::parse(7000)?;
    serve_per_core("echo", flags, |_core, listener, connections| {
        serve(listener, connections)
    })
}
