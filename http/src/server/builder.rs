//! [`Builder`]: the server's options, and serving on one core — a listener's
//! connections ([`Builder::serve_listener`]) or one connection
//! ([`Builder::serve_connection`]).

use std::any::{Any, TypeId};
use std::error::Error as StdError;
use std::future::poll_fn;
use std::io;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::HttpService;
use hyper::{Request, Response};
use percore_net::balance::Balance;
use percore_net::graceful::Connections;
use percore_net::{TcpListener, TcpStream};
use percore_runtime::shutdown::Shutdown;

use super::body::{Body, BoxError};
use super::conn::{self, Conn, ConnState, Driven, Ended, Protocol, Readable, Sniff, Timeouts};
use super::service::{Checked, Limits};
use super::{Accept, Plain, Server};
use crate::io::Io;
use crate::rt::{Executor, Timer};

/// The server's options, then [`bind`](Builder::bind) (a whole server on
/// every core) or, on a core of your own runtime,
/// [`serve_listener`](Builder::serve_listener) /
/// [`serve_connection`](Builder::serve_connection).
///
/// Cheap to clone and `Send`: one builder configures every core.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use percore_http::server::Server;
///
/// let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello" }));
/// Server::builder()
///     .cores(4)
///     .header_read_timeout(Duration::from_secs(10))
///     .max_body_size(1 << 20)
///     .bind("0.0.0.0:8080")?
///     .serve(app)?;
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until it binds or serves"]
pub struct Builder<A = Plain> {
    pub(super) acceptor: A,
    pub(super) cores: usize,
    pub(super) grace: Duration,
    pub(super) shutdown: Shutdown,
    pub(super) signals: bool,
    pub(super) backlog: i32,
    pub(super) balance: bool,
    pub(super) rehome: bool,
    only: Option<Protocol>,
    timeouts: Timeouts,
    limits: Limits,
    h1: http1::Builder,
    h2: http2::Builder<Executor>,
}

/// Defaults, chosen as a public server's: see each option.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(60);
const RETIRE_IDLE_AFTER: Duration = Duration::from_secs(1);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_HEAD_SIZE: usize = 64 * 1024;
const MAX_BODY_SIZE: u64 = 16 * 1024 * 1024;
/// What a rejected or closing connection's client may still send, read and
/// dropped before closing (closing with unread bytes would reset the
/// connection, and the client might lose the answer it was sent)…
const LINGER_BYTES: usize = 1024 * 1024;
/// …for at most this long.
const LINGER_TIME: Duration = Duration::from_secs(2);

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// The defaults: every CPU, HTTP/1.1 and HTTP/2 (told apart by the
    /// HTTP/2 preface), the timeouts and limits each option names, a 10 s
    /// shutdown grace, shutdown on `SIGTERM` or `SIGINT`.
    pub fn new() -> Builder {
        let mut h1 = http1::Builder::new();
        h1.timer(Timer)
            // The server's own timeouts replace hyper's (see `conn`).
            .header_read_timeout(None)
            .max_header_size(MAX_HEAD_SIZE)
            // A client that shuts its writing side after its request
            // (`printf … | nc`) still gets its answer; without this, hyper
            // drops the request when it reads the end of stream.
            .half_close(true);
        let mut h2 = http2::Builder::new(Executor);
        h2.timer(Timer).max_header_list_size(MAX_HEAD_SIZE as u32);
        Builder {
            acceptor: Plain,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            grace: Duration::from_secs(10),
            shutdown: Shutdown::new(),
            signals: true,
            backlog: 4096,
            balance: false,
            rehome: false,
            only: None,
            timeouts: Timeouts {
                header: Some(HEADER_READ_TIMEOUT),
                idle: Some(KEEP_ALIVE_TIMEOUT),
                retire: Some(RETIRE_IDLE_AFTER),
            },
            limits: Limits {
                max_body: Some(MAX_BODY_SIZE),
                body_read_timeout: Some(BODY_READ_TIMEOUT),
            },
            h1,
            h2,
        }
    }
}

