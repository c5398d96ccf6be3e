//! Load-aware placement of accepted connections across a runtime's cores:
//! [`Balance`].
//!
//! With one `SO_REUSEPORT` listener per core, the kernel picks each
//! connection's core from a hash of its addresses, whatever that core already
//! serves: 64 connections over two cores often split 28 to 36, and a core
//! keeps its share however busy it is. A `Balance` is a table, shared by the
//! cores of one server, of how many connections each core serves. Every core
//! accepts from its own listener through [`Balance::incoming`] (in place of
//! [`TcpListener::incoming`]). A connection accepted on a core that serves
//! more than [`margin`](Balance::margin) connections above the least-loaded
//! core is handed to that core before anything is read from it: its fd goes
//! through the target core's queue, and the target's [`Balanced`] stream
//! yields it there. So each connection is served by the same accept loop —
//! with the state of the core it lands on — and lives on that one core until
//! it closes, or until it moves.
//!
//! **Moving connections between requests** ([`Balance::rehome`]): counts
//! cannot see a core that gets less CPU than another (it shares its CPU with
//! a busy thread). With `rehome` on, each core samples how long its thread
//! waits for a CPU, and one slowed down far more than another core with
//! room asks some of its connections to move there. A server asks
//! [`TcpStream::rehome_wanted`] at a moment a connection holds no request in
//! hand; if so, it stops the connection's receive
//! ([`RecvStream::stop`](crate::RecvStream::stop)) and
//! [`rehome`](TcpStream::rehome)s it with the bytes still received; the
//! other core's `Balanced` stream yields it like a fresh connection, and
//! serves [`take_received`](TcpStream::take_received) first. Only the fd and
//! those bytes cross threads; a connection is served by one core at a time.
//!
//! A connection is counted on its core from the moment it is placed until its
//! fd closes (or leaves percore-net through `into_std`), so the table follows
//! connections that end. A core that stops accepting (its `Balanced`
//! dropped) gets no more connections; a connection handed to it and not yet
//! taken is closed with its queue.
//!
//! What it does not see: connections still waiting in a core's listen
//! backlog (a core slow to accept looks less loaded than it is), and —
//! without `rehome` — how much CPU each core gets. docs/balance.md has the
//! measurements, and why this is opt-in.
//!
//! # Examples
//!
//! Two cores, one listener each, every connection accepted on core 0: with a
//! margin of zero, every second one is served on core 1.
//!
//! ```
//! use std::io::Read;
//! use futures_util::StreamExt;
//! use percore_net::balance::Balance;
//! use percore_net::tcp::ListenOptions;
//! use percore_net::TcpListener;
//! use percore_runtime::Runtime;
//!
//! let runtime = Runtime::builder().cores(2).build()?;
//! let balance = Balance::new(runtime.cores()).margin(0);
//! let mut addr = None;
//! for core in 0..runtime.cores() {
//!     let listener = ListenOptions::new().bind_tcp("127.0.0.1:0")?;
//!     addr.get_or_insert(listener.local_addr()?); // clients use core 0's
//!     let listener = listener.into_std()?;
//!     let balance = balance.clone();
//!     // `run_on` returns once this core takes connections; a task of the
//!     // core accepts them from then on.
//!     runtime.run_on(core, move || async move {
//!         let listener = TcpListener::from_std(listener);
//!         let mut incoming = balance.incoming(&listener)?;
//!         let _detached = percore_runtime::spawn(async move {
//!             while let Some(Ok(stream)) = incoming.next().await {
//!                 // Served here, on the core the connection was placed on.
//!                 let _detached = percore_runtime::spawn(async move {
//!                     let reply = vec![b'0' + percore_runtime::current_core() as u8];
//!                     stream.write_all(reply).await.0?;
//!                     // Open (and counted on this core) until the client closes.
//!                     stream.read(Vec::with_capacity(1)).await.0
//!                 });
//!             }
//!         });
//!         std::io::Result::Ok(())
//!     })??;
//! }
//! let addr = addr.expect("bound");
//! let mut served_on = Vec::new();
//! let mut clients = Vec::new();
//! for _ in 0..4 {
//!     let mut client = std::net::TcpStream::connect(addr)?;
//!     let mut core = [0];
//!     client.read_exact(&mut core)?;
//!     served_on.push(core[0]);
//!     clients.push(client); // kept open while the next ones connect
//! }
//! assert_eq!(served_on, b"0101");
//! assert_eq!(balance.live(), [2, 2]);
//! assert_eq!(balance.handoffs(), 2);
//! # std::io::Result::Ok(())
//! ```

