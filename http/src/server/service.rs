//! The service hyper calls: the user's, behind the server's checks. It
//! answers a request that declares a body over the limit with 413 without
//! calling the user's service, hands the service a [`Body`] under the
//! server's limits, and marks each request's start and end for the
//! connection's timeouts.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode, Version};
use pin_project_lite::pin_project;

use super::body::{Body, BoxError, ResponseBody};
use super::conn::{Active, ConnState};

/// What the checks need, shared by a core's connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_body: Option<u64>,
    pub(crate) body_read_timeout: Option<Duration>,
}

/// The user's service `S` behind the server's checks, for one connection.
pub(crate) struct Checked<S> {
    inner: S,
    limits: Limits,
    conn: Rc<ConnState>,
}

impl<S> Checked<S> {
    pub(crate) fn new(inner: S, limits: Limits, conn: Rc<ConnState>) -> Checked<S> {
        Checked {
            inner,
            limits,
            conn,
        }
    }
}

const TOO_LARGE: &[u8] = b"request body too large\n";

impl<S, B> hyper::service::Service<Request<Incoming>> for Checked<S>
where
    S: hyper::service::Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<B>>;
    type Error = BoxError;
    type Future = CheckedFuture<S::Future, B>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let active = self.conn.start_request();
        if closes(request.version(), request.headers()) {
            self.conn.set_closing();
        }
        if let Some(max) = self.limits.max_body {
            if request.body().size_hint().lower() > max {
                if request.version() < Version::HTTP_2 {
                    // Answered with `Connection: close`.
                    self.conn.set_closing();
                }
                return CheckedFuture::Refused {
                    response: Some(too_large(request.version(), active)),
                };
            }
        }
        let limits = self.limits;
        // hyper's HTTP/1 drops the body of an answer to HEAD; its HTTP/2 sends
        // it, and clients reset the stream: drop it here.
        let head = request.method() == Method::HEAD && request.version() >= Version::HTTP_2;
        let request =
            request.map(|incoming| Body::new(incoming, limits.max_body, limits.body_read_timeout));
        CheckedFuture::Called {
            future: self.inner.call(request),
            active: Some(active),
            head,
            conn: Rc::clone(&self.conn),
        }
    }
}

/// Whether a message with these `headers` ends its HTTP/1 connection: a
/// `close` token in `Connection`, or HTTP/1.0 without `keep-alive` (what
/// hyper goes by).
fn closes(version: Version, headers: &header::HeaderMap) -> bool {
    if version >= Version::HTTP_2 {
        return false;
    }
    // A scan of a message's few headers (a name compares as an enum) costs
    // less than two lookups by hash: this runs twice per request.
    let (mut close, mut keep_alive) = (false, false);
    for (name, value) in headers {
        if name != header::CONNECTION {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            close |= token.eq_ignore_ascii_case("close");
            keep_alive |= token.eq_ignore_ascii_case("keep-alive");
        }
    }
    close || (version < Version::HTTP_11 && !keep_alive)
}

/// 413, and on HTTP/1 the end of the connection: the body the client may
/// be sending is not read.
fn too_large<B>(version: Version, active: Active) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::fixed(TOO_LARGE, Some(active)));
    *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    if version < Version::HTTP_2 {
        headers.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    response
}

pin_project! {
    /// The future of [`Checked`]'s `call`.
    #[project = CheckedProj]
    pub(crate) enum CheckedFuture<F, B> {
        Called {
            #[pin]
            future: F,
            active: Option<Active>,
            // An HTTP/2 HEAD: the answer goes out without its body.
            head: bool,
            // Told when the response closes the connection.
            conn: Rc<ConnState>,
        },
        Refused {
            response: Option<Response<ResponseBody<B>>>,
        },
    }
}

impl<F, B, E> Future for CheckedFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CheckedProj::Called {
                future,
                active,
                head,
                conn,
            } => {
                let response = ready!(future.poll(cx)).map_err(Into::into)?;
                if closes(response.version(), response.headers()) {
                    conn.set_closing();
                }
                if *head {
                    return Poll::Ready(Ok(headless(response, active.take())));
                }
                Poll::Ready(Ok(
                    response.map(|body| ResponseBody::new(body, active.take()))
                ))
            }
            CheckedProj::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
        }
    }
}

/// The answer to an HTTP/2 `HEAD`: its head, with the `content-length` a
/// `GET` would have had (when the body knows it), and no body.
fn headless<B: http_body::Body>(
    response: Response<B>,
    active: Option<Active>,
) -> Response<ResponseBody<B>> {
    let (mut parts, body) = response.into_parts();
    if let Some(length) = body.size_hint().exact() {
        parts
            .headers
            .entry(header::CONTENT_LENGTH)
            .or_insert_with(|| header::HeaderValue::from(length));
    }
    drop(body);
    Response::from_parts(parts, ResponseBody::fixed(b"", active))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(connection: &[&str]) -> header::HeaderMap {
        let mut headers = header::HeaderMap::new();
        // Other headers, one with a `close` value, change nothing.
        headers.insert(header::HOST, header::HeaderValue::from_static("a"));
        headers.insert("x-connection", header::HeaderValue::from_static("close"));
        for value in connection {
            headers.append(
                header::CONNECTION,
                header::HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn a_close_token_or_http_1_0_without_keep_alive_closes() {
        assert!(closes(Version::HTTP_11, &headers(&["close"])));
        assert!(closes(Version::HTTP_11, &headers(&["Upgrade, CLOSE"])));
        assert!(closes(Version::HTTP_11, &headers(&["te", "close"])));
        assert!(!closes(Version::HTTP_11, &headers(&[])));
        assert!(!closes(Version::HTTP_11, &headers(&["keep-alive"])));
        assert!(!closes(Version::HTTP_11, &headers(&["closed"])));
        assert!(closes(Version::HTTP_10, &headers(&[])));
        assert!(!closes(Version::HTTP_10, &headers(&["Keep-Alive"])));
        assert!(!closes(Version::HTTP_2, &headers(&["close"])));
    }
}