impl<A: Accept> Builder<A> {
    /// Serves on `cores` cores, one `SO_REUSEPORT` listener each (default:
    /// every CPU). At least 1.
    pub fn cores(mut self, cores: usize) -> Self {
        self.cores = cores.max(1);
        self
    }

    /// After the shutdown begins, how long connections may take to finish
    /// the requests they have before they are cut (default 10 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The [`Shutdown`] that stops the server: begin it from anywhere (an
    /// admin endpoint, a test) and the server drains and returns. By default
    /// a fresh one, begun only by signals.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Whether `SIGTERM` and `SIGINT` begin the shutdown (default: yes).
    pub fn signals(mut self, on: bool) -> Self {
        self.signals = on;
        self
    }

    /// The listen backlog of each core's listener (default 4096).
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Whether a core that serves more connections than another hands its
    /// fresh ones to the core serving the fewest, before their first byte
    /// is read ([`percore_net::balance`]); default: no, each connection is
    /// served by the core whose `SO_REUSEPORT` listener the kernel gave it
    /// to. Every connection still lives on one core.
    ///
    /// Read by [`Server::serve`]. A loop of your own per core balances with
    /// [`serve_balanced`](Builder::serve_balanced) and one [`Balance`] for
    /// all cores; [`serve_listener`](Builder::serve_listener) serves what
    /// its own listener accepts, whatever this says.
    pub fn balance(mut self, on: bool) -> Self {
        self.balance = on;
        self
    }

    /// Whether a plain HTTP/1 connection may move to another core between
    /// requests, when its core waits for its CPU and another core has room
    /// ([`Balance::rehome`]); implies [`balance`](Builder::balance).
    /// Default: no. A connection moves only while idle — its response
    /// written, no byte of its next request parsed — with every byte it
    /// received and did not serve, which the other core serves first; it
    /// lives on one core at a time. HTTP/2 and TLS connections stay where
    /// they are. When on, a connection costs one check of two atomic loads
    /// per idle moment; when off, nothing.
    ///
    /// Read by [`Server::serve`]. A loop of your own per core moves
    /// connections with [`serve_balanced`](Builder::serve_balanced): when
    /// its [`Balance`] asks for it ([`Balance::rehome`] on, or
    /// [`Balance::move_connections`]).
    pub fn rehome(mut self, on: bool) -> Self {
        self.rehome = on;
        self
    }

    /// Serves HTTP/1 only: no look for the HTTP/2 preface.
    pub fn http1_only(mut self) -> Self {
        self.only = Some(Protocol::Http1);
        self
    }

    /// Serves HTTP/2 only (h2c with prior knowledge, or h2 over TLS).
    pub fn http2_only(mut self) -> Self {
        self.only = Some(Protocol::Http2);
        self
    }