use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_core::Stream;
use percore_runtime::channel::mpsc;

mod load;

use crate::incoming::Incoming;
use crate::socket::Socket;
use crate::{TcpListener, TcpStream};

/// The default [`Balance::margin`]: connections a core may serve above the
/// least-loaded core before it hands new ones over.
const MARGIN: usize = 1;

/// The default [`Balance::queue`]: handed connections a core may have waiting.
const QUEUE: usize = 128;

/// A table of how many connections each core of a server serves, and the
/// queues through which cores hand fresh connections to each other; see the
/// [module docs](self).
///
/// `Send + Sync` and cheap to clone: make one per server, before the cores
/// start, and give every core a clone.
#[derive(Clone)]
pub struct Balance {
    table: Arc<Table>,
    margin: usize,
    queue: usize,
}

/// What the cores share.
struct Table {
    cores: Box<[Slot]>,
    /// Connections handed from one core to another, in all.
    handoffs: AtomicU64,
    /// Tells registrations apart, so a `Balanced` unregisters only itself.
    next_token: AtomicU64,
    /// Whether cores move connections by their load ([`Balance::rehome`]).
    rehome: AtomicBool,
    /// Connections moved between requests ([`TcpStream::rehome`]), in all.
    moves: AtomicU64,
    /// What the cores' load samples are stamped against.
    epoch: std::time::Instant,
}

impl Table {
    /// Milliseconds since the table was made (wrapping after 49 days).
    fn stamp_ms(&self) -> u32 {
        self.epoch.elapsed().as_millis() as u32
    }

    /// Queues `handoff` for `core`, or gives it back if that core stopped
    /// taking connections or its queue is full.
    fn hand(&self, core: usize, handoff: Handoff) -> Result<(), Handoff> {
        let Some(slot) = self.cores.get(core) else {
            return Err(handoff);
        };
        let queue = slot.lock();
        match &*queue {
            Some((_, sender)) => sender.try_send(handoff).map_err(|err| err.into_inner()),
            None => Err(handoff),
        }
    }
}

