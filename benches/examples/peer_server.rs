//! tokio's and monoio's echo and hello-world HTTP servers, for
//! `percore-bench net --compare` (which runs this as a child process) and for
//! comparing by hand:
//!
//! `cargo run --release -p percore-bench --example peer_server -- tokio http --addr 127.0.0.1:8080 --cores 1`
//!
//! Flags as `percore-bench serve`: `--addr IP:PORT --cores N --first-cpu C
//! --control`. It prints one `listening on` line; with `--control` it answers
//! `stats` lines on stdin with `{}` (no counters) and exits when stdin closes.

#[path = "../benches/common/peer.rs"]
mod peer;

fn main() -> std::process::ExitCode {
    peer::serve_main(std::env::args().skip(1).collect())
}
