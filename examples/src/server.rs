//! `--addr`/`--cores`/`--grace` flags, one `SO_REUSEPORT` listener per core,
//! and a graceful shutdown on `SIGTERM` or `SIGINT`; [`Bound::serve_http`]
//! serves HTTP on those listeners with percore-http.
//!
//! percore-http's own [`Server`](percore::http::server::Server) does the same
//! binding and draining (the `axum_json` example uses it); the examples here
//! go through [`Builder::serve_listener`] instead so that every server prints
//! the same two lines — `NAME: listening on ADDR (N cores)` when it accepts,
//! and `NAME: shut down (N connections cut …)` when it returns — which tests
//! and scripts read.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::select;
use hyper::{Request, Response};
use percore::http::server::{Body, BoxError, Builder};
use percore::net::graceful::Connections;
use percore::net::tcp::ListenOptions;
use percore::net::TcpListener;
use percore::shutdown::Shutdown;

/// The flags of the server examples: `--addr 127.0.0.1:PORT --cores N --grace SECONDS`.
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    /// Where to listen (port 0 picks a free one, printed at start).
    pub addr: SocketAddr,
    /// How many cores, one listener each.
    pub cores: usize,
    /// After `SIGTERM` or `SIGINT`, how long connections may take to finish
    /// the requests they have before the server exits anyway.
    pub grace: Duration,
}

impl Flags {
    /// Reads the flags from the command line; defaults: `127.0.0.1:<port>`,
    /// all cores, a 5 s grace.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an unknown flag or a value that does not parse.
    pub fn parse(default_port: u16) -> io::Result<Flags> {
        let mut flags = Flags {
            addr: SocketAddr::from(([127, 0, 0, 1], default_port)),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            grace: Duration::from_secs(5),
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next().unwrap_or_default();
            let bad = |what: &str| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{flag} {value:?}: {what}"),
                )
            };
            match flag.as_str() {
                "--addr" => flags.addr = value.parse().map_err(|_| bad("not an address"))?,
                "--cores" => {
                    flags.cores = value.parse().map_err(|_| bad("not a number"))?;
                    if flags.cores == 0 {
                        return Err(bad("at least 1"));
                    }
                }
                "--grace" => {
                    let seconds: f64 = value.parse().map_err(|_| bad("not a number of seconds"))?;
                    flags.grace = Duration::try_from_secs_f64(seconds)
                        .map_err(|_| bad("a number of seconds, 0 or more"))?;
                }
                _ => return Err(bad("usage: --addr IP:PORT --cores N --grace SECONDS")),
            }
        }
        Ok(flags)
    }
}

/// Binds one `SO_REUSEPORT` listener per core on `flags.addr` (the kernel
/// spreads connections across them), prints one line, and runs
/// `serve(core, listener, connections)` on every core until `SIGTERM` or
/// `SIGINT`; then drains as [`Bound::serve`] says.
///
/// # Errors
///
/// Binding fails, the signal handlers cannot be installed, or the runtime
/// cannot start.
pub fn serve_per_core<F, Fut>(name: &str, flags: Flags, serve: F) -> io::Result<()>
where
    F: Fn(usize, TcpListener, Connections) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    bind(flags)?.serve(name, serve).map(drop)
}

/// One `SO_REUSEPORT` listener per core of `flags`, bound and not yet served.
///
/// # Errors
///
/// Binding fails (address in use…).
pub fn bind(flags: Flags) -> io::Result<Bound> {
    let options = ListenOptions::new().reuse_port(true).backlog(4096);
    let first = options.bind_tcp(flags.addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first.into_std()?];
    for _ in 1..flags.cores {
        listeners.push(options.bind_tcp(addr)?.into_std()?);
    }
    Ok(Bound {
        flags,
        addr,
        listeners,
    })
}

/// Listeners bound by [`bind`].
#[derive(Debug)]
pub struct Bound {
    flags: Flags,
    addr: SocketAddr,
    listeners: Vec<std::net::TcpListener>,
}

impl Bound {
    /// Where the listeners listen (the port chosen, for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Prints `"{name}: listening on …"` and runs `serve(core, listener,
    /// connections)` on every core until `SIGTERM` or `SIGINT`. Then, on
    /// every core: the listener closes at once (new connects are refused),
    /// every connection is told to finish (see [`Connections`]), and the
    /// server waits for them up to the grace period and returns the number
    /// of connections still open then (cut when the runtime drops them).
    ///
    /// # Errors
    ///
    /// The signal handlers cannot be installed, or the runtime cannot start.
    pub fn serve<F, Fut>(self, name: &str, serve: F) -> io::Result<usize>
    where
        F: Fn(usize, TcpListener, Connections) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let Bound {
            flags,
            addr,
            listeners,
        } = self;
        let listeners = Arc::new(Mutex::new(listeners));
        let runtime = percore::Runtime::builder().cores(flags.cores).build()?;
        let shutdown = Shutdown::new();
        // Listening for the signals before saying we listen: a SIGTERM right
        // after the line below drains the server instead of killing it.
        runtime.run_on(0, {
            let shutdown = shutdown.clone();
            move || async move { shutdown.begin_on_signals() }
        })??;
        println!("{name}: listening on {addr} ({} cores)", flags.cores);
        runtime.run_on_all({
            let shutdown = shutdown.clone();
            move |core| {
                let listener = listeners
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .pop();
                let connections = Connections::new(&shutdown);
                let served = listener
                    .map(|std| serve(core, TcpListener::from_std(std), connections.clone()));
                let shutdown = shutdown.clone();
                async move {
                    if let Some(served) = served {
                        // Dropping `served` closes the listener.
                        let _ = select(pin!(served), pin!(shutdown.begun())).await;
                    }
                    shutdown.begun().await;
                    connections.finish().await;
                    let _ = percore::time::timeout(flags.grace, shutdown.drained()).await;
                }
            }
        })?;
        // Every connection task holds a guard of the shutdown until it ends;
        // those still alive now are cut when the runtime drops them.
        let left = shutdown.active();
        drop(runtime);
        println!(
            "{name}: shut down ({left} connections cut at the end of the {:?} grace)",
            flags.grace
        );
        Ok(left)
    }

    /// Serves HTTP/1.1 and HTTP/2 (h2c) with percore-http on every core, as
    /// [`serve`](Bound::serve) says: each core serves its listener with
    /// `options` and the hyper service `service(core)` builds there — it
    /// need not be `Send`, so per-core state can live in an `Rc`. At the
    /// shutdown each connection finishes the request in hand and closes
    /// (HTTP/2: `GOAWAY`).
    ///
    /// # Errors
    ///
    /// As [`serve`](Bound::serve).
    pub fn serve_http<F, S, B>(self, name: &str, options: Builder, service: F) -> io::Result<usize>
    where
        F: Fn(usize) -> S + Send + Sync + 'static,
        S: hyper::service::Service<Request<Body>, Response = Response<B>> + Clone + 'static,
        S::Error: Into<BoxError>,
        B: hyper::body::Body<Data = Bytes> + 'static,
        B::Error: Into<BoxError>,
    {
        self.serve(name, move |core, listener, connections| {
            let options = options.clone();
            let service = service(core);
            async move {
                options.serve_listener(listener, service, connections).await;
            }
        })
    }
}