/// One core's entry.
struct Slot {
    /// Connections placed on the core and not yet closed.
    live: AtomicUsize,
    /// Whether the core takes connections (a `Balanced` is registered);
    /// written under `queue`'s lock, read without it to choose a core.
    open: AtomicBool,
    /// The sender of the registered `Balanced`'s queue, with its token.
    queue: Mutex<Option<(u64, mpsc::Sender<Handoff>)>>,
    /// Connections the core should move at their next idle moment
    /// ([`TcpStream::rehome_wanted`]), and to which core, in one word
    /// ([`shed`]); each move takes one.
    shed: AtomicU64,
    /// The core's last load sample, packed with its time ([`load::Load`]);
    /// 0 until the first.
    load: AtomicU64,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Option<(u64, mpsc::Sender<Handoff>)>> {
        // The lock guards a plain swap or send: a panic cannot leave it torn.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A connection on its way to another core, counted there already: fresh,
/// or moved between requests with the bytes read and not yet served (in
/// its seat).
struct Handoff {
    fd: OwnedFd,
    seat: Seat,
}

/// One connection counted on one core of a [`Balance`]; dropping it (when
/// the connection's fd closes) takes the count back.
pub(crate) struct Seat {
    table: Arc<Table>,
    core: usize,
    /// Bytes the previous core read from a moved connection and did not
    /// serve ([`TcpStream::take_received`]).
    received: Cell<Vec<u8>>,
}

impl Seat {
    fn new(table: &Arc<Table>, core: usize) -> Seat {
        table.cores[core].live.fetch_add(1, Ordering::Relaxed);
        Seat {
            table: Arc::clone(table),
            core,
            received: Cell::new(Vec::new()),
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.table.cores[self.core]
            .live
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Seat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seat").field("core", &self.core).finish()
    }
}

impl Balance {
    /// A table for a runtime of `cores` cores (at least one), with no
    /// connections, a margin of 1 and queues of 128.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_net::balance::Balance;
    ///
    /// let balance = Balance::new(4);
    /// assert_eq!(balance.live(), [0, 0, 0, 0]);
    /// ```
    pub fn new(cores: usize) -> Balance {
        let cores = (0..cores.max(1))
            .map(|_| Slot {
                live: AtomicUsize::new(0),
                open: AtomicBool::new(false),
                queue: Mutex::new(None),
                shed: AtomicU64::new(0),
                load: AtomicU64::new(0),
            })
            .collect();
        Balance {
            table: Arc::new(Table {
                cores,
                handoffs: AtomicU64::new(0),
                next_token: AtomicU64::new(0),
                rehome: AtomicBool::new(false),
                moves: AtomicU64::new(0),
                epoch: std::time::Instant::now(),
            }),
            margin: MARGIN,
            queue: QUEUE,
        }
    }

    /// How many more connections than the least-loaded core a core may
    /// serve before it hands a new one over (default 1). Zero keeps the
    /// cores' counts equal at the price of a hand-off for every second
    /// connection when one core accepts them all; a large margin leaves
    /// placement to the kernel.
    ///
    /// Applies to the connections accepted through the `Balanced` streams
    /// of this clone and of the clones made from it.
    pub fn margin(mut self, connections: usize) -> Balance {
        self.margin = connections;
        self
    }

    /// Moves connections between requests, from a core that gets too little
    /// CPU to one that has room (default off). For every clone of this
    /// table, from now on.
    ///
    /// Connection counts cannot see a core that shares its CPU with another
    /// busy thread — a load generator on the same machine, another server:
    /// its connections wait for it while another core idles. With `rehome`
    /// on, each core watches how long its thread waits for a CPU (its
    /// scheduler statistics, sampled every 10 ms while its connections ask);
    /// a core that waits for a far larger share of the time it wants a CPU
    /// than another core with room asks an eighth of its connections at a
    /// time to move there — in the end all of them, if the other core has
    /// room for them all. A connection moves only where its server asks for
    /// it — between requests, holding no request in hand:
    /// [`TcpStream::rehome_wanted`] and [`TcpStream::rehome`] — and lives
    /// on one core at a time.
    ///
    /// Where `/proc/thread-self/schedstat` cannot be read (no procfs in the
    /// container, a kernel before 3.17 or without scheduler statistics), a
    /// core takes no samples and moves nothing by itself;
    /// [`move_connections`](Balance::move_connections) still works.
    pub fn rehome(self, on: bool) -> Balance {
        self.table.rehome.store(on, Ordering::Relaxed);
        self
    }

    /// Asks core `from` to move up to `connections` of its connections to
    /// core `to`, at their next idle moment (as [`rehome`](Balance::rehome)
    /// does by itself, which replaces this request at its next decision).
    /// For draining a core by hand, and for tests. Out-of-range cores, and
    /// `from == to`, are ignored.
    pub fn move_connections(&self, from: usize, to: usize, connections: usize) {
        let valid = to < self.table.cores.len() && to != from;
        if let (Some(slot), true) = (self.table.cores.get(from), valid) {
            slot.shed.store(shed(to, connections), Ordering::Relaxed);
        }
    }

    /// Connections moved from one core to another between requests
    /// ([`TcpStream::rehome`]) so far.
    pub fn moves(&self) -> u64 {
        self.table.moves.load(Ordering::Relaxed)
    }

    /// Core `core`'s load as its last sample saw it, with
    /// [`rehome`](Balance::rehome) on: `None` before its first sample (or
    /// for a core beyond the table). A core samples only while its
    /// connections ask, so an idle core's sample grows old
    /// ([`CoreLoad::age`]).
    pub fn load(&self, core: usize) -> Option<CoreLoad> {
        let slot = self.table.cores.get(core)?;
        let (load, stamp) = load::Load::unpack(slot.load.load(Ordering::Relaxed))?;
        let age_ms = self.table.stamp_ms().wrapping_sub(stamp);
        Some(CoreLoad {
            waiting: load.waiting,
            running: load.busy,
            slowdown: load.slowdown(),
            age: std::time::Duration::from_millis(u64::from(age_ms)),
        })
    }

    /// How many handed connections may wait for a core before others serve
    /// their new connections themselves rather than queue more (default
    /// 128, at least 1). Applies to the `Balanced` streams made from this
    /// clone and its clones.
    pub fn queue(mut self, connections: usize) -> Balance {
        self.queue = connections.max(1);
        self
    }

    /// The connections of `listener`, accepted on the calling core and
    /// placed on whichever core of this table should serve them: the stream
    /// yields those that stay here and those other cores hand here. Use it
    /// in place of [`TcpListener::incoming`]; one per core (a second one on
    /// the same core takes the first one's place for handed connections).
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if the calling core is
    /// beyond the cores this table was made for.
    ///
    /// # Panics
    ///
    /// Outside a percore runtime.
    pub fn incoming(&self, listener: &TcpListener) -> io::Result<Balanced> {
        let core = percore_runtime::current_core();
        let Some(slot) = self.table.cores.get(core) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "core {core} is beyond the {} cores this Balance was made for: \
                     make it with Balance::new(runtime.cores())",
                    self.table.cores.len()
                ),
            ));
        };
        let (sender, handed) = mpsc::channel(self.queue);
        let token = self.table.next_token.fetch_add(1, Ordering::Relaxed);
        {
            let mut queue = slot.lock();
            *queue = Some((token, sender));
            slot.open.store(true, Ordering::Release);
        }
        Ok(Balanced {
            accepted: Incoming::new(listener.socket().shared_fd().clone(), |socket| socket),
            handed: Some(handed),
            balance: self.clone(),
            core,
            token,
        })
    }

    /// Connections each core serves now (index = core): placed on it,
    /// handed to it and not yet taken, and not yet closed.
    pub fn live(&self) -> Vec<usize> {
        self.table
            .cores
            .iter()
            .map(|slot| slot.live.load(Ordering::Relaxed))
            .collect()
    }

    /// Connections handed from one core to another so far.
    pub fn handoffs(&self) -> u64 {
        self.table.handoffs.load(Ordering::Relaxed)
    }

    /// The core a connection accepted on `here` should be served on.
    fn choose(&self, here: usize) -> usize {
        let loads = self.table.cores.iter().map(|slot| {
            slot.open
                .load(Ordering::Acquire)
                .then(|| slot.live.load(Ordering::Relaxed))
        });
        place(here, loads, self.margin)
    }
}

