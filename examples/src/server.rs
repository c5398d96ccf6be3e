//! `--addr`/`--cores`/`--grace` flags, one `SO_REUSEPORT` listener per core,
//! and a graceful shutdown on `SIGTERM` or `SIGINT`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::select;
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
        let left = runtime.run_on_all({
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
                    connections.live()
                }
            }
        })?;
        let left: usize = left.into_iter().sum();
        println!(
            "{name}: shut down ({left} connections cut at the end of the {:?} grace)",
            flags.grace
        );
        Ok(left)
    }
}
