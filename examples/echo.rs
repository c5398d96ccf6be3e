//! An echo server: one `SO_REUSEPORT` listener per core, each accepting with
//! multishot accept and echoing every connection in its own task.
//!
//! `cargo run --release -p percore-examples --example echo -- --addr 127.0.0.1:7000 --cores 2`

use std::io;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use percore::net::{TcpListener, TcpStream};
use percore_examples::server::{serve_per_core, Flags};

/// Echoes until end of stream (or an error, which ends this connection only).
async fn echo(stream: TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        buf.clear();
        let (res, back) = stream.read(buf).await;
        if res? == 0 {
            return Ok(());
        }
        let (res, back) = stream.write_all(back).await;
        res?;
        buf = back;
    }
}

async fn serve(listener: TcpListener) {
    let mut incoming = listener.incoming();
    let mut last_report: Option<Instant> = None;
    while let Some(next) = incoming.next().await {
        match next {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                drop(percore::spawn(echo(stream)));
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
    serve_per_core("echo", flags, |_core, listener| serve(listener))
}
