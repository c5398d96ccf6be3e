//! A hyper service on percore-http: hyper's `Service` trait, routed by hand,
//! with per-core state that is not `Send` (`percore_examples::hyper_server`):
//! `GET /` says hello, `POST /echo` streams the request body back, `GET
//! /core` says which core answered and how many requests it has served.
//! One `SO_REUSEPORT` listener per core; HTTP/1.1 and HTTP/2 (h2c).
//!
//! `SIGTERM` or Ctrl-C drains it: the listeners close, every connection
//! finishes the request in hand and closes (HTTP/2: `GOAWAY`), and it exits
//! within `--grace` seconds.
//!
//! `cargo run --release -p percore-examples --example hyper -- --addr 127.0.0.1:8081 --cores 2`
//!
//! then `curl -d hello http://127.0.0.1:8081/echo`.

use std::io;

use percore::http::server::Builder;
use percore_examples::hyper_server::Routes;
use percore_examples::server::{bind, Flags};

fn main() -> io::Result<()> {
    let flags = Flags::parse(8081)?;
    bind(flags)?
        .serve_http("hyper", Builder::new(), Routes::new)
        .map(drop)
}
