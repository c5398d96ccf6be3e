//! Opening a connection: the name looked up off the core, TCP connect with
//! its timeout, the transport (plain, or TLS when the `tls` feature lands),
//! and hyper's HTTP/1.1 or HTTP/2 handshake, whose connection runs as a task
//! on this core.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::client::conn::{http1, http2};
use hyper::rt::ReadBufCursor;
use percore_net::TcpStream;
use percore_runtime::time::timeout;

use super::body::Body;
use super::config::Config;
use super::error::{Error, ErrorKind};
use super::url::{Origin, Secure};
use crate::io::Io;
use crate::rt::{Executor, Timer};

/// The HTTP/1.1 half of a pooled connection.
pub(crate) type H1Sender = http1::SendRequest<Body>;
/// The HTTP/2 half of a pooled connection (cloned once per request).
pub(crate) type H2Sender = http2::SendRequest<Body>;

/// The bytes of one connection: a plain TCP stream, or TLS over one
/// (made in [`secure`]; [`Transport::alpn_h2`] reads the protocol the
/// server chose).
///
/// TLS is boxed (its rustls state is kilobytes); the plain stream is not,
/// though it is the larger of the two here: it is the common case, and the
/// transport lives inside its connection's task, on the heap already.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Transport {
    /// `http://`: bytes as they are.
    Plain(Io),
    /// `https://`: TLS over the stream.
    #[cfg(feature = "tls")]
    Tls(Box<crate::tls::TlsStream<Io>>),
}

/// `$body` on the transport's stream, whichever it is (`$io` is pinned).
macro_rules! each {
    ($transport:expr, $io:ident => $body:expr) => {
        match $transport {
            Transport::Plain(io) => {
                let $io = Pin::new(io);
                $body
            }
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => {
                let $io = Pin::new(&mut **tls);
                $body
            }
        }
    };
}

impl Transport {
    /// Whether the server chose HTTP/2 by ALPN (only TLS negotiates it).
    pub(crate) fn alpn_h2(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls(tls) => tls.is_h2(),
        }
    }
}

impl hyper::rt::Read for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self.get_mut(), io => io.poll_read(cx, buf))
    }
}

impl hyper::rt::Write for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), io => io.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), io => io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), io => io.poll_shutdown(cx))
    }
}

/// Connects to `origin`: looks its host up on the blocking pool (a literal
/// address skips that), connects to each address in turn, within the
/// client's connect timeout, and wraps the stream for `http` or `https`.
pub(crate) async fn connect(config: &Config, origin: &Origin) -> Result<Transport, Error> {
    if origin.secure == Secure::Yes {
        // Before any connect: without TLS there is no point.
        can_secure(origin)?;
    }
    // `(&str, u16)`: a literal IP parses in place, a name goes to
    // getaddrinfo on the blocking pool (percore_net::lookup_host's path).
    let target = (origin.host.as_str(), origin.port);
    let what = || format!("connect to {}:{}", bracketed(&origin.host), origin.port);
    let stream = match config.connect_timeout {
        None => TcpStream::connect(target).await,
        Some(limit) => match timeout(limit, TcpStream::connect(target)).await {
            Ok(res) => res,
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{}: no connection within {limit:?} (the connect timeout)",
                        what()
                    ),
                )
                .in_connect())
            }
        },
    }
    .map_err(|err| {
        Error::new(ErrorKind::Connect, "")
            .with_source(err)
            .in_connect()
    })?;
    if config.nodelay {
        stream.set_nodelay(true).map_err(|err| {
            Error::new(ErrorKind::Connect, format!("{}: set TCP_NODELAY", what()))
                .with_source(err)
                .in_connect()
        })?;
    }
    let io = Io::new(stream);
    match origin.secure {
        Secure::No => Ok(Transport::Plain(io)),
        Secure::Yes => secure(io, config, origin).await,
    }
}

/// TLS over `io`, for an `https` origin: the client's connector (the
/// system's roots unless the builder was given one), checking the
/// certificate against the URL's host.
#[cfg(feature = "tls")]
async fn secure(io: Io, config: &Config, origin: &Origin) -> Result<Transport, Error> {
    let connector = match config.tls.get() {
        Some(connector) => connector.clone(),
        None => {
            // Reading the store blocks (a few hundred files' worth): off the core.
            let read = percore_runtime::spawn_blocking(crate::tls::TlsConnector::native_roots)
                .await
                .map_err(|err| {
                    Error::new(ErrorKind::Connect, "reading the system's CA store failed")
                        .with_source(io::Error::other(err.to_string()))
                        .in_connect()
                })?;
            let connector = read.map_err(|err| {
                Error::new(
                    ErrorKind::Connect,
                    "https: no TLS roots (give the client one with ClientBuilder::tls_connector)",
                )
                .with_source(err)
                .in_connect()
            })?;
            config.tls.get_or_init(|| connector).clone()
        }
    };
    match connector.connect(&origin.host, io).await {
        Ok(stream) => Ok(Transport::Tls(Box::new(stream))),
        Err(err) => Err(Error::new(ErrorKind::Connect, "")
            .with_source(err)
            .in_connect()),
    }
}

/// Without the `tls` feature: an `https` origin is refused (before any connect).
#[cfg(not(feature = "tls"))]
async fn secure(io: Io, _config: &Config, origin: &Origin) -> Result<Transport, Error> {
    drop(io);
    can_secure(origin)?;
    Err(Error::new(
        ErrorKind::Unsupported,
        "https: no TLS connector in this build",
    ))
}

/// Whether `https` can be spoken: with the `tls` feature, always.
#[cfg(feature = "tls")]
fn can_secure(_origin: &Origin) -> Result<(), Error> {
    Ok(())
}

/// Whether `https` can be spoken: not without the `tls` feature.
#[cfg(not(feature = "tls"))]
fn can_secure(origin: &Origin) -> Result<(), Error> {
    Err(Error::new(
        ErrorKind::Unsupported,
        format!(
            "https needs the `tls` feature of percore-http (connecting to {}:{})",
            bracketed(&origin.host),
            origin.port
        ),
    ))
}

/// `host`, in brackets if it is an IPv6 address.
fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// HTTP/1.1 over `transport`. The connection runs as a task on this core
/// until it closes; `hold` lives as long as it (the pool's count of open
/// connections).
pub(crate) async fn handshake_h1<G: 'static>(
    transport: Transport,
    hold: G,
) -> Result<H1Sender, Error> {
    let (sender, connection) = http1::Builder::new()
        .handshake::<_, Body>(transport)
        .await
        .map_err(|err| {
            Error::new(ErrorKind::Connect, "the HTTP/1.1 handshake failed")
                .with_source(err)
                .in_connect()
        })?;
    drop(percore_runtime::spawn(async move {
        // Its error (the peer reset, a protocol error) reaches the request
        // in flight, if any, through the sender; nothing is left to tell.
        let _ = connection.await;
        drop(hold);
    }));
    Ok(sender)
}

/// HTTP/2 over `transport` (prior knowledge, or chosen by ALPN). The
/// connection and its streams run as tasks on this core.
pub(crate) async fn handshake_h2(transport: Transport) -> Result<H2Sender, Error> {
    let (sender, connection) = http2::Builder::new(Executor)
        .timer(Timer)
        .handshake::<_, Body>(transport)
        .await
        .map_err(|err| {
            Error::new(ErrorKind::Connect, "the HTTP/2 handshake failed")
                .with_source(err)
                .in_connect()
        })?;
    drop(percore_runtime::spawn(async move {
        let _ = connection.await;
    }));
    Ok(sender)
}
