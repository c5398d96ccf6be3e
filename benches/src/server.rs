//! percore's echo and hello-world HTTP servers, as `percore-bench serve` runs
//! them and as the demo and the benches start them in-process: one
//! `SO_REUSEPORT` listener per core, multishot accept, one task per connection,
//! each receiving through the core's provided-buffer ring (one multishot
//! `recv` per connection; a request costs one SQE, the send). With
//! [`Placement::Balance`], a core's fresh connections go to the core serving
//! the fewest ([`percore::net::balance`]); with [`Placement::Rehome`], also
//! connections move, between requests, from a core that waits for its CPU
//! to one that has room ([`Balance::rehome`]).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::select;
use futures_util::{Stream, StreamExt};
use percore::net::balance::{Balance, CoreLoad};
use percore::net::graceful::{Connections, Tracked};
use percore::net::tcp::ListenOptions;
use percore::net::{BufRing, TcpListener, TcpStream};
use percore::shutdown::Shutdown;
use percore::{Runtime, Stats};

use crate::cpu;
use crate::http::{Cutter, BAD_REQUEST, RESPONSE};

/// What a server speaks, and what the load generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Every byte read is written back.
    Echo,
    /// HTTP/1.1 keep-alive; every request is answered `Hello, world!`.
    Http,
}

impl Protocol {
    /// `echo` or `http`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Echo => "echo",
            Protocol::Http => "http",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which core serves a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// The core whose `SO_REUSEPORT` listener the kernel gave it to.
    #[default]
    Kernel,
    /// As the kernel placed it, unless that core serves more connections
    /// than another by more than one: then the core serving the fewest
    /// ([`Balance`]).
    Balance,
    /// As `Balance`, and connections move between requests from a core that
    /// gets too little CPU to one with room ([`Balance::rehome`]).
    Rehome,
}

/// What one core did, for `PERCORE_BENCH_PER_CORE` (see [`Server::per_core`]).
#[derive(Debug, Clone, Copy)]
pub struct CoreReport {
    /// Connections this core served (accepted here, or handed here).
    pub connections: u64,
    /// CPU time its thread used.
    pub cpu: Duration,
    /// Its counters.
    pub stats: Stats,
    /// With a [`Balance`]: connections it serves now, and (with `rehome`)
    /// its last load sample.
    pub balance: Option<(usize, Option<CoreLoad>)>,
}

/// A running percore server; dropping it stops its cores.
#[derive(Debug)]
pub struct Server {
    runtime: Runtime,
    addr: SocketAddr,
    shutdown: Shutdown,
    served: Arc<[AtomicU64]>,
    balance: Option<Balance>,
}

impl Server {
    /// Binds `cores` listeners on `addr` (port 0 picks one) and serves
    /// `protocol` on as many cores, placing connections as `placement`
    /// says; core `i` pins itself to the `first_cpu + i`-th allowed CPU when
    /// `first_cpu` is given.
    ///
    /// # Errors
    ///
    /// Binding fails (address in use…) or the runtime cannot start.
    pub fn start(
        protocol: Protocol,
        addr: SocketAddr,
        cores: usize,
        first_cpu: Option<usize>,
        placement: Placement,
    ) -> io::Result<Server> {
        let cores = cores.max(1);
        let options = ListenOptions::new().reuse_port(true).backlog(4096);
        let first = options.bind_tcp(addr)?;
        let addr = first.local_addr()?;
        let mut listeners = vec![first.into_std()?];
        for _ in 1..cores {
            listeners.push(options.bind_tcp(addr)?.into_std()?);
        }
        let runtime = Runtime::builder()
            .cores(cores)
            .stall_threshold(None)
            .build()?;
        let shutdown = Shutdown::new();
        let balance = match placement {
            Placement::Kernel => None,
            Placement::Balance => Some(Balance::new(cores)),
            Placement::Rehome => Some(Balance::new(cores).rehome(true)),
        };
        let served: Arc<[AtomicU64]> = (0..cores).map(|_| AtomicU64::new(0)).collect();
        for (core, listener) in listeners.into_iter().enumerate() {
            let cpu = first_cpu.and_then(|first| cpu::cpu_for(first, core));
            let shutdown = shutdown.clone();
            let balance = balance.clone();
            let served = Arc::clone(&served);
            let _detached = runtime.spawn_on(core, move || async move {
                if let Some(cpu) = cpu {
                    // Unpinned is still a correct server; the caller asked for best effort.
                    let _ = cpu::pin_to(cpu);
                }
                let connections = Connections::new(&shutdown);
                let listener = TcpListener::from_std(listener);
                let served = &served[core];
                // Dropping the accept loop closes the listener.
                let accepting = async {
                    match &balance {
                        Some(balance) => match balance.incoming(&listener) {
                            Ok(incoming) => {
                                accept_loop(protocol, incoming, &connections, served).await;
                            }
                            Err(err) => eprintln!("percore-bench: core {core}: {err}"),
                        },
                        None => {
                            let incoming = listener.incoming();
                            accept_loop(protocol, incoming, &connections, served).await;
                        }
                    }
                };
                let _ = select(pin!(accepting), pin!(shutdown.begun())).await;
                shutdown.begun().await;
                connections.finish().await;
            })?;
        }
        Ok(Server {
            runtime,
            addr,
            shutdown,
            served,
            balance,
        })
    }

