//! Servers for the client's tests, made with hyper's server connection API
//! directly over percore (`TcpListener` + `percore_http::io::Io`), so the
//! client is tested against hyper itself and not against the crate's own
//! server.

#![allow(dead_code)]

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, LOCATION};
use hyper::{Request, Response, StatusCode};
use percore_http::io::Io;
use percore_http::rt::{Executor, Timer};
use percore_net::TcpListener;
use percore_runtime::{spawn, JoinHandle};

/// A response body that need not be `Send` (bodies here share `Rc`s).
pub type Body = Pin<Box<dyn hyper::body::Body<Data = Bytes, Error = std::io::Error>>>;

/// Which protocol the test server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Http1,
    /// HTTP/2 with prior knowledge (h2c).
    Http2,
}

/// A server on 127.0.0.1 running on this core, counting what it accepts;
/// stopped (its listener closed) when dropped.
pub struct Server {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Server {
    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections whose serving ended (the peer closed, or an error).
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::Relaxed)
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Serves [`route`] with `proto`.
pub fn serve(proto: Proto) -> Server {
    serve_with(proto, route)
}

/// Serves `handler` with `proto`.
pub fn serve_with<F, Fut>(proto: Proto, handler: F) -> Server
where
    F: Fn(Request<Incoming>) -> Fut + Clone + 'static,
    Fut: Future<Output = Response<Body>> + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    serve_on(listener, proto, handler)
}

/// Serves `handler` on `listener`.
pub fn serve_on<F, Fut>(listener: TcpListener, proto: Proto, handler: F) -> Server
where
    F: Fn(Request<Incoming>) -> Fut + Clone + 'static,
    Fut: Future<Output = Response<Body>> + 'static,
{
    serve_counting(listener, proto, handler, Arc::new(AtomicUsize::new(0)))
}

/// Serves `handler` on `listener`, counting accepted connections in `accepted`.
pub fn serve_counting<F, Fut>(
    listener: TcpListener,
    proto: Proto,
    handler: F,
    accepted: Arc<AtomicUsize>,
) -> Server
where
    F: Fn(Request<Incoming>) -> Fut + Clone + 'static,
    Fut: Future<Output = Response<Body>> + 'static,
{
    let addr = listener.local_addr().expect("local_addr");
    let closed = Arc::new(AtomicUsize::new(0));
    let (count, ended) = (accepted.clone(), closed.clone());
    let accept = spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            count.fetch_add(1, Ordering::Relaxed);
            let handler = handler.clone();
            let ended = ended.clone();
            drop(spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let response = handler(request);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let io = Io::new(stream);
                let _ = match proto {
                    Proto::Http1 => {
                        hyper::server::conn::http1::Builder::new()
                            .timer(Timer)
                            .serve_connection(io, service)
                            .await
                    }
                    Proto::Http2 => {
                        hyper::server::conn::http2::Builder::new(Executor)
                            .timer(Timer)
                            .max_concurrent_streams(2000)
                            .serve_connection(io, service)
                            .await
                    }
                };
                ended.fetch_add(1, Ordering::Relaxed);
            }));
        }
    });
    Server {
        addr,
        accepted,
        closed,
        accept,
    }
}

pub fn full(body: impl Into<Bytes>) -> Body {
    Box::pin(Full::new(body.into()).map_err(|never| match never {}))
}

pub fn empty() -> Body {
    Box::pin(Empty::new().map_err(|never| match never {}))
}

pub fn status(code: u16, location: Option<&str>) -> Response<Body> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::from_u16(code).expect("status");
    if let Some(location) = location {
        response
            .headers_mut()
            .insert(LOCATION, HeaderValue::from_str(location).expect("location"));
    }
    response
}

/// The byte at `offset` of the pattern [`big`] streams.
pub fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8
}

/// `total` bytes of [`pattern`] in `chunk`-byte frames, made as they are
/// sent; `made` counts the bytes made so far.
pub fn big(total: u64, chunk: usize, made: Rc<Cell<u64>>) -> Body {
    let frames = futures_util::stream::unfold(0u64, move |offset| {
        let made = made.clone();
        async move {
            if offset >= total {
                return None;
            }
            let len = (total - offset).min(chunk as u64);
            let bytes: Vec<u8> = (offset..offset + len).map(pattern).collect();
            made.set(offset + len);
            Some((
                Ok::<_, std::io::Error>(Frame::data(Bytes::from(bytes))),
                offset + len,
            ))
        }
    });
    Box::pin(StreamBody::new(frames))
}

/// The routes most tests use:
///
/// - `/hello` → `hello`;
/// - `/echo` → the request's body, with `x-method` the request's method;
/// - `/method` → the request's method (body: its length in `x-body-len`);
/// - `/auth` → the `Authorization` header's value, or `none`;
/// - `/redirect/N` → 302 to `/redirect/N-1`, and `/redirect/0` → `done`;
/// - `/status/N?location=L` → status N with `Location: L`;
/// - `/id/N` → `N` repeated N % 100 + 1 times, comma-separated;
/// - `/hang` → never answers;
/// - `/stall` → a head and one chunk, then nothing;
/// - `/empty` → 204.
pub async fn route(request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let query = request.uri().query().unwrap_or_default().to_owned();
    if path == "/hello" {
        return Response::new(full("hello"));
    }
    if path == "/echo" {
        let body = request.into_body().collect().await.map(|b| b.to_bytes());
        let body = body.unwrap_or_default();
        let mut response = Response::new(full(body));
        response
            .headers_mut()
            .insert("x-method", HeaderValue::from_str(method.as_str()).unwrap());
        return response;
    }
    if path == "/method" {
        let len = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes().len())
            .unwrap_or(usize::MAX);
        let mut response = Response::new(full(method.to_string()));
        response
            .headers_mut()
            .insert("x-body-len", HeaderValue::from(len));
        return response;
    }
    if path == "/auth" {
        let auth = request
            .headers()
            .get(AUTHORIZATION)
            .map_or("none".to_owned(), |v| v.to_str().unwrap_or("?").to_owned());
        return Response::new(full(auth));
    }
    if let Some(n) = path.strip_prefix("/redirect/") {
        let n: u32 = n.parse().unwrap_or(0);
        if n == 0 {
            return Response::new(full("done"));
        }
        return status(302, Some(&format!("/redirect/{}", n - 1)));
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let location = query.strip_prefix("location=");
        return status(code.parse().unwrap_or(500), location);
    }
    if let Some(n) = path.strip_prefix("/id/") {
        let n: usize = n.parse().unwrap_or(0);
        return Response::new(full(id_body(n)));
    }
    if path == "/hang" {
        futures_util::future::pending::<()>().await;
    }
    if path == "/stall" {
        let frames = futures_util::stream::iter([Ok::<_, std::io::Error>(Frame::data(
            Bytes::from_static(b"first"),
        ))])
        .chain(futures_util::stream::pending());
        return Response::new(Box::pin(StreamBody::new(frames)));
    }
    if path == "/empty" {
        return status(204, None);
    }
    status(404, None)
}

/// What `/id/N` answers.
pub fn id_body(n: usize) -> String {
    vec![n.to_string(); n % 100 + 1].join(",")
}

/// Open fds of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}
