//! TLS on rustls for the server and the client, with HTTP/2 chosen by ALPN.
//!
//! - [`TlsAcceptor`] (server side) turns an accepted stream into a
//!   [`TlsStream`]; it is built from PEM files (certificate chain and private
//!   key) or from a ready rustls [`ServerConfig`](rustls::ServerConfig).
//! - [`TlsConnector`] (client side) does the same for a connected stream; it
//!   trusts the CAs of a PEM file, the system's CA store, or a ready rustls
//!   [`ClientConfig`](rustls::ClientConfig).
//! - [`TlsStream`] is hyper's [`Read`](hyper::rt::Read) and
//!   [`Write`](hyper::rt::Write) over any stream that is itself hyper's
//!   `Read + Write` (percore-http's [`Io`](crate::io::Io), or another
//!   `TlsStream`), and says which protocol ALPN chose
//!   ([`TlsStream::is_h2`]).
//!
//! Both sides offer `h2` and `http/1.1` by ALPN unless told otherwise
//! (`with_alpn`). Cryptography is rustls' `ring` provider.
//!
//! # Examples
//!
//! ```no_run
//! use percore_http::io::Io;
//! use percore_http::tls::{TlsAcceptor, TlsConnector};
//! use percore_net::{TcpListener, TcpStream};
//!
//! # async fn demo() -> std::io::Result<()> {
//! // Server: the chain and key as PEM files, read once at start.
//! let acceptor = TlsAcceptor::from_pem_files("cert.pem", "key.pem")?;
//! let listener = TcpListener::bind("127.0.0.1:8443")?;
//! let (stream, _) = listener.accept().await?;
//! let tls = acceptor.accept(Io::new(stream)).await?;
//! println!("HTTP/2: {}", tls.is_h2());
//!
//! // Client: trusts the system's CA store.
//! let connector = TlsConnector::native_roots()?;
//! let stream = TcpStream::connect("example.com:443").await?;
//! let tls = connector.connect("example.com", Io::new(stream)).await?;
//! # drop(tls);
//! # Ok(())
//! # }
//! ```
//!
//! # Closing without `close_notify`
//!
//! A peer that closes its TCP stream without TLS's `close_notify` could be
//! an attacker cutting a message short. On the server side that cannot go
//! unnoticed (HTTP/1.1 requests carry their length, HTTP/2 frames theirs), so
//! a [`TlsStream`] from [`TlsAcceptor`] reads it as an ordinary end of
//! stream: many clients close that way. On the client side an HTTP/1.1
//! response may end with the connection, so a [`TlsStream`] from
//! [`TlsConnector`] reports it as an error of kind
//! [`UnexpectedEof`](std::io::ErrorKind::UnexpectedEof), as rustls and
//! OpenSSL 3 do.

mod acceptor;
mod connector;
mod pem;
mod stream;

use std::fmt;
use std::io;
use std::sync::Arc;

pub use acceptor::TlsAcceptor;
pub use connector::TlsConnector;
pub use stream::TlsStream;

/// rustls itself, for building a [`ServerConfig`](rustls::ServerConfig) or
/// [`ClientConfig`](rustls::ClientConfig) by hand (client certificates,
/// session caches, a certificate resolver chosen by SNI).
pub use rustls;

/// The protocols offered by ALPN unless told otherwise: HTTP/2 first, then
/// HTTP/1.1.
pub const DEFAULT_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The crypto provider every config built here uses: rustls' `ring`.
///
/// Configs are built with it explicitly rather than with the process-wide
/// default, so that another crate turning on rustls' `aws-lc-rs` cannot make
/// rustls' `builder()` panic over two candidate providers.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // rustls 0.23.48 deprecates it for lacking post-quantum key exchange
    // (X25519MLKEM768, which only its aws-lc-rs provider has); ring is kept
    // for its light build (see the crate's Cargo.toml).
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// A list of ALPN protocol names as rustls stores them.
fn alpn_list<I, P>(protocols: I) -> Vec<Vec<u8>>
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    protocols.into_iter().map(|p| p.as_ref().to_vec()).collect()
}

/// ALPN protocol names as text, for `Debug`.
fn alpn_names(protocols: &[Vec<u8>]) -> Vec<String> {
    protocols
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

/// A TLS failure with what was being done: `"TLS handshake with example.com
/// failed"`, followed by rustls' own words. Its [`source`] is the error
/// underneath (a [`rustls::Error`] for protocol and certificate failures).
///
/// [`source`]: std::error::Error::source
#[derive(Debug)]
struct TlsError {
    context: String,
    source: io::Error,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The rustls error itself when there is one, so callers can match it.
        match self.source.get_ref() {
            Some(inner) => Some(inner),
            None => Some(&self.source),
        }
    }
}

/// `error` with `context` in front, keeping its kind.
fn with_context(error: io::Error, context: String) -> io::Error {
    io::Error::new(
        error.kind(),
        TlsError {
            context,
            source: error,
        },
    )
}

/// A rustls error as an `io::Error` of kind `InvalidData` (a protocol or
/// certificate failure) or `InvalidInput` (a config that cannot work).
fn rustls_error(error: rustls::Error) -> io::Error {
    let kind = match error {
        rustls::Error::General(_) | rustls::Error::InconsistentKeys(_) => {
            io::ErrorKind::InvalidInput
        }
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, error)
}