    /// How long a client may take to send a request head, from its first
    /// byte (HTTP/1), and to finish the TLS handshake; then the connection
    /// is closed. Default 30 s; `None` waits forever.
    pub fn header_read_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeouts.header = timeout.into();
        self
    }

    /// How long a connection may sit idle — no request in progress, no byte
    /// of the next — before it is closed (an HTTP/2 one is told to go away
    /// first). Default 60 s; `None` keeps it forever.
    pub fn keep_alive_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeouts.idle = timeout.into();
        self
    }

    /// How long an HTTP/1 keep-alive connection may sit idle before the
    /// server gives back what hyper holds for it — its connection state and
    /// its 8 KiB read and write buffers — keeping only the socket, the
    /// service and the timeouts' account (under 1 KB in all); the next
    /// request gets a fresh hyper connection, as a new connection's first
    /// does. A busy connection's next request comes long before (under
    /// load, microseconds after its last response), and it pays nothing per
    /// request: the connection's one timer, moved later by each request,
    /// wakes it at most once per delay. Default 1 s; `None` keeps hyper's
    /// connection for the connection's whole life.
    pub fn retire_idle_after(mut self, after: impl Into<Option<Duration>>) -> Self {
        self.timeouts.retire = after.into();
        self
    }

    /// How long a service reading a request body waits for the next bytes
    /// before the body ends with a [`BodyTimeout`](super::BodyTimeout)
    /// error. Default 30 s; `None` waits forever.
    pub fn body_read_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.limits.body_read_timeout = timeout.into();
        self
    }

    /// The most bytes of request line and headers (HTTP/1) or of a header
    /// list (HTTP/2) accepted; a larger head is answered 431 (HTTP/1) or
    /// refused by the HTTP/2 layer. Default 64 KiB.
    pub fn max_head_size(mut self, bytes: usize) -> Self {
        self.h1.max_header_size(bytes);
        self.h2
            .max_header_list_size(u32::try_from(bytes).unwrap_or(u32::MAX));
        self
    }

    /// The most header fields in an HTTP/1 request; more are answered 431.
    /// Default 100 (hyper's, which keeps them on the stack; any other value
    /// costs an allocation per request).
    pub fn max_headers(mut self, count: usize) -> Self {
        self.h1.max_headers(count);
        self
    }

    /// The most bytes of request body a service can read: a request that
    /// declares more (`Content-Length`) is answered 413 without calling the
    /// service, and a streamed (chunked) body that grows past it ends with
    /// an error ([`Body`]). Default 16 MiB; `None` for no limit.
    pub fn max_body_size(mut self, bytes: impl Into<Option<u64>>) -> Self {
        self.limits.max_body = bytes.into();
        self
    }

    /// hyper's HTTP/1 options, for what this builder does not name
    /// (`title_case_headers`, `pipeline_flush`, `writev(true)` for large
    /// response bodies: see [`Io`]'s `is_write_vectored`…). The timer is
    /// set already; leave `header_read_timeout` off (the server's own
    /// replaces it).
    pub fn http1(&mut self) -> &mut http1::Builder {
        &mut self.h1
    }

    /// hyper's HTTP/2 options (`max_concurrent_streams`, window sizes,
    /// keep-alive pings…). Executor and timer are set already.
    pub fn http2(&mut self) -> &mut http2::Builder<Executor> {
        &mut self.h2
    }

    /// What each accepted connection goes through before HTTP: TLS, say
    /// (the default, [`Plain`], passes it on as it is).
    pub fn acceptor<B: Accept>(self, acceptor: B) -> Builder<B> {
        Builder {
            acceptor,
            cores: self.cores,
            grace: self.grace,
            shutdown: self.shutdown,
            signals: self.signals,
            backlog: self.backlog,
            balance: self.balance,
            rehome: self.rehome,
            only: self.only,
            timeouts: self.timeouts,
            limits: self.limits,
            h1: self.h1,
            h2: self.h2,
        }
    }

    /// Binds one `SO_REUSEPORT` listener per core on `addr` (port 0: the
    /// same free port for all). Nothing is served until
    /// [`Server::serve`].
    ///
    /// # Errors
    ///
    /// The address does not resolve or cannot be bound (in use, no
    /// permission), with the address named.
    pub fn bind(self, addr: impl percore_net::ToSocketAddrs) -> io::Result<Server<A>> {
        Server::bind_with(self, addr)
    }

    /// Serves every connection `listener` accepts on the calling core, each
    /// in a task of its own, with `service` (a hyper service; wrap a tower
    /// one, such as an axum `Router`, in
    /// [`TowerToHyperService`](super::TowerToHyperService)). Runs until
    /// dropped: select it with your [`Shutdown`]'s `begun()`, then
    /// [`Connections::finish`] and await the shutdown's `drained()`, as
    /// [`Server::serve`] does.
    pub async fn serve_listener<S, B>(
        &self,
        listener: TcpListener,
        service: S,
        connections: Connections,
    ) where
        S: hyper::service::Service<Request<Body>, Response = Response<B>> + Clone + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + 'static,
        B::Error: Into<BoxError>,
    {
        self.serve_incoming(listener.incoming(), service, connections)
            .await;
    }

    /// As [`serve_listener`](Builder::serve_listener), with the connections
    /// `balance` places on the calling core: those `listener` accepts and
    /// `balance` keeps here, and those other cores hand here. Every core
    /// calls it with a clone of the same [`Balance`], made for the
    /// runtime's number of cores ([`percore_net::balance`] says how
    /// connections are placed). Runs until dropped, like `serve_listener`;
    /// the listener stays open while it runs (and while you hold it).
    ///
    /// With [`rehome`](Builder::rehome) on, a plain HTTP/1 connection moves
    /// to another core between requests when `balance` asks for it (with
    /// [`Balance::rehome`] on, or [`Balance::move_connections`]); that core
    /// serves it on as its own.
    ///
    /// # Errors
    ///
    /// At once, serving nothing, if the calling core is beyond the cores
    /// `balance` was made for ([`Balance::incoming`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use percore::net::balance::Balance;
    /// use percore::net::graceful::Connections;
    /// use percore::net::tcp::ListenOptions;
    /// use percore::shutdown::Shutdown;
    /// use percore_http::server::{Builder, TowerToHyperService};
    ///
    /// let runtime = percore::Runtime::builder().cores(2).build()?;
    /// let balance = Balance::new(2);
    /// let shutdown = Shutdown::new();
    /// runtime.run_on_all(move |_core| {
    ///     let (balance, shutdown) = (balance.clone(), shutdown.clone());
    ///     async move {
    ///         let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello" }));
    ///         let listener = ListenOptions::new().reuse_port(true).bind_tcp("127.0.0.1:8080")?;
    ///         let connections = Connections::new(&shutdown);
    ///         let service = TowerToHyperService::new(app);
    ///         Builder::new()
    ///             .serve_balanced(&listener, &balance, service, connections)
    ///             .await
    ///     }
    /// })?;
    /// # std::io::Result::Ok(())
    /// ```
    pub async fn serve_balanced<S, B>(
        &self,
        listener: &TcpListener,
        balance: &Balance,
        service: S,
        connections: Connections,
    ) -> io::Result<()>
    where
        S: hyper::service::Service<Request<Body>, Response = Response<B>> + Clone + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + 'static,
        B::Error: Into<BoxError>,
    {
        let incoming = balance.incoming(listener)?;
        self.serve_incoming(incoming, service, connections).await;
        Ok(())
    }

    /// Serves each connection `incoming` yields in a task of its own, until
    /// it ends: the loop of [`serve_listener`](Builder::serve_listener) and
    /// [`serve_balanced`](Builder::serve_balanced).
    async fn serve_incoming<I, S, B>(&self, incoming: I, service: S, connections: Connections)
    where
        I: Stream<Item = io::Result<TcpStream>>,
        S: hyper::service::Service<Request<Body>, Response = Response<B>> + Clone + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + 'static,
        B::Error: Into<BoxError>,
    {
        let this = Rc::new(self.clone());
        let mut incoming = pin!(incoming);
        while let Some(next) = incoming.next().await {
            // Accept errors (EMFILE…) are retried by `incoming` after a pause.
            let Ok(stream) = next else { continue };
            let this = Rc::clone(&this);
            let service = service.clone();
            let connections = connections.clone();
            drop(percore_runtime::spawn(async move {
                this.serve_connection(stream, service, &connections).await;
            }));
        }
    }

    /// Serves one accepted connection on the calling core until it closes:
    /// the acceptor, the protocol, hyper, the timeouts; told to finish when
    /// `connections` are. Errors end the connection only.
    pub async fn serve_connection<S, B>(
        &self,
        stream: TcpStream,
        service: S,
        connections: &Connections,
    ) where
        S: hyper::service::Service<Request<Body>, Response = Response<B>> + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + 'static,
        B::Error: Into<BoxError>,
    {
        let guard = connections.guard();
        let _ = stream.set_nodelay(true);
        let state = ConnState::new();
        // Bytes another core read and did not serve, if it moved here.
        let received = Bytes::from(stream.take_received());
        // The opening on the heap: its room (the acceptor's future, a TLS
        // handshake's) is given back once the protocol is known, and the
        // task of an idle connection keeps only what serving needs. (In a
        // block: a local `Io` would keep its room in the task, moved or not.)
        let (stream, opening) = {
            let io = Io::new(stream);
            let shared = io.shared();
            (
                shared,
                Box::pin(self.open(io, received, &state, connections)),
            )
        };
        // `None` once the connection moved to another core.
        let mut stream = Some(stream);
        if let Some((conn, protocol)) = opening.await {
            self.serve(conn, protocol, service, &state, connections, &mut stream)
                .await;
        }
        drop(guard);
        if let Some(stream) = stream {
            crate::io::linger(stream, LINGER_BYTES, LINGER_TIME).await;
        }
    }

    /// Serves `protocol` on an opened connection until it ends. Errors (a
    /// reset peer, a malformed request hyper answered) end this connection
    /// only; so does a timeout.
    ///
    /// HTTP/1: a hyper connection while requests come, none while the
    /// connection is idle (see `conn`'s docs on retiring): wait for bytes
    /// holding no buffer, serve them with a fresh hyper connection until it
    /// has been idle for `retire_idle_after`, take it apart, and again.
    /// The transport is on the heap, and passed once: the task of an idle
    /// connection would otherwise keep a copy of it for each `async fn` it
    /// went through.
    ///
    /// With [`rehome`](Builder::rehome), the connection moves to another
    /// core at an idle moment if its `Balance` asks (see `conn`'s docs);
    /// `stream` (the socket, shared) is then taken.
    async fn serve<S, B>(
        &self,
        mut conn: Box<Conn<A::Conn>>,
        protocol: Protocol,
        service: S,
        state: &Rc<ConnState>,
        connections: &Connections,
        stream: &mut Option<Rc<TcpStream>>,
    ) where
        S: hyper::service::Service<Request<Body>, Response = Response<B>> + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + 'static,
        B::Error: Into<BoxError>,
    {
        conn::set_protocol(state, protocol);
        let mut service = Checked::new(service, self.limits, Rc::clone(state));
        if protocol == Protocol::Http2 {
            // On the heap: an HTTP/2 connection is twice an HTTP/1 one's
            // size, and every task would otherwise carry that room.
            let mut served = Box::pin(self.h2.serve_connection(conn, service));
            let _ = conn::drive(served.as_mut(), state, self.timeouts, connections, None).await;
            return;
        }
        // Only a plain connection moves: the others' state is not ours to
        // hand over (TLS).
        let rehome = self.rehome && TypeId::of::<A::Conn>() == TypeId::of::<Io>();
        loop {
            if rehome
                && !connections.is_finishing()
                && stream.as_ref().is_some_and(|stream| stream.rehome_wanted())
            {
                // On the heap: the task of a connection that never moves
                // keeps no room for it.
                match Box::pin(move_away(conn, state, stream)).await {
                    Some(back) => conn = back,
                    None => return,
                }
            }
            if !conn.has_unread() {
                let readable = pin!(Readable(&mut *conn));
                match conn::drive(readable, state, self.timeouts, connections, None).await {
                    Ended::Done(Ok(true)) => {}
                    Ended::Done(Ok(false) | Err(_)) | Ended::Stopped => return,
                }
            }
            // On the heap, and only while it serves: the task of an idle
            // connection keeps no room for it. (The transport goes in as it
            // is: no pointer between hyper and it on every read and write.)
            let mut served = Box::pin(self.h1.serve_connection(*conn, service));
            let watch = if rehome { stream.as_deref() } else { None };
            let ended =
                conn::drive(served.as_mut(), state, self.timeouts, connections, watch).await;
            if !matches!(ended, Ended::Done(Ok(()))) || !state.take_retired() {
                return;
            }
            #[cfg(test)]
            conn::RETIRED.set(conn::RETIRED.get() + 1);
            let parts = Pin::into_inner(served).into_parts();
            (conn, service) = (Box::new(parts.io), parts.service);
            conn.put_back(parts.read_buf);
        }
    }
}