    /// What each core did so far (index = core).
    ///
    /// # Errors
    ///
    /// A core has stopped.
    pub fn per_core(&self) -> io::Result<Vec<CoreReport>> {
        let all = self
            .runtime
            .run_on_all(|_| async { (cpu::thread_cpu_time(), percore::stats()) })?;
        Ok(all
            .into_iter()
            .zip(self.served.iter())
            .enumerate()
            .map(|(core, ((cpu, stats), served))| CoreReport {
                connections: served.load(Ordering::Relaxed),
                cpu,
                stats,
                balance: self.balance.as_ref().map(|balance| {
                    let live = balance.live().get(core).copied().unwrap_or(0);
                    (live, balance.load(core))
                }),
            })
            .collect())
    }

    /// Connections moved between cores between requests so far (with
    /// [`Placement::Rehome`]).
    pub fn moves(&self) -> u64 {
        self.balance.as_ref().map_or(0, Balance::moves)
    }

    /// Listens for `SIGTERM` and `SIGINT` (from now on they no longer end
    /// the process): the first begins the server's shutdown.
    ///
    /// # Errors
    ///
    /// The handlers cannot be installed, or core 0 has stopped.
    pub fn drain_on_signals(&self) -> io::Result<()> {
        drain_on_signals(&self.runtime, &self.shutdown)
    }

