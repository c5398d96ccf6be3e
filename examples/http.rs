//! A plain HTTP/1.1 keep-alive server ("Hello, world!" for every path), one
//! `SO_REUSEPORT` listener per core; requests are parsed incrementally with
//! bounded buffers (`percore_examples::http`).
//!
//! `SIGTERM` or Ctrl-C drains it: the listeners close, every request received
//! is answered (with `Connection: close`), idle connections close, and it
//! exits within `--grace` seconds.
//!
//! `cargo run --release -p percore-examples --example http -- --addr 127.0.0.1:8080 --cores 2`

use std::io;

use futures_util::StreamExt;
use percore::net::graceful::Connections;
use percore::net::TcpListener;
use percore_examples::http;
use percore_examples::server::{serve_per_core, Flags};

async fn serve(listener: TcpListener, connections: Connections) {
    let mut incoming = listener.incoming();
    while let Some(next) = incoming.next().await {
        // Accept errors (EMFILE…) are retried by `incoming` after a pause.
        if let Ok(stream) = next {
            let _ = stream.set_nodelay(true);
            let stream = connections.track(stream);
            let connections = connections.clone();
            drop(percore::spawn(async move {
                http::serve(&stream, || connections.is_finishing()).await
            }));
        }
    }
}

fn main() -> io::Result<()> {
    let flags = Flags::parse(8080)?;
    serve_per_core("http", flags, |_core, listener, connections| {
        serve(listener, connections)
    })
}
