//! HTTPS: a [`TlsAcceptor`] is an [`Accept`] step, so
//! `Server::builder().acceptor(tls)` serves HTTPS, HTTP/2 or HTTP/1.1 as
//! the client picks by ALPN.

use std::future::Future;
use std::io;

use super::{Accept, Accepted, Protocol};
use crate::io::Io;
use crate::tls::{TlsAcceptor, TlsStream};

impl Accept for TlsAcceptor {
    type Conn = TlsStream<Io>;

    /// The TLS handshake (within the server's header read timeout); the
    /// protocol is the one ALPN chose, or — a client that offered none —
    /// found by looking for the HTTP/2 preface.
    fn accept(&self, io: Io) -> impl Future<Output = io::Result<Accepted<TlsStream<Io>>>> {
        let acceptor = self.clone();
        async move {
            let peer = io.get_ref().peer_addr().ok();
            let conn = TlsAcceptor::accept(&acceptor, io)
                .await
                .map_err(|err| match peer {
                    Some(peer) => io::Error::new(err.kind(), format!("client {peer}: {err}")),
                    None => err,
                })?;
            let protocol = match conn.alpn_protocol() {
                Some(b"h2") => Some(Protocol::Http2),
                Some(b"http/1.1" | b"http/1.0") => Some(Protocol::Http1),
                _ => None,
            };
            Ok(Accepted { conn, protocol })
        }
    }
}
