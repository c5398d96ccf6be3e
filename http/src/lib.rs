//! percore-http: an HTTP/1.1 and HTTP/2 server and client on percore, built on
//! hyper 1.x — aiohttp's two halves for a thread-per-core runtime.
//!
//! - [`server`]: serves any hyper or `tower::Service` (an axum `Router` runs
//!   unchanged) on every core, HTTP/1.1 and HTTP/2, with limits, timeouts and
//!   graceful shutdown;
//! - [`client`]: a per-core connection pool with keep-alive, HTTP/1.1 and
//!   HTTP/2, names, timeouts and redirects;
//! - [`rt`]: hyper's [`Executor`](hyper::rt::Executor) and
//!   [`Timer`](hyper::rt::Timer) on percore, for code that drives hyper itself;
//! - [`io`]: a percore stream as hyper's `Read`/`Write`;
//! - `tls` (feature `tls`): TLS on rustls for both, with HTTP/2 chosen by ALPN.

#![warn(missing_docs, missing_debug_implementations)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod client;
pub mod io;
pub mod rt;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;
