//! percore-http's `Server` with the hello-world service of `serve http
//! --server percore-http`, on two unpinned cores (the `Server`'s runtime as
//! it comes), with `Builder::balance` on (`on`), `Builder::rehome` on
//! (`rehome`), or neither (anything else): how benches/README.md measures
//! whether placing and moving connections by load helps percore-http.
//! Prints `listening on IP:PORT`; serves until killed.
//!
//! `target/release/examples/percore_http_balance rehome`

use std::io::Write;

use percore::http::server::{Body, Server};
use percore_bench::http_serve::hello;

fn main() -> std::io::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let server = Server::builder()
        .cores(2)
        .balance(mode == "on")
        .rehome(mode == "rehome")
        .bind("127.0.0.1:0")?;
    println!("listening on {}", server.local_addr());
    std::io::stdout().flush()?;
    server.serve_hyper(hyper::service::service_fn(hello::<Body>))
}
