//! Runnable programs built on percore: see the files beside this crate (`cargo run -p percore-examples --example hello`).
//!
//! This library holds what the examples share: command-line flags, starting
//! one `SO_REUSEPORT` listener per core and serving HTTP on them with
//! percore-http, the services of the `http`, `hyper` and `axum_json`
//! examples, the `fetch` client, the `chat` room, the `handoff` example's
//! zero-downtime restart and the `metrics` example's Prometheus endpoint.

#![warn(missing_docs, missing_debug_implementations)]

pub mod axum_json;
pub mod chat;
pub mod fetch;
pub mod handoff;
pub mod http;
pub mod hyper_server;
pub mod metrics;
pub mod server;
