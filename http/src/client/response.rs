//! [`Response`]: status and headers at once, the body as it arrives
//! ([`chunk`](Response::chunk), [`bytes_stream`](Response::bytes_stream)) or
//! whole ([`bytes`](Response::bytes), [`text`](Response::text), `json`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Weak;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::http::{HeaderMap, StatusCode, Uri, Version};
use percore_runtime::time::{sleep_until, Instant, Sleep};

use super::connect::H1Sender;
use super::error::{Error, ErrorKind};
use super::pool;
use super::url::Origin;
use super::Shared;

/// The answer to a request: its status and headers, and a body to read.
///
/// The body streams: nothing is buffered beyond what hyper holds. Reading
/// it to its end gives an HTTP/1.1 connection back to the pool; dropping a
/// response before that closes its connection (on HTTP/2 it resets only
/// the stream).
pub struct Response {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    url: Uri,
    body: ResponseBody,
}

impl Response {
    pub(crate) fn new(
        response: hyper::Response<Incoming>,
        url: Uri,
        body_end: BodyEnd,
    ) -> Response {
        let (parts, incoming) = response.into_parts();
        let mut body = ResponseBody {
            incoming,
            deadline: None,
            end: Some(body_end),
            url: url.clone(),
        };
        body.check_end();
        Response {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            url,
            body,
        }
    }

    /// Bounds the reading of the body by the request's deadline.
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        if !hyper::body::Body::is_end_stream(&self.body.incoming) {
            self.body.deadline = Some(Box::pin(sleep_until(deadline)));
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version the server answered with.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The URL this response came from: the request's, or the last one
    /// redirected to.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    /// The body's length as the server announced it (`Content-Length`), if it did.
    pub fn content_length(&self) -> Option<u64> {
        hyper::body::Body::size_hint(&self.body.incoming).exact()
    }

    /// The response if its status is not an error (4xx or 5xx); else an
    /// error of kind [`Status`](ErrorKind::Status) carrying the status (the
    /// body is dropped unread).
    ///
    /// # Errors
    ///
    /// For a 4xx or 5xx status.
    pub fn error_for_status(self) -> Result<Response, Error> {
        match self.status_error() {
            Some(err) => Err(err),
            None => Ok(self),
        }
    }

    /// As [`error_for_status`](Response::error_for_status), keeping the response.
    ///
    /// # Errors
    ///
    /// For a 4xx or 5xx status.
    pub fn error_for_status_ref(&self) -> Result<&Response, Error> {
        match self.status_error() {
            Some(err) => Err(err),
            None => Ok(self),
        }
    }

    fn status_error(&self) -> Option<Error> {
        let status = self.status;
        (status.is_client_error() || status.is_server_error()).then(|| {
            let side = if status.is_client_error() {
                "client"
            } else {
                "server"
            };
            Error::new(
                ErrorKind::Status,
                format!("the server answered {status} (a {side} error)"),
            )
            .with_status(status)
            .with_url(&self.url)
        })
    }

    /// The next chunk of the body as it arrives; `None` at its end.
    ///
    /// # Errors
    ///
    /// [`Body`](ErrorKind::Body) if the connection failed mid-body,
    /// [`Timeout`](ErrorKind::Timeout) if the request's timeout ran out.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(err)) => return Err(err),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
    }

    /// The whole body.
    ///
    /// # Errors
    ///
    /// As [`chunk`](Response::chunk).
    pub async fn bytes(self) -> Result<Bytes, Error> {
        Ok(self.body.collect().await?.to_bytes())
    }

    /// The whole body as text; it must be UTF-8.
    ///
    /// # Errors
    ///
    /// As [`chunk`](Response::chunk); [`Decode`](ErrorKind::Decode) if it is
    /// not UTF-8.
    pub async fn text(self) -> Result<String, Error> {
        let url = self.url.clone();
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.into()).map_err(|err| {
            Error::new(ErrorKind::Decode, "the body is not UTF-8 text")
                .with_source(err)
                .with_url(&url)
        })
    }

    /// The whole body parsed as JSON into `T`.
    ///
    /// # Errors
    ///
    /// As [`chunk`](Response::chunk); [`Decode`](ErrorKind::Decode) if it is
    /// not JSON of `T`'s shape.
    #[cfg(feature = "json")]
    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        let url = self.url.clone();
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|err| {
            Error::new(ErrorKind::Decode, "the body is not the JSON expected")
                .with_source(err)
                .with_url(&url)
        })
    }

    /// The body as a stream of chunks (a `futures` [`Stream`]).
    pub fn bytes_stream(self) -> impl Stream<Item = Result<Bytes, Error>> {
        futures_util::stream::unfold(self, |mut response| async move {
            match response.chunk().await {
                Ok(Some(chunk)) => Some((Ok(chunk), response)),
                Ok(None) => None,
                Err(err) => Some((Err(err), response)),
            }
        })
    }

    /// The body, as an [`http_body::Body`](hyper::body::Body) (to send on
    /// as another response's body, say).
    pub fn into_body(self) -> ResponseBody {
        self.body
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("url", &self.url)
            .field("status", &self.status)
            .field("version", &self.version)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// What to do when a response body ends: give an HTTP/1.1 connection back.
pub(crate) enum BodyEnd {
    /// Back to the pool of `shared`.
    H1 {
        shared: Weak<Shared>,
        origin: Origin,
        sender: H1Sender,
    },
    /// Nothing (HTTP/2: the connection was never taken out).
    Nothing,
}

/// A response body: hyper's, with the request's deadline, and the
/// connection going back to the pool at its end.
pub struct ResponseBody {
    incoming: Incoming,
    deadline: Option<Pin<Box<Sleep>>>,
    end: Option<BodyEnd>,
    url: Uri,
}

impl ResponseBody {
    /// At the end of the body, gives the connection back.
    fn check_end(&mut self) {
        if hyper::body::Body::is_end_stream(&self.incoming) {
            self.deadline = None;
            if let Some(BodyEnd::H1 {
                shared,
                origin,
                sender,
            }) = self.end.take()
            {
                pool::put_back(&shared, &origin, sender);
            }
        }
    }

    fn at_end(&mut self) {
        self.deadline = None;
        if let Some(BodyEnd::H1 {
            shared,
            origin,
            sender,
        }) = self.end.take()
        {
            pool::put_back(&shared, &origin, sender);
        }
    }
}

impl hyper::body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(None) => {
                this.at_end();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                this.check_end();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                this.end = None;
                this.deadline = None;
                Poll::Ready(Some(Err(Error::new(
                    ErrorKind::Body,
                    "reading the response body",
                )
                .with_source(err)
                .with_url(&this.url))))
            }
            Poll::Pending => match this.deadline.as_mut().map(|sleep| sleep.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => {
                    // Dropping the connection: a half-read HTTP/1.1 body
                    // cannot be resumed.
                    this.end = None;
                    this.deadline = None;
                    Poll::Ready(Some(Err(Error::new(
                        ErrorKind::Timeout,
                        "the request's timeout ran out while reading the response body",
                    )
                    .with_url(&this.url))))
                }
                _ => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // Read to its end but not polled past it: the connection is fine.
        self.check_end();
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("url", &self.url)
            .field("size_hint", &hyper::body::Body::size_hint(&self.incoming))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for BodyEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyEnd::H1 { origin, .. } => f.debug_struct("H1").field("origin", origin).finish(),
            BodyEnd::Nothing => f.write_str("Nothing"),
        }
    }
}
