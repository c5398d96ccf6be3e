//! [`Server`]: listeners bound on every core, served by a runtime of their
//! own until the shutdown, then drained.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Mutex;

use bytes::Bytes;
use futures_util::future::select;
use hyper::{Request, Response};
use hyper_util::service::TowerToHyperService;
use percore_net::balance::Balance;
use percore_net::graceful::Connections;
use percore_net::tcp::ListenOptions;
use percore_net::TcpListener;
use percore_runtime::shutdown::Shutdown;

use super::body::{Body, BoxError};
use super::builder::Builder;
use super::{Accept, Plain};

/// An HTTP server: one `SO_REUSEPORT` listener per core, bound; it serves
/// when told to ([`serve`](Server::serve) and its siblings), on a percore
/// runtime of its own, until its [`Shutdown`] begins (`SIGTERM`/`SIGINT`
/// by default). Then, on every core: the listener closes at once, every
/// connection finishes the request in hand and closes (HTTP/2: `GOAWAY`),
/// the server waits for them up to the grace period, cuts the rest, and
/// `serve` returns.
///
/// # Examples
///
/// An axum `Router`, served as it is:
///
/// ```no_run
/// use axum::routing::get;
/// use percore_http::server::Server;
///
/// let app = axum::Router::new().route("/", get(|| async { "Hello, world!" }));
/// Server::bind("127.0.0.1:8080")?.serve(app)?;
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug)]
#[must_use = "a Server does nothing until it serves"]
pub struct Server<A = Plain> {
    builder: Builder<A>,
    addr: SocketAddr,
    listeners: Vec<std::net::TcpListener>,
    runtime: Option<percore_runtime::Builder>,
}

impl Server {
    /// Binds a server with the default options (see [`Builder::new`]) on
    /// `addr`.
    ///
    /// # Errors
    ///
    /// As [`Builder::bind`].
    pub fn bind(addr: impl percore_net::ToSocketAddrs) -> io::Result<Server> {
        Builder::new().bind(addr)
    }

    /// The options, to set before binding.
    pub fn builder() -> Builder {
        Builder::new()
    }
}

impl<A: Accept> Server<A> {
    pub(super) fn bind_with(
        builder: Builder<A>,
        addr: impl percore_net::ToSocketAddrs,
    ) -> io::Result<Server<A>> {
        let options = ListenOptions::new()
            .reuse_port(true)
            .backlog(builder.backlog);
        let first = options.bind_tcp(addr)?;
        let addr = first.local_addr()?;
        let mut listeners = vec![first.into_std()?];
        for core in 1..builder.cores {
            let listener = options.bind_tcp(addr).map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("binding core {core}'s listener on {addr} (SO_REUSEPORT): {err}"),
                )
            })?;
            listeners.push(listener.into_std()?);
        }
        Ok(Server {
            builder,
            addr,
            listeners,
            runtime: None,
        })
    }

    /// The runtime to serve on (backend, fault injection, stall threshold…);
    /// its number of cores is set to the builder's. Default: a
    /// `percore::Runtime::builder()` as it comes (it reads `PERCORE_DRIVER`).
    pub fn runtime(mut self, runtime: percore_runtime::Builder) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Where the server listens (the port chosen, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shutdown that stops the server; begin it from any thread.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.builder.shutdown.clone()
    }

    /// Serves a `tower::Service` — an axum `Router`, a tower stack — on
    /// every core (each core gets a clone) until the shutdown; returns once
    /// drained.
    ///
    /// # Errors
    ///
    /// The runtime cannot start, or the signal handlers cannot be installed.
    pub fn serve<S, B>(self, service: S) -> io::Result<()>
    where
        S: tower_service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        S::Future: 'static,
        B: http_body::Body<Data = Bytes> + 'static,
        B::Error: Into<BoxError>,
    {
        let service = Mutex::new(service);
        self.serve_with(move || {
            let service = service
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone();
            TowerToHyperService::new(service)
        })
    }

    /// Serves a hyper `Service` (`hyper::service::service_fn`…) on every
    /// core (each core gets a clone) until the shutdown.
    ///
    /// # Errors
    ///
    /// As [`serve`](Server::serve).
    pub fn serve_hyper<S, B>(self, service: S) -> io::Result<()>
    where
        S: hyper::service::Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + 'static,
        B::Error: Into<BoxError>,
    {
        let service = Mutex::new(service);
        self.serve_with(move || {
            service
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone()
        })
    }

    /// Serves a hyper `Service` that `make` builds on each core, so it need
    /// not be `Send` (per-core state in an `Rc`, say), until the shutdown.
    ///
    /// # Errors
    ///
    /// As [`serve`](Server::serve).
    pub fn serve_with<F, S, B>(self, make: F) -> io::Result<()>
    where
        F: Fn() -> S + Send + Sync + 'static,
        S: hyper::service::Service<Request<Body>, Response = Response<B>> + Clone + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + 'static,
        B::Error: Into<BoxError>,
    {
        let Server {
            builder,
            addr: _,
            listeners,
            runtime,
        } = self;
        let runtime = runtime
            .unwrap_or_else(percore_runtime::Runtime::builder)
            .cores(builder.cores)
            .build()?;
        let shutdown = builder.shutdown.clone();
        if builder.signals {
            // Listening before serving: a SIGTERM right away drains the
            // server instead of killing it.
            let shutdown = shutdown.clone();
            runtime.run_on(0, move || async move { shutdown.begin_on_signals() })??;
        }
        let grace = builder.grace;
        let balance = (builder.balance || builder.rehome)
            .then(|| Balance::new(builder.cores).rehome(builder.rehome));
        let listeners = Mutex::new(listeners);
        let builder = Mutex::new(builder);
        runtime.run_on_all(move |_core| {
            let listener = listeners
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop()
                .map(TcpListener::from_std);
            let service = make();
            let builder = builder
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone();
            let shutdown = shutdown.clone();
            let balance = balance.clone();
            async move {
                let connections = Connections::new(&shutdown);
                if let Some(listener) = listener {
                    let served =
                        serve_on_core(builder, listener, balance, service, connections.clone());
                    // Dropping `served` closes the listener.
                    let _ = select(pin!(served), pin!(shutdown.begun())).await;
                }
                shutdown.begun().await;
                connections.finish().await;
                let _ = percore_runtime::time::timeout(grace, shutdown.drained()).await;
            }
        })?;
        Ok(())
    }
}

/// Serves `listener`'s connections on this core, or with a `balance`, the
/// connections the balance places here (from this core's listener or
/// handed by another core).
async fn serve_on_core<A, S, B>(
    builder: Builder<A>,
    listener: TcpListener,
    balance: Option<Balance>,
    service: S,
    connections: Connections,
) where
    A: Accept,
    S: hyper::service::Service<Request<Body>, Response = Response<B>> + Clone + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + 'static,
    B::Error: Into<BoxError>,
{
    let Some(balance) = balance else {
        return builder.serve_listener(listener, service, connections).await;
    };
    if builder
        .serve_balanced(&listener, &balance, service.clone(), connections.clone())
        .await
        .is_err()
    {
        // Not reached: the balance is made for as many cores as the
        // runtime has. Were it, this core would serve its own listener.
        builder.serve_listener(listener, service, connections).await;
    }
}
