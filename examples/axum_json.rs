//! A JSON API on axum — a to-do list (`percore_examples::axum_json`) —
//! served by percore-http's `Server` on every core: the `Router` runs as it
//! would on tokio, over HTTP/1.1 and HTTP/2 (h2c).
//!
//! `SIGTERM` or Ctrl-C drains it: the listeners close, every connection
//! finishes the request in hand and closes, and it exits within `--grace`
//! seconds.
//!
//! `cargo run --release -p percore-examples --example axum_json -- --addr 127.0.0.1:8082 --cores 2`
//!
//! then:
//!
//! ```text
//! curl -d '{"title":"buy milk"}' -H 'content-type: application/json' http://127.0.0.1:8082/todos
//! curl http://127.0.0.1:8082/todos
//! curl -X PATCH -d '{"done":true}' -H 'content-type: application/json' http://127.0.0.1:8082/todos/1
//! curl -X DELETE http://127.0.0.1:8082/todos/1
//! ```

use std::io;
use std::sync::Once;

use percore::http::server::{Server, TowerToHyperService};
use percore_examples::axum_json::app;
use percore_examples::server::Flags;

fn main() -> io::Result<()> {
    let flags = Flags::parse(8082)?;
    let server = Server::builder()
        .cores(flags.cores)
        .grace(flags.grace)
        .bind(flags.addr)?;
    let addr = server.local_addr();
    // `Server::bind(addr)?.serve(app())` is all it takes; `serve_with`
    // (which builds each core's service) is used here only to print the
    // line below once the server listens for SIGTERM — scripts that read it
    // may stop the server at once.
    let app = app();
    let announced = Once::new();
    server.serve_with(move || {
        announced.call_once(|| {
            println!("axum_json: listening on {addr} ({} cores)", flags.cores);
        });
        TowerToHyperService::new(app.clone())
    })?;
    println!("axum_json: shut down");
    Ok(())
}
