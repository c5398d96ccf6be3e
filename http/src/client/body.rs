//! A request's [`Body`]: nothing, bytes in memory (which a redirect or a
//! retry can send again), or a stream of chunks sent as they come.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use hyper::body::{Frame, SizeHint};

use super::error::{BoxError, Error, ErrorKind};

/// The body of a request.
///
/// Made from bytes in memory (`String`, `Vec<u8>`, `&'static str`,
/// [`Bytes`]…) with `From`, or from a stream with [`Body::wrap_stream`].
/// A body in memory is *replayable*: a 307/308 redirect, or a retry on a
/// fresh connection after a pooled one turned out closed, sends it again. A
/// streamed body is sent once, as it comes (`Transfer-Encoding: chunked` on
/// HTTP/1.1), and never buffered whole.
///
/// # Examples
///
/// ```
/// use percore_http::client::Body;
///
/// let empty = Body::empty();
/// let text = Body::from("hello");
/// let chunks = Body::wrap_stream(futures_util::stream::iter(vec![
///     Ok::<_, std::io::Error>("hel"),
///     Ok("lo"),
/// ]));
/// assert!(empty.is_replayable() && text.is_replayable() && !chunks.is_replayable());
/// ```
pub struct Body {
    kind: Kind,
}

enum Kind {
    /// Bytes in memory; `None` once sent.
    Full(Option<Bytes>),
    /// Chunks as a stream yields them.
    Stream(Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>>>>),
}

impl Body {
    /// No body.
    pub fn empty() -> Body {
        Body {
            kind: Kind::Full(None),
        }
    }

    /// A body sent chunk by chunk as `stream` yields them; an `Err` from the
    /// stream aborts the request (an error of kind
    /// [`Body`](ErrorKind::Body)). The stream need not be `Send`: it is
    /// polled on the core that sends the request.
    pub fn wrap_stream<S, B, E>(stream: S) -> Body
    where
        S: Stream<Item = Result<B, E>> + 'static,
        B: Into<Bytes>,
        E: Into<BoxError>,
    {
        use futures_util::StreamExt;
        let stream = stream.map(|item| item.map(Into::into).map_err(Into::into));
        Body {
            kind: Kind::Stream(Box::pin(stream)),
        }
    }

    /// Whether the body is in memory, so it can be sent again.
    pub fn is_replayable(&self) -> bool {
        matches!(self.kind, Kind::Full(_))
    }

    /// The bytes of a body in memory (empty for [`Body::empty`]); `None`
    /// for a streamed body.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Full(bytes) => Some(bytes.as_deref().unwrap_or_default()),
            Kind::Stream(_) => None,
        }
    }

    /// A copy of a body in memory (cheap: [`Bytes`] is reference-counted);
    /// `None` for a stream.
    pub(crate) fn try_clone(&self) -> Option<Body> {
        match &self.kind {
            Kind::Full(bytes) => Some(Body {
                kind: Kind::Full(bytes.clone()),
            }),
            Kind::Stream(_) => None,
        }
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Full(bytes) => f
                .debug_struct("Body")
                .field("len", &bytes.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Stream(_) => f.debug_struct("Body").field("stream", &true).finish(),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::from(Bytes::from(bytes))
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body::from(Bytes::from(text))
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Body {
        Body::from(Bytes::from_static(text.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Body {
        Body::from(Bytes::from_static(bytes))
    }
}

impl From<()> for Body {
    fn from((): ()) -> Body {
        Body::empty()
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes)))),
            Kind::Stream(stream) => match stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Error::new(
                    ErrorKind::Body,
                    "the request body's stream failed",
                )
                .with_source(err)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, Bytes::len) as u64),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn bytes_in_memory_are_one_frame_with_an_exact_size() {
        let body = Body::from("hello");
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), Some(5));
        let again = body.try_clone().unwrap();
        let got = futures_util::FutureExt::now_or_never(body.collect())
            .unwrap()
            .unwrap()
            .to_bytes();
        assert_eq!(got, "hello");
        assert_eq!(again.as_bytes(), Some(&b"hello"[..]));
    }

    #[test]
    fn an_empty_body_is_at_its_end_at_once() {
        assert!(hyper::body::Body::is_end_stream(&Body::empty()));
        assert!(hyper::body::Body::is_end_stream(&Body::from("")));
    }

    #[test]
    fn a_stream_is_not_replayable_and_its_error_is_a_body_error() {
        let body = Body::wrap_stream(futures_util::stream::iter(vec![
            Ok("a"),
            Err(std::io::Error::other("gone")),
        ]));
        assert!(body.try_clone().is_none());
        let err = futures_util::FutureExt::now_or_never(body.collect())
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Body);
        assert!(err.to_string().contains("gone"), "{err}");
    }
}