    /// Waits for the shutdown to begin, then up to `grace` for every
    /// connection to finish what it received; returns how many were still
    /// open (they close when the server is dropped).
    ///
    /// # Errors
    ///
    /// Core 0 has stopped.
    pub fn wait_for_shutdown(&self, grace: Duration) -> io::Result<usize> {
        wait_for_shutdown(&self.runtime, &self.shutdown, grace)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The [`Balance`] placing (and with [`Placement::Rehome`], moving) the
    /// connections; `None` with [`Placement::Kernel`].
    pub fn balance(&self) -> Option<&Balance> {
        self.balance.as_ref()
    }

    /// CPU time the server's cores have used so far, summed.
    ///
    /// # Errors
    ///
    /// A core has stopped.
    pub fn cpu_time(&self) -> io::Result<Duration> {
        let all = self
            .runtime
            .run_on_all(|_| async { cpu::thread_cpu_time() })?;
        Ok(all.into_iter().sum())
    }

    /// Every core's counters, summed (`core` is the number of cores;
    /// `driver` is the backend they run on, one for all).
    ///
    /// # Errors
    ///
    /// A core has stopped.
    pub fn stats(&self) -> io::Result<Stats> {
        summed_stats(&self.runtime)
    }
}

/// Every core's counters of `runtime`, summed (`core` is the number of
/// cores; `driver` is the backend they run on, one for all).
///
/// # Errors
///
/// A core has stopped.
pub(crate) fn summed_stats(runtime: &Runtime) -> io::Result<Stats> {
    let all = runtime.run_on_all(|_| async { percore::stats() })?;
    let mut sum = Stats::default();
    sum.core = all.len();
    for stats in all {
        sum.driver = stats.driver;
        sum.enters += stats.enters;
        sum.sqes += stats.sqes;
        sum.cqes += stats.cqes;
        sum.polls += stats.polls;
        sum.parks += stats.parks;
        sum.tasks += stats.tasks;
        sum.task_bytes += stats.task_bytes;
    }
    Ok(sum)
}

/// Buffers of each core's receive ring, and their size: 16 MiB per core, shared
/// by all its connections (an idle connection holds none).
const RING_BUFFERS: u16 = 1024;
const RING_BUFFER_SIZE: u32 = 16 * 1024;

async fn accept_loop(
    protocol: Protocol,
    mut incoming: impl Stream<Item = io::Result<TcpStream>> + Unpin,
    connections: &Connections,
    served: &AtomicU64,
) {
    let ring = match BufRing::new(RING_BUFFERS, RING_BUFFER_SIZE) {
        Ok(ring) => ring,
        Err(err) => {
            return eprintln!(
                "percore-bench: core {}: no receive buffer ring: {err}",
                percore::current_core()
            )
        }
    };
    while let Some(next) = incoming.next().await {
        match next {
            Ok(stream) => {
                served.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let ring = ring.clone();
                let stream = connections.track(stream);
                let _detached = match protocol {
                    Protocol::Echo => percore::spawn(echo(stream, ring, connections.clone())),
                    Protocol::Http => percore::spawn(http(stream, ring, connections.clone())),
                };
            }
            // `incoming` already backs off on EMFILE and the like; keep accepting.
            Err(_) => percore::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

/// Echoes until end of stream or an error (which ends this connection only):
/// each received ring buffer is sent back as it is. At a shutdown the reading
/// side is shut: what was received is echoed, then the stream ends. Between
/// two buffers, the connection moves to another core if its `Balance` asks
/// ([`rehome`]).
async fn echo(mut stream: Tracked, ring: BufRing, connections: Connections) {
    let mut first = stream.take_received();
    loop {
        if !first.is_empty() {
            let (res, _) = stream.write_all(std::mem::take(&mut first)).await;
            if res.is_err() {
                return;
            }
        }
        let mut incoming = stream.recv_stream(&ring);
        loop {
            let Some(Ok(buf)) = incoming.next().await else {
                return;
            };
            let (res, _buf) = stream.write_all(buf).await;
            if res.is_err() {
                return;
            }
            if stream.rehome_wanted() {
                break;
            }
        }
        match rehome(stream, incoming, &connections).await {
            Moved::Gone => return,
            Moved::Stayed(back, received) => (stream, first) = (back, received),
        }
    }
}

/// What became of a connection [`rehome`] tried to move.
enum Moved {
    /// Another core serves it now (or it ended meanwhile).
    Gone,
    /// Served here still, with the bytes the stopped receive brought.
    Stayed(Tracked, Vec<u8>),
}

/// Moves `stream` to the core its `Balance` chose: stops its receive, and
/// hands it over with what the receive still brought.
async fn rehome(
    stream: Tracked,
    mut incoming: percore::net::RecvStream,
    connections: &Connections,
) -> Moved {
    incoming.stop();
    let mut received = Vec::new();
    while let Some(buf) = incoming.next().await {
        match buf {
            Ok(buf) => received.extend_from_slice(&buf),
            Err(_) => return Moved::Gone,
        }
    }
    drop(incoming);
    let stream = match stream.untrack() {
        Ok(stream) => stream,
        Err(stream) => return Moved::Stayed(stream, received),
    };
    match stream.rehome(received) {
        Ok(()) => Moved::Gone,
        Err((stream, received)) => Moved::Stayed(connections.track(stream), received),
    }
}

/// Answers every complete request received so far in one write (pipelining),
/// then waits for more; ends at end of stream, `Connection: close`, a bad
/// request, or after answering what a read brought during a shutdown.
async fn http(mut stream: Tracked, ring: BufRing, connections: Connections) {
    let mut incoming = stream.recv_stream(&ring);
    let mut cutter = Cutter::new(false);
    cutter.buf = stream.take_received();
    let mut out = Vec::with_capacity(RESPONSE.len() * 4);
    let mut finish_now = false;
    loop {
        let mut close = finish_now;
        loop {
            match cutter.next_message() {
                Ok(Some(head)) => {
                    out.extend_from_slice(RESPONSE);
                    if head.close {
                        close = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    out.extend_from_slice(BAD_REQUEST);
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            let (res, back) = stream.write_all(out).await;
            if res.is_err() {
                return;
            }
            out = back;
            out.clear();
        }
        if close {
            let _ = stream.shutdown(std::net::Shutdown::Write).await;
            return;
        }
        if cutter.is_idle() && !finish_now && stream.rehome_wanted() {
            match rehome(stream, incoming, &connections).await {
                Moved::Gone => return,
                Moved::Stayed(back, received) => {
                    stream = back;
                    incoming = stream.recv_stream(&ring);
                    cutter.prepare_read();
                    cutter.buf.extend_from_slice(&received);
                    continue;
                }
            }
        }
        let Some(Ok(buf)) = incoming.next().await else {
            return;
        };
        cutter.prepare_read();
        cutter.buf.extend_from_slice(&buf);
        finish_now = connections.is_finishing();
    }
}

/// `shutdown` begins at the first `SIGTERM` or `SIGINT` (listened for on
/// `runtime`'s core 0): what every `serve` server of this crate does.
pub(crate) fn drain_on_signals(runtime: &Runtime, shutdown: &Shutdown) -> io::Result<()> {
    let shutdown = shutdown.clone();
    runtime.run_on(0, move || async move { shutdown.begin_on_signals() })?
}

/// Waits (on `runtime`'s core 0) for `shutdown` to begin, then up to
/// `grace` for its guards to drop; how many were still held.
pub(crate) fn wait_for_shutdown(
    runtime: &Runtime,
    shutdown: &Shutdown,
    grace: Duration,
) -> io::Result<usize> {
    let shutdown = shutdown.clone();
    runtime.run_on(0, move || async move {
        shutdown.begun().await;
        let _ = percore::time::timeout(grace, shutdown.drained()).await;
        shutdown.active()
    })
}
