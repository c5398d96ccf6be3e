//! The HTTP server on hyper 1.x: hyper's HTTP/1.1 connection state machine over
//! percore sockets (`Compat`, the `hyper` feature of percore-net), one
//! `SO_REUSEPORT` listener per core. The server is `percore_examples::hyper_server`.
//!
//! `SIGTERM` or Ctrl-C drains it (hyper's graceful shutdown on every
//! connection), and it exits within `--grace` seconds.
//!
//! `cargo run --release -p percore-examples --example hyper -- --addr 127.0.0.1:8081 --cores 2`

use std::io;

use percore_examples::hyper_server;
use percore_examples::server::{serve_per_core, Flags};

fn main() -> io::Result<()> {
    let flags = Flags::parse(8081)?;
    serve_per_core("hyper", flags, |_core, listener, connections| {
        hyper_server::serve(listener, connections)
    })
}
