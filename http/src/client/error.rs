//! The client's [`Error`]: what went wrong ([`ErrorKind`]), for which URL,
//! and the error underneath as [`source`](std::error::Error::source).

use std::error::Error as StdError;
use std::fmt::{self, Write as _};

use hyper::http::{StatusCode, Uri};

/// A boxed error that may cross threads, as hyper's body traits want it.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL could not be used: not `http`/`https`, no host, bad syntax.
    InvalidUrl,
    /// The request could not be built: a header name or value that is not
    /// valid, a body that could not be serialized.
    Builder,
    /// No connection: the name did not resolve, the connect was refused or
    /// timed out, or the HTTP handshake failed.
    Connect,
    /// The request (its connect included) or its body took longer than the
    /// timeout set on the client or the request.
    Timeout,
    /// A redirect could not be followed: too many of them, or a `Location`
    /// that is not a usable URL.
    Redirect,
    /// The connection failed while the request was sent or its response
    /// head was read.
    Request,
    /// Reading the response body failed (the connection closed early, a
    /// protocol error), or the request body's stream failed.
    Body,
    /// The body could not be decoded: text that is not UTF-8, JSON that does
    /// not fit the type asked for.
    Decode,
    /// The server answered with a 4xx or 5xx status
    /// ([`Response::error_for_status`](super::Response::error_for_status)).
    Status,
    /// A feature of the crate that is not enabled was needed (`https://`
    /// without the `tls` feature).
    Unsupported,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid URL",
            ErrorKind::Builder => "invalid request",
            ErrorKind::Connect => "connect failed",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Redirect => "redirect failed",
            ErrorKind::Request => "request failed",
            ErrorKind::Body => "body failed",
            ErrorKind::Decode => "decoding the body failed",
            ErrorKind::Status => "error status",
            ErrorKind::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of the HTTP client: its [`kind`](Error::kind), the URL it
/// happened on, a message saying what was being done, and the error
/// underneath (an [`std::io::Error`], a [`hyper::Error`]) as
/// [`source`](std::error::Error::source).
///
/// `Display` prints all of it on one line:
/// `connect failed: GET http://127.0.0.1:1/: connect to 127.0.0.1:1: Connection refused (os error 111)`.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    url: Option<Uri>,
    status: Option<StatusCode>,
    /// Whether it happened while connecting (a connect timeout too).
    connect: bool,
    source: Option<BoxError>,
}

impl Error {
    /// An error of `kind` saying `message`.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                url: None,
                status: None,
                connect: false,
                source: None,
            }),
        }
    }

    /// Keeps `source` as the cause.
    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    /// Names the URL, unless one is named already.
    pub(crate) fn with_url(mut self, url: &Uri) -> Error {
        if self.inner.url.is_none() {
            self.inner.url = Some(url.clone());
        }
        self
    }

    /// Marks the error as one of connecting.
    pub(crate) fn in_connect(mut self) -> Error {
        self.inner.connect = true;
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Error {
        self.inner.status = Some(status);
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The URL of the request that failed (after redirects, the one being
    /// fetched when it failed), if there was one.
    pub fn url(&self) -> Option<&Uri> {
        self.inner.url.as_ref()
    }

    /// The status, for an error of kind [`ErrorKind::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// Whether a timeout ended the request.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// Whether it happened while connecting: no connection could be made,
    /// or the connect timeout ran out (then [`is_timeout`](Error::is_timeout)
    /// is true too).
    pub fn is_connect(&self) -> bool {
        self.inner.kind == ErrorKind::Connect || self.inner.connect
    }

    /// Whether too many redirects, or a bad one, ended the request.
    pub fn is_redirect(&self) -> bool {
        self.inner.kind == ErrorKind::Redirect
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let mut text = inner.kind.to_string();
        if let Some(url) = &inner.url {
            let _ = write!(text, ": {url}");
        }
        if !inner.message.is_empty() {
            let _ = write!(text, ": {}", inner.message);
        }
        // hyper's errors keep the OS error a level further down, unprinted;
        // percore's context errors print theirs: each cause once.
        let mut next = inner.source.as_deref().map(|e| e as &dyn StdError);
        while let Some(cause) = next {
            let said = cause.to_string();
            if !text.contains(&said) {
                let _ = write!(text, ": {said}");
            }
            next = cause.source();
        }
        f.write_str(&text)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        let mut out = f.debug_struct("Error");
        out.field("kind", &inner.kind);
        if let Some(url) = &inner.url {
            out.field("url", url);
        }
        if !inner.message.is_empty() {
            out.field("message", &inner.message);
        }
        if let Some(status) = &inner.status {
            out.field("status", status);
        }
        if let Some(source) = &inner.source {
            out.field("source", source);
        }
        out.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

impl From<Error> for std::io::Error {
    /// An I/O error of the matching kind (`TimedOut`, `ConnectionRefused`…
    /// for a connect, `InvalidInput` for a bad URL, `Other` else).
    fn from(err: Error) -> std::io::Error {
        use std::io::ErrorKind as Io;
        let kind = match err.kind() {
            ErrorKind::Timeout => Io::TimedOut,
            ErrorKind::InvalidUrl | ErrorKind::Builder => Io::InvalidInput,
            ErrorKind::Unsupported => Io::Unsupported,
            ErrorKind::Decode => Io::InvalidData,
            ErrorKind::Connect => match find_io(&err) {
                Some(io) => io.kind(),
                None => Io::Other,
            },
            _ => Io::Other,
        };
        std::io::Error::new(kind, err)
    }
}

/// The first `io::Error` in the chain of `err`'s sources.
fn find_io(err: &Error) -> Option<&std::io::Error> {
    let mut next = err.inner.source.as_deref().map(|e| e as &dyn StdError);
    while let Some(cause) = next {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        next = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_url_message_and_the_chain() {
        let os = std::io::Error::from_raw_os_error(libc_econnrefused());
        let err = Error::new(ErrorKind::Connect, "connect to 127.0.0.1:1")
            .with_source(os)
            .with_url(&Uri::from_static("http://127.0.0.1:1/"));
        let text = err.to_string();
        assert!(text.starts_with("connect failed: http://127.0.0.1:1/: connect to 127.0.0.1:1: "));
        assert!(text.contains("refused"), "{text}");
        assert!(err.is_connect());
        assert!(err.source().is_some());
        let io: std::io::Error = err.into();
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn the_first_url_named_stays() {
        let err = Error::new(ErrorKind::Timeout, "")
            .with_url(&Uri::from_static("http://a/"))
            .with_url(&Uri::from_static("http://b/"));
        assert_eq!(err.url(), Some(&Uri::from_static("http://a/")));
        assert_eq!(err.to_string(), "timed out: http://a/");
    }

    fn libc_econnrefused() -> i32 {
        111
    }
}