impl<A: Accept> Builder<A> {
    /// The accept step (within the header read timeout) and the protocol:
    /// the acceptor's choice, the builder's, or the preface's; HTTP/1 for a
    /// connection that moved here with bytes `received` on another core
    /// (they are read first).
    async fn open(
        &self,
        io: Io,
        received: Bytes,
        state: &Rc<ConnState>,
        connections: &Connections,
    ) -> Option<(Box<Conn<A::Conn>>, Protocol)> {
        let accept = self.acceptor.accept(io);
        let accepted = match self.timeouts.header {
            Some(after) => percore_runtime::time::timeout(after, accept).await.ok()?,
            None => accept.await,
        }
        .ok()?;
        let mut conn = Box::new(Conn::new(accepted.conn, Rc::clone(state)));
        let moved = (!received.is_empty()).then_some(Protocol::Http1);
        conn.put_back(received);
        let protocol = match accepted.protocol.or(self.only).or(moved) {
            Some(protocol) => protocol,
            None => {
                let sniff = pin!(Sniff(&mut *conn));
                match conn::drive(sniff, state, self.timeouts, connections, None).await {
                    Ended::Done(Ok(protocol)) => protocol,
                    Ended::Done(Err(_)) | Ended::Stopped => return None,
                }
            }
        };
        Some((conn, protocol))
    }
}

