//! Runnable programs built on percore: see the files beside this crate (`cargo run -p percore-examples --example hello`).
//!
//! This library holds what the network examples share: command-line flags,
//! starting one `SO_REUSEPORT` listener per core, and the incremental HTTP/1.1
//! request parser of the `http` example, the `hyper` example's server, the `chat` room,
//! the `handoff` example's zero-downtime restart and the `metrics` example's
//! Prometheus endpoint.

#![warn(missing_docs, missing_debug_implementations)]

pub mod chat;
pub mod handoff;
pub mod http;
pub mod hyper_server;
pub mod metrics;
pub mod server;
