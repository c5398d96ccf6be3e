//! The `http` example's service: "Hello, world!" for every request, served
//! by percore-http (hyper does the HTTP: HTTP/1.1 with keep-alive,
//! pipelining and chunked bodies, `HEAD`, and HTTP/2 by prior knowledge).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, SERVER};
use hyper::{Request, Response};
use percore::http::server::Body;

/// The body of every answer.
pub const HELLO: &str = "Hello, world!";

/// Answers any request with `200 OK` and [`HELLO`]; a request body is
/// left unread (hyper skips it, or closes the connection after answering).
pub async fn hello(_request: Request<Body>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(HELLO.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("percore"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}