/// A core's load, from its thread's scheduler statistics, smoothed over a
/// few samples ([`Balance::load`]); fractions in thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreLoad {
    /// Of wall time, runnable but waiting for a CPU another thread held.
    pub waiting: u16,
    /// Of wall time, running.
    pub running: u16,
    /// Of the time the core wanted a CPU, the share it waited: what
    /// [`Balance::rehome`] compares.
    pub slowdown: u16,
    /// How long ago the sample was taken.
    pub age: std::time::Duration,
}

impl fmt::Debug for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balance")
            .field("live", &self.live())
            .field("handoffs", &self.handoffs())
            .field("moves", &self.moves())
            .field("margin", &self.margin)
            .field("queue", &self.queue)
            .finish()
    }
}

/// Moving a connection between requests: see [`Balance::rehome`].
impl TcpStream {
    /// Whether the [`Balance`] that placed this connection wants it served
    /// on another core now ([`Balance::rehome`],
    /// [`Balance::move_connections`]); `false` for a connection no
    /// `Balance` placed. Ask at a moment the connection holds no request in
    /// hand (a response written, the next request not begun), then stop
    /// receiving ([`RecvStream::stop`](crate::RecvStream::stop)) and
    /// [`rehome`](TcpStream::rehome) it with whatever the receive still
    /// brought.
    ///
    /// Cheap enough to ask after every request: two atomic loads, and once
    /// per 10 ms on a core with `rehome` on, a sample of its thread's
    /// scheduler statistics (one `pread(2)`).
    pub fn rehome_wanted(&self) -> bool {
        let Some(seat) = self.socket().shared_fd().seat() else {
            return false;
        };
        let table = &seat.table;
        if table.rehome.load(Ordering::Relaxed) {
            load::tick(table, seat.core);
        }
        let word = table.cores[seat.core].shed.load(Ordering::Relaxed);
        moves_left(word) > 0 && target(word) != seat.core
    }

