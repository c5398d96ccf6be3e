//! tokio's and monoio's echo and hello-world HTTP servers, and the tokio
//! client, for `percore-bench net --compare` and `--client tokio` (which run
//! this as a child process) and for comparing by hand:
//!
//! `cargo run --release -p percore-bench --example peer_server -- tokio http --addr 127.0.0.1:8080 --cores 1`
//!
//! Flags as `percore-bench serve`: `--addr IP:PORT --cores N --first-cpu C
//! --control`. It prints one `listening on` line; with `--control` it answers
//! `stats` lines on stdin with `{}` (no counters) and exits when stdin closes.
//!
//! `peer_server client echo|http --target IP:PORT [--connections N] [--size B]
//! [--duration S]` is the closed-loop tokio client instead
//! (`benches/benches/common/outside_client.rs`): it prints one JSON line of what it
//! measured.

#[path = "../benches/common/peer.rs"]
mod peer;

#[path = "../benches/common/outside_client.rs"]
mod outside_client;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("client") {
        return outside_client::client_main(args[1..].to_vec());
    }
    peer::serve_main(args)
}
