//! An HTTP server ("Hello, world!" for every request) on percore-http: one
//! `SO_REUSEPORT` listener per core, HTTP/1.1 (keep-alive, pipelining,
//! chunked bodies, `HEAD`) and HTTP/2 by prior knowledge (h2c), with the
//! server's default timeouts and limits. The service is
//! `percore_examples::http::hello`.
//!
//! `SIGTERM` or Ctrl-C drains it: the listeners close, every connection
//! finishes the request in hand and closes (HTTP/2: `GOAWAY`), and it exits
//! within `--grace` seconds.
//!
//! `cargo run --release -p percore-examples --example http -- --addr 127.0.0.1:8080 --cores 2`
//!
//! then `curl http://127.0.0.1:8080/` or `curl --http2-prior-knowledge http://127.0.0.1:8080/`.

use std::io;

use hyper::service::service_fn;
use percore::http::server::Builder;
use percore_examples::http::hello;
use percore_examples::server::{bind, Flags};

fn main() -> io::Result<()> {
    let flags = Flags::parse(8080)?;
    bind(flags)?
        .serve_http("http", Builder::new(), |_core| service_fn(hello))
        .map(drop)
}