    /// Hands this connection to the core its [`Balance`] chose, with
    /// `received`: bytes read from it and not served yet, which the other
    /// core serves first ([`take_received`](TcpStream::take_received)).
    /// There its `Balanced` stream yields it, like a fresh connection.
    ///
    /// # Errors
    ///
    /// Gives both back, to be served here as before, if no move is wanted
    /// any more (another connection took the last one), if the connection
    /// is still shared (a `RecvStream`, a split half or an op in flight
    /// holds it: drop them first), or if the chosen core stopped taking
    /// connections or its queue is full.
    pub fn rehome(self, received: Vec<u8>) -> Result<(), (TcpStream, Vec<u8>)> {
        let Some(seat) = self.socket().shared_fd().seat() else {
            return Err((self, received));
        };
        let table = Arc::clone(&seat.table);
        let here = seat.core;
        let slot = &table.cores[here];
        // Takes one move, and learns where to, from the same word.
        let taken = slot
            .shed
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |word| {
                (moves_left(word) > 0).then(|| word - 1)
            });
        let to = match taken {
            Ok(word) if target(word) != here => target(word),
            _ => return Err((self, received)),
        };
        // Dropping the socket here gives its seat on this core back.
        let fd = match self.into_socket().into_unique_fd() {
            Ok(fd) => fd,
            Err(socket) => return Err((TcpStream::from_socket(socket), received)),
        };
        let seat = Seat::new(&table, to);
        seat.received.set(received);
        // Counted before the target can serve it, as a hand-off is.
        table.moves.fetch_add(1, Ordering::Relaxed);
        match table.hand(to, Handoff { fd, seat }) {
            Ok(()) => Ok(()),
            Err(Handoff { fd, seat }) => {
                table.moves.fetch_sub(1, Ordering::Relaxed);
                let received = seat.received.take();
                drop(seat);
                let mut socket = Socket::from_fd(fd);
                let _ = socket.set_seat(Seat::new(&table, here));
                Err((TcpStream::from_socket(socket), received))
            }
        }
    }

    /// The bytes another core read from this connection and did not serve
    /// before it moved here ([`rehome`](TcpStream::rehome)): to be served
    /// before anything read from now on. Empty for a connection that did
    /// not move, and after the first call.
    pub fn take_received(&self) -> Vec<u8> {
        self.socket()
            .shared_fd()
            .seat()
            .map(|seat| seat.received.take())
            .unwrap_or_default()
    }
}

/// A slot's `shed` word: `moves` connections to move to core `to` (the
/// count in the low 32 bits, so taking one is a decrement).
fn shed(to: usize, moves: usize) -> u64 {
    ((to as u64) << 32) | moves.min(u32::MAX as usize) as u64
}

/// The moves left in a `shed` word.
fn moves_left(word: u64) -> u64 {
    word & u64::from(u32::MAX)
}

/// The core a `shed` word moves connections to.
fn target(word: u64) -> usize {
    (word >> 32) as usize
}

/// Where a connection accepted on core `here` should be served, given each
/// core's load in core order (`None`: the core takes no connections):
/// `here`, unless its load exceeds the least load by more than `margin`;
/// then the least-loaded core (the first of equals). A pure function, so
/// the rule is tested without cores or sockets.
fn place(here: usize, loads: impl Iterator<Item = Option<usize>>, margin: usize) -> usize {
    let mut here_load = None;
    let mut least: Option<(usize, usize)> = None;
    for (core, load) in loads.enumerate() {
        let Some(load) = load else { continue };
        if core == here {
            here_load = Some(load);
        }
        if least.is_none_or(|(_, min)| load < min) {
            least = Some((core, load));
        }
    }
    match (here_load, least) {
        (Some(load), Some((core, min))) if load > min.saturating_add(margin) => core,
        _ => here,
    }
}

/// One core's connections from a [`Balance`]: accepted here and kept, or
/// handed here by another core. Made by [`Balance::incoming`]; dropping it
/// closes this core to new connections (the listener's accept is cancelled
/// as [`Incoming`]'s is, and connections handed here and not yet taken are
/// closed).
///
/// # Cancel safety
///
/// As [`Incoming`]: dropping a `next()` future loses no connection.
#[must_use = "streams do nothing unless polled"]
pub struct Balanced {
    accepted: Incoming<Socket>,
    /// `None` once another `Balanced` took this core's place.
    handed: Option<mpsc::Receiver<Handoff>>,
    balance: Balance,
    core: usize,
    token: u64,
}

impl Balanced {
    /// The connection in `socket`, counted on this core.
    fn keep(&self, mut socket: Socket) -> TcpStream {
        // A fresh socket is not shared yet, so the seat always fits; were it
        // shared, the connection would only go uncounted.
        let _ = socket.set_seat(Seat::new(&self.balance.table, self.core));
        TcpStream::from_socket(socket)
    }

