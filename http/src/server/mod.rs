//! The HTTP server: HTTP/1.1 and HTTP/2 on every core, any hyper or
//! `tower::Service` (an axum `Router` runs unchanged).
//!
//! ```no_run
//! use axum::routing::get;
//! use percore_http::server::Server;
//!
//! let app = axum::Router::new().route("/", get(|| async { "Hello, world!" }));
//! Server::bind("127.0.0.1:8080")?.serve(app)?;
//! # std::io::Result::Ok(())
//! ```
//!
//! How it serves:
//!
//! - **Per core.** [`Server`] binds one `SO_REUSEPORT` listener per core (the
//!   kernel spreads connections across them) and runs a percore runtime;
//!   each core accepts, serves and answers its own connections, with its
//!   own clone of the service. Connections read through the core's buffer
//!   ring and write through one send per response ([`Io`]).
//! - **Protocols.** HTTP/1.0 and 1.1 (keep-alive, pipelining, chunked bodies
//!   both ways, `Expect: 100-continue`, `HEAD`) and HTTP/2, told apart by
//!   the HTTP/2 preface (h2c with prior knowledge) or by the [`Accept`]
//!   step (ALPN after TLS). hyper does the HTTP; the server adds the rest.
//! - **Timeouts** ([`Builder`]): the request head (from its first byte),
//!   the idle keep-alive connection, and the request body (while the
//!   service waits for it).
//! - **Idle connections hold little.** An idle connection holds no buffer
//!   of the I/O path, and an HTTP/1 one idle for
//!   [`retire_idle_after`](Builder::retire_idle_after) (1 s) gives back
//!   hyper's connection — its state and its 8 KiB read and write buffers —
//!   until its next request's first bytes arrive: about 0.9 KB of heap per
//!   idle HTTP/1.1 connection in all (`tests/server_memory.rs`). An idle
//!   HTTP/2 connection keeps h2's state and buffers (about 36 KB).
//! - **Limits**: head size and header count (431), body size (413 for a
//!   declared length, an error of the streamed [`Body`] past it).
//! - **Graceful shutdown** (a [`Shutdown`](percore_runtime::shutdown::Shutdown)):
//!   listeners close at once, each connection finishes its request in hand
//!   (hyper's graceful shutdown: HTTP/1 closes after the response, HTTP/2
//!   sends `GOAWAY`), the server waits up to the grace, then cuts the rest.
//!
//! On a runtime of your own, [`Builder::serve_listener`] serves a listener
//! on the calling core, [`Builder::serve_balanced`] the connections a
//! [`Balance`](percore_net::balance::Balance) shared by the cores places on
//! it, and [`Builder::serve_connection`] one connection.

mod body;
mod builder;
mod conn;
mod run;
mod service;
#[cfg(test)]
mod tests;
#[cfg(feature = "tls")]
mod tls;

use std::future::Future;
use std::io;

pub use body::{Body, BodyTimeout, BoxError};
pub use builder::Builder;
pub use conn::Protocol;
/// A `tower::Service` as a hyper one, for [`Builder::serve_listener`] and
/// [`Builder::serve_connection`] (hyper-util's adapter).
pub use hyper_util::service::TowerToHyperService;
pub use run::Server;

use crate::io::Io;

/// A step between accepting a connection and speaking HTTP on it — a TLS
/// handshake, say — run on the connection's core, within the header read
/// timeout.
pub trait Accept: Clone + Send + 'static {
    /// What HTTP is spoken over.
    type Conn: hyper::rt::Read + hyper::rt::Write + Unpin + 'static;

    /// Turns an accepted connection into what HTTP is spoken over; an error
    /// closes the connection.
    fn accept(&self, io: Io) -> impl Future<Output = io::Result<Accepted<Self::Conn>>>;
}

/// A connection through its [`Accept`] step.
#[derive(Debug)]
pub struct Accepted<C> {
    /// What HTTP is spoken over.
    pub conn: C,
    /// The protocol, if the step chose one (ALPN); `None` looks for the
    /// HTTP/2 preface.
    pub protocol: Option<Protocol>,
}

/// The plain [`Accept`] step: HTTP over the connection as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Accept for Plain {
    type Conn = Io;

    fn accept(&self, io: Io) -> impl Future<Output = io::Result<Accepted<Io>>> {
        std::future::ready(Ok(Accepted {
            conn: io,
            protocol: None,
        }))
    }
}
