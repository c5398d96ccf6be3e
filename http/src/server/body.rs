//! Bodies: the request body a service reads ([`Body`], with the server's size
//! limit and read timeout), and the response body hyper writes (the user's,
//! or the server's own refusal, with the mark of the request's end).

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::{Either, Full, Limited};
use hyper::body::Incoming;
use percore_runtime::time::{sleep, Sleep};
use pin_project_lite::pin_project;

use super::conn::Active;

/// A boxed error of a body or a service: what the server's bodies and
/// services report.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A request's body as the server hands it to the service: hyper's
/// [`Incoming`] under the server's limits.
///
/// - More bytes than [`max_body_size`](super::Builder::max_body_size) end it
///   with an error whose source is
///   [`http_body_util::LengthLimitError`] (axum's extractors answer that
///   with 413); a request that *declares* more is answered 413 before the
///   service sees it.
/// - Waiting longer than [`body_read_timeout`](super::Builder::body_read_timeout)
///   for the next bytes ends it with a [`BodyTimeout`] error (the clock runs
///   only while the service waits for the body).
///
/// It is `Send` (axum's `Router` asks for that), and an `http_body::Body`
/// with `Bytes` data and a [`BoxError`].
pub struct Body {
    inner: Limited<Incoming>,
    read_timeout: Option<Duration>,
    /// The read timeout's clock, running while the service waits.
    waiting: Option<Sleep>,
}

impl Body {
    pub(crate) fn new(
        incoming: Incoming,
        max: Option<u64>,
        read_timeout: Option<Duration>,
    ) -> Body {
        let max = max.map_or(usize::MAX, |max| usize::try_from(max).unwrap_or(usize::MAX));
        Body {
            inner: Limited::new(incoming, max),
            read_timeout,
            waiting: None,
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = None;
            return Poll::Ready(frame);
        }
        if let Some(after) = this.read_timeout {
            let waiting = this.waiting.get_or_insert_with(|| sleep(after));
            if Pin::new(waiting).poll(cx).is_ready() {
                this.waiting = None;
                return Poll::Ready(Some(Err(Box::new(BodyTimeout(after)))));
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("size_hint", &http_body::Body::size_hint(&self.inner))
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

/// The error of a request [`Body`] whose next bytes did not come within the
/// server's [`body_read_timeout`](super::Builder::body_read_timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout(Duration);

impl BodyTimeout {
    /// The timeout that passed.
    pub fn timeout(&self) -> Duration {
        self.0
    }
}

impl fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the client sent no more of the request body for {:?} (the server's body read \
             timeout; raise it with Builder::body_read_timeout)",
            self.0
        )
    }
}

impl StdError for BodyTimeout {}

pin_project! {
    /// What hyper writes: the service's body, or the server's own answer
    /// (413); dropping it marks the end of its request.
    pub(crate) struct ResponseBody<B> {
        #[pin]
        inner: Either<B, Full<Bytes>>,
        active: Option<Active>,
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn new(body: B, active: Option<Active>) -> ResponseBody<B> {
        ResponseBody {
            inner: Either::Left(body),
            active,
        }
    }

    pub(crate) fn fixed(bytes: &'static [u8], active: Option<Active>) -> ResponseBody<B> {
        ResponseBody {
            inner: Either::Right(Full::new(Bytes::from_static(bytes))),
            active,
        }
    }
}

impl<B> http_body::Body for ResponseBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        if frame.is_none() {
            // The last byte is handed over: the request is done, whether or
            // not hyper drops the body now.
            this.active.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
