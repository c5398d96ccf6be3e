//! The `hyper` example's service: hyper's own `Service` trait served by
//! percore-http, routed by hand, with state of its core that is not `Send`.
//!
//! - `GET /` (and `HEAD /`): "Hello, world!";
//! - `POST /echo`: the request body, streamed back as it arrives;
//! - `GET /core`: which core answered and how many requests that core has
//!   served (a count in an `Rc<Cell>`: no atomic, no lock — each core has
//!   its own);
//! - another method on those paths: 405; any other path: 404.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use percore::http::server::Body;

use crate::http::HELLO;

/// A response body: a whole one, or the request's own (`/echo`).
pub type Reply = Either<Full<Bytes>, Body>;

/// One core's service. hyper clones it for every connection; the clones
/// of a core share its count.
#[derive(Debug, Clone)]
pub struct Routes {
    core: usize,
    served: Rc<Cell<u64>>,
}

impl Routes {
    /// The service of core `core`, with nothing served yet.
    pub fn new(core: usize) -> Routes {
        Routes {
            core,
            served: Rc::new(Cell::new(0)),
        }
    }
}

impl hyper::service::Service<Request<Body>> for Routes {
    type Response = Response<Reply>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Reply>, Infallible>>;

    fn call(&self, request: Request<Body>) -> Self::Future {
        let served = self.served.get() + 1;
        self.served.set(served);
        let method = request.method();
        let response = match request.uri().path() {
            "/" if method == Method::GET || method == Method::HEAD => text(StatusCode::OK, HELLO),
            "/echo" if method == Method::POST => echo(request),
            "/core" if method == Method::GET => text(
                StatusCode::OK,
                format!("core {}: {served} requests\n", self.core),
            ),
            "/" | "/core" => not_allowed("GET, HEAD"),
            "/echo" => not_allowed("POST"),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        };
        ready(Ok(response))
    }
}

/// `status` with a plain-text body.
fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Reply> {
    let mut response = Response::new(Either::Left(Full::new(body.into())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// 405, naming the methods the path takes.
fn not_allowed(allow: &'static str) -> Response<Reply> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// The request body as the response body: each chunk goes back out as it
/// comes in (the server's body size limit and read timeout apply to it).
fn echo(request: Request<Body>) -> Response<Reply> {
    let (parts, body) = request.into_parts();
    let mut response = Response::new(Either::Right(body));
    if let Some(kind) = parts.headers.get(CONTENT_TYPE) {
        response.headers_mut().insert(CONTENT_TYPE, kind.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use percore::http::client::Client;
    use percore::http::server::Builder;
    use percore::net::graceful::Connections;
    use percore::net::TcpListener;
    use percore::shutdown::Shutdown;

    use super::*;

    #[test]
    fn the_routes_answer_the_percore_http_client() {
        percore::run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let connections = Connections::new(&Shutdown::new());
            drop(percore::spawn(async move {
                Builder::new()
                    .serve_listener(listener, Routes::new(7), connections)
                    .await
            }));
            let client = Client::new();
            let hello = client.get(format!("{base}/")).send().await.unwrap();
            assert_eq!(hello.status(), 200);
            assert_eq!(hello.text().await.unwrap(), HELLO);
            let body = "x".repeat(100_000);
            let echoed = client
                .post(format!("{base}/echo"))
                .header("content-type", "application/octet-stream")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(echoed.status(), 200);
            assert_eq!(echoed.headers()["content-type"], "application/octet-stream");
            assert_eq!(echoed.text().await.unwrap(), body);
            let core = client.get(format!("{base}/core")).send().await.unwrap();
            assert_eq!(core.text().await.unwrap(), "core 7: 3 requests\n");
            let wrong = client.get(format!("{base}/echo")).send().await.unwrap();
            assert_eq!(wrong.status(), 405);
            assert_eq!(wrong.headers()["allow"], "POST");
            let missing = client.get(format!("{base}/nope")).send().await.unwrap();
            assert_eq!(missing.status(), 404);
        })
        .unwrap();
    }
}