    /// A connection handed here by another core, counted here already.
    fn take(handoff: Handoff) -> TcpStream {
        let Handoff { fd, seat } = handoff;
        let mut socket = Socket::from_fd(fd);
        let _ = socket.set_seat(seat);
        TcpStream::from_socket(socket)
    }

    /// Places a connection accepted here: the stream to yield if it stays,
    /// `None` if another core took it.
    fn place(&self, socket: Socket) -> Option<TcpStream> {
        let target = self.balance.choose(self.core);
        if target == self.core {
            return Some(self.keep(socket));
        }
        let fd = match socket.into_unique_fd() {
            Ok(fd) => fd,
            Err(socket) => return Some(self.keep(socket)),
        };
        let handoff = Handoff {
            fd,
            seat: Seat::new(&self.balance.table, target),
        };
        // Counted before the target can see it, so a reader that saw it
        // served there sees it counted too.
        let handoffs = &self.balance.table.handoffs;
        handoffs.fetch_add(1, Ordering::Relaxed);
        match self.balance.table.hand(target, handoff) {
            Ok(()) => None,
            // The target stopped or is full: serve it here after all.
            Err(Handoff { fd, seat }) => {
                handoffs.fetch_sub(1, Ordering::Relaxed);
                drop(seat);
                Some(self.keep(Socket::from_fd(fd)))
            }
        }
    }
}

impl Stream for Balanced {
    type Item = io::Result<TcpStream>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<TcpStream>>> {
        let this = self.get_mut();
        if let Some(handed) = &mut this.handed {
            match handed.poll_recv(cx) {
                Poll::Ready(Some(handoff)) => {
                    return Poll::Ready(Some(Ok(Balanced::take(handoff))))
                }
                // Another `Balanced` registered on this core: it takes them now.
                Poll::Ready(None) => this.handed = None,
                Poll::Pending => {}
            }
        }
        loop {
            match Pin::new(&mut this.accepted).poll_next(cx) {
                Poll::Ready(Some(Ok(socket))) => {
                    if let Some(stream) = this.place(socket) {
                        return Poll::Ready(Some(Ok(stream)));
                    }
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for Balanced {
    fn drop(&mut self) {
        let slot = &self.balance.table.cores[self.core];
        let mut queue = slot.lock();
        if matches!(&*queue, Some((token, _)) if *token == self.token) {
            *queue = None;
            slot.open.store(false, Ordering::Release);
        }
        // `handed` drops after this: connections still queued close with it.
    }
}

impl fmt::Debug for Balanced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balanced")
            .field("core", &self.core)
            .field("accepted", &self.accepted)
            .field("balance", &self.balance)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::place;

    fn on(here: usize, loads: &[Option<usize>], margin: usize) -> usize {
        place(here, loads.iter().copied(), margin)
    }

    #[test]
    fn stays_while_within_the_margin() {
        assert_eq!(on(0, &[Some(0), Some(0)], 0), 0);
        assert_eq!(on(0, &[Some(3), Some(2)], 1), 0);
        assert_eq!(on(1, &[Some(5), Some(9)], 4), 1);
    }

    #[test]
    fn moves_to_the_least_loaded_beyond_the_margin() {
        assert_eq!(on(0, &[Some(1), Some(0)], 0), 1);
        assert_eq!(on(0, &[Some(4), Some(2)], 1), 1);
        assert_eq!(on(2, &[Some(7), Some(3), Some(9), Some(5)], 1), 1);
    }

    #[test]
    fn the_first_of_equals_wins() {
        assert_eq!(on(3, &[Some(2), Some(1), Some(1), Some(5)], 0), 1);
    }

    #[test]
    fn skips_cores_that_take_no_connections() {
        assert_eq!(on(0, &[Some(5), None], 0), 0);
        assert_eq!(on(0, &[Some(5), None, Some(4)], 0), 2);
    }

    #[test]
    fn a_core_not_in_the_table_keeps_its_connection() {
        assert_eq!(on(1, &[Some(0), None], 0), 1);
        assert_eq!(on(5, &[Some(0), Some(0)], 0), 5);
    }

    #[test]
    fn a_huge_margin_never_overflows() {
        assert_eq!(on(0, &[Some(usize::MAX), Some(0)], usize::MAX), 0);
    }
}