/// Moves an idle HTTP/1 connection, retired, to the core its `Balance`
/// chose (see `conn`'s docs): stops its receive and hands the socket over
/// with every byte read and not served. `None` once it is gone (moved, or
/// broken meanwhile); else it is given back to serve on here, `stream`
/// shared again.
async fn move_away<C: 'static>(
    conn: Box<Conn<C>>,
    state: &Rc<ConnState>,
    stream: &mut Option<Rc<TcpStream>>,
) -> Option<Box<Conn<C>>> {
    let conn: Box<Conn<Io>> = match cast(conn) {
        Ok(conn) => conn,
        Err(conn) => return Some(conn),
    };
    let (mut io, mut received) = conn.into_parts();
    // hyper flushed already: this only makes sure no send holds the socket.
    poll_fn(|cx| hyper::rt::Write::poll_flush(Pin::new(&mut io), cx))
        .await
        .ok()?;
    received.extend(io.stop_reading().await.ok()?);
    drop(stream.take());
    let io = match io.into_stream() {
        Ok(socket) => match socket.rehome(received) {
            Ok(()) => return None,
            Err((socket, back)) => {
                received = back;
                Io::new(socket)
            }
        },
        // Still held (not reached: nothing is in flight).
        Err(shared) => Io::from_shared(shared),
    };
    *stream = Some(io.shared());
    let mut conn = Box::new(Conn::new(io, Rc::clone(state)));
    conn.put_back(Bytes::from(received));
    cast(conn).ok()
}

