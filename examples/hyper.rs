//! The HTTP server on hyper 1.x: hyper's HTTP/1.1 connection state machine over
//! percore sockets (`Compat`, the `hyper` feature of percore-net), one
//! `SO_REUSEPORT` listener per core.
//!
//! `cargo run --release -p percore-examples --example hyper -- --addr 127.0.0.1:8081 --cores 2`

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use percore::net::TcpListener;
use percore_examples::server::{serve_per_core, Flags};

async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, world!",
    ))))
}

async fn serve(listener: TcpListener) {
    let mut incoming = listener.incoming();
    while let Some(next) = incoming.next().await {
        let Ok(stream) = next else { continue };
        let _ = stream.set_nodelay(true);
        drop(percore::spawn(async move {
            let service = hyper::service::service_fn(hello);
            // Errors (a reset peer, a malformed request hyper answered) end
            // this connection only.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(stream.into_compat(), service)
                .await;
        }));
    }
}

fn main() -> io::Result<()> {
    let flags = Flags::parse(8081)?;
    serve_per_core("hyper", flags, |_core, listener| serve(listener))
}