/// `value` as a `U`, if `T` is `U`: the transport of a plain connection as
/// [`Io`] and back.
fn cast<T: 'static, U: 'static>(value: Box<T>) -> Result<Box<U>, Box<T>> {
    if TypeId::of::<T>() != TypeId::of::<U>() {
        return Err(value);
    }
    let value: Box<dyn Any> = value;
    match value.downcast::<U>() {
        Ok(value) => Ok(value),
        Err(_) => unreachable!("a `T` is a `U` when their type ids are equal"),
    }
}

impl<I, S, B> Driven for http1::Connection<I, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    const RETIRES: bool = true;

    fn graceful(self: Pin<&mut Self>) -> bool {
        self.graceful_shutdown();
        true
    }

    /// hyper's graceful shutdown of an idle connection closes it at once,
    /// writing nothing (it flushes what it wrote before; `Conn` ignores its
    /// shutdown of the transport then). Were hyper not idle after all — a
    /// service still reading the request body after its response was
    /// written —, it would finish reading that body first, then end; the
    /// connection goes on all the same.
    fn retire(self: Pin<&mut Self>, state: &ConnState) {
        state.begin_retire();
        self.graceful_shutdown();
    }
}

impl<I, S, B> Driven for http2::Connection<I, S, Executor>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    Executor: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn graceful(self: Pin<&mut Self>) -> bool {
        self.graceful_shutdown();
        true
    }

    fn goes_away(&self) -> bool {
        true
    }
}
