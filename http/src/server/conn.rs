//! One connection's life: which protocol it speaks, hyper serving it, and
//! the server's connection timeouts around hyper.
//!
//! hyper's own HTTP/1 header timeout runs from the moment a connection waits
//! for a request, so it cannot tell an idle keep-alive connection from a
//! client dripping its head. The server keeps its own account instead, in a
//! [`ConnState`] the transport and the service update:
//!
//! - *idle* — no request in progress and no byte of the next one: the
//!   connection closes after the keep-alive timeout (an HTTP/2 one is first
//!   told to go away);
//! - *reading a head* — bytes arrived while idle (HTTP/1 only; on HTTP/2
//!   frames come and go while idle): closed after the header read timeout
//!   from the first byte;
//! - *busy* — a request was handed to the service and its response is not
//!   written yet: no connection timeout (the body read timeout is the
//!   request [`Body`](super::Body)'s).
//!
//! One timer per connection, armed at the earliest deadline and moved only
//! when a deadline comes *earlier*: when it fires for a deadline since moved
//! later, it is re-armed. A busy keep-alive connection costs no timer work
//! per request.
//!
//! **Retiring an idle HTTP/1 connection.** hyper's HTTP/1 connection keeps
//! an 8 KiB read buffer and an 8 KiB write buffer, and its state, for as
//! long as it lives. When a connection has been idle for a while (the
//! builder's `retire_idle_after`), the server takes hyper's connection apart
//! instead of keeping it: it asks it to finish (hyper, idle, closes at once
//! without writing anything), keeps the transport, the service and any byte
//! hyper had read but not parsed, and drops the rest. Then it waits for the
//! next byte holding no buffer (as before the first request), and serves
//! what follows with a fresh hyper connection on the same transport. hyper
//! flushes what it wrote before it shuts the transport down, and [`Conn`]
//! turns that shutdown into the flush alone while retiring: the writing
//! side stays open and no byte is lost. Not when a request or its response
//! said `Connection: close`, nor once hyper has begun a shutdown of its own
//! (`keep_alive(false)`, say): the connection is idle as soon as that
//! response's body is done, so a retire could begin while hyper is still
//! closing it, and the connection must end as hyper and the client expect.
//! Nor does a retire begin while hyper's output is not all out (its last
//! write or flush pending): hyper shuts down only after that flush.
//!
//! **Moving an idle HTTP/1 connection to another core** (the builder's
//! `rehome`, plain connections only). At each idle moment of hyper's
//! connection, [`drive`] asks the connection's `Balance` whether it should
//! move ([`TcpStream::rehome_wanted`]: two atomic loads); if so, hyper's
//! connection is retired as above. Then the transport's receive is stopped
//! without losing a byte ([`Io`](crate::io::Io)), and the socket goes to
//! the other core with every byte read and not served — what hyper had not
//! parsed, what the receive still brought — which that core's first hyper
//! connection reads first. If no move is wanted any more, the connection is
//! served on here.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::mem::MaybeUninit;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes};
use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};
use percore_net::graceful::Connections;
use percore_net::TcpStream;
use percore_runtime::time::{sleep_until, Instant, Sleep};

/// The first bytes of every HTTP/2 connection (RFC 9113, 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.0 or HTTP/1.1.
    Http1,
    /// HTTP/2 (h2c with prior knowledge, or h2 chosen by ALPN).
    Http2,
}

/// What the connection is waiting for, for its timeouts.
pub(crate) struct ConnState {
    /// Requests handed to the service whose responses are not written yet.
    active: Cell<usize>,
    /// When the connection last became idle.
    ///
    /// This and `head_since` are taken per request, so from
    /// [`Instant::recent`] (one clock read per round of the core's loop,
    /// not two per request): a timeout may then count from up to one round
    /// earlier — microseconds against timeouts of seconds.
    idle_since: Cell<Instant>,
    /// When the first byte of the next request head arrived, while idle.
    head_since: Cell<Option<Instant>>,
    /// Whether bytes read while idle start a head (HTTP/1, and before the
    /// protocol is known).
    track_heads: Cell<bool>,
    /// Set while the connection's task polls hyper: a request that ends
    /// then needs no wake-up.
    polling: Cell<bool>,
    /// The connection's task, woken when a request ends elsewhere (HTTP/2
    /// streams run in tasks of their own).
    waker: Cell<Option<Waker>>,
    /// Set while hyper's connection is being retired: [`Conn`] then ignores
    /// hyper's shutdown, and the connection goes on once hyper's ends.
    retiring: Cell<bool>,
    /// A request or its response asked to close the connection (hyper ends
    /// it after that response), or hyper began shutting the transport down
    /// on its own (`keep_alive(false)`, a close it decided): a retire that
    /// begins meanwhile (the connection is idle as soon as the response body
    /// is done) must not keep it open.
    closing: Cell<bool>,
    /// hyper's last write or flush was pending: what it wrote is not all
    /// out. No retire begins then — hyper may be about to shut the
    /// connection down once its output is out, which a retire would turn
    /// into a flush.
    write_pending: Cell<bool>,
}

impl ConnState {
    pub(crate) fn new() -> Rc<ConnState> {
        Rc::new(ConnState {
            active: Cell::new(0),
            idle_since: Cell::new(Instant::now()),
            head_since: Cell::new(None),
            track_heads: Cell::new(true),
            polling: Cell::new(false),
            waker: Cell::new(None),
            retiring: Cell::new(false),
            closing: Cell::new(false),
            write_pending: Cell::new(false),
        })
    }

    /// Marks hyper's connection as being retired.
    pub(crate) fn begin_retire(&self) {
        self.retiring.set(true);
    }

    /// Whether hyper's connection ended because it was retired: takes the
    /// mark (the next one starts afresh). Not when it ended on a request's
    /// or response's `Connection: close` (see `closing`).
    pub(crate) fn take_retired(&self) -> bool {
        self.retiring.replace(false) && !self.closing.get()
    }

    /// A request or response that closes the connection after it.
    pub(crate) fn set_closing(&self) {
        self.closing.set(true);
    }

    /// A retire in progress, and nothing asked to close: hyper's shutdown
    /// of the transport is only a flush.
    fn keeps_open(&self) -> bool {
        self.retiring.get() && !self.closing.get()
    }

    /// A request reached the service; it is in progress until the returned
    /// mark is dropped (with its response body).
    pub(crate) fn start_request(self: &Rc<ConnState>) -> Active {
        self.active.set(self.active.get() + 1);
        self.head_since.set(None);
        Active(Rc::clone(self))
    }

    /// No request in progress and no byte of the next one.
    fn is_idle(&self) -> bool {
        self.active.get() == 0 && self.head_since.get().is_none()
    }

    fn on_read(&self) {
        if self.track_heads.get() && self.active.get() == 0 && self.head_since.get().is_none() {
            self.head_since.set(Some(Instant::recent()));
        }
    }

    /// The next deadline and what expires then, if any; `idle` is what
    /// expires first when idle, and after how long ([`Timeouts::idle_first`]).
    /// (This runs about twice per request: one `Instant` sum, inlined.)
    #[inline]
    fn deadline(
        &self,
        timeouts: &Timeouts,
        idle: Option<(Duration, Expiry)>,
    ) -> Option<(Instant, Expiry)> {
        if self.active.get() > 0 {
            return None;
        }
        if let Some(since) = self.head_since.get() {
            return timeouts.header.map(|after| (since + after, Expiry::Head));
        }
        idle.map(|(after, expiry)| (self.idle_since.get() + after, expiry))
    }

    fn set_waker(&self, waker: &Waker) {
        let old = self.waker.take();
        let keep = old.filter(|old| old.will_wake(waker));
        self.waker.set(Some(keep.unwrap_or_else(|| waker.clone())));
    }
}

impl std::fmt::Debug for ConnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnState")
            .field("active", &self.active.get())
            .field("head_since", &self.head_since.get())
            .finish()
    }
}

/// A request in progress (see [`ConnState::start_request`]).
#[derive(Debug)]
pub(crate) struct Active(Rc<ConnState>);

impl Drop for Active {
    fn drop(&mut self) {
        let state = &self.0;
        state.active.set(state.active.get() - 1);
        if state.active.get() == 0 {
            state.idle_since.set(Instant::recent());
            state.head_since.set(None);
            if !state.polling.get() {
                if let Some(waker) = state.waker.take() {
                    waker.wake();
                }
            }
        }
    }
}

/// The connection timeouts (see the [module docs](self)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) header: Option<Duration>,
    pub(crate) idle: Option<Duration>,
    /// How long an HTTP/1 connection is idle before hyper's is retired.
    pub(crate) retire: Option<Duration>,
}

impl Timeouts {
    /// What expires first on an idle connection, and after how long: the
    /// retire (if `retire`) or the idle timeout.
    fn idle_first(&self, retire: bool) -> Option<(Duration, Expiry)> {
        match (self.idle, self.retire.filter(|_| retire)) {
            (Some(idle), Some(retire)) if retire < idle => Some((retire, Expiry::Retire)),
            (Some(idle), _) => Some((idle, Expiry::Idle)),
            (None, Some(retire)) => Some((retire, Expiry::Retire)),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Head,
    Idle,
    /// The end of the time an HTTP/2 connection told to go away gets.
    GoneAway,
    /// Time to retire an idle HTTP/1 connection's hyper state.
    Retire,
}

/// The transport as hyper sees it: the accepted connection, with the bytes
/// read to find the protocol (or to wait for the next request) and the
/// bytes a retired hyper connection had not parsed put back in front,
/// and reads reported to the connection's [`ConnState`].
pub(crate) struct Conn<T> {
    inner: T,
    state: Rc<ConnState>,
    /// Bytes a retired hyper connection had read and not parsed: handed to
    /// the next one first.
    rest: Bytes,
    /// `prefix[start..end]`: bytes read to find the protocol or while idle,
    /// not yet handed to hyper (after `rest`: they were read after it).
    prefix: [u8; 24],
    start: u8,
    end: u8,
}

impl<T: Read + Write + Unpin> Conn<T> {
    pub(crate) fn new(inner: T, state: Rc<ConnState>) -> Conn<T> {
        Conn {
            inner,
            state,
            rest: Bytes::new(),
            prefix: [0; 24],
            start: 0,
            end: 0,
        }
    }

    /// Puts back the bytes a retired hyper connection had read and not
    /// parsed: the next one gets them first. They start a head (and its
    /// timeout).
    pub(crate) fn put_back(&mut self, rest: Bytes) {
        debug_assert!(self.rest.is_empty() && self.start == self.end);
        if !rest.is_empty() {
            self.state.on_read();
            self.rest = rest;
        }
    }

    /// The transport back, with the bytes in hand that hyper has not read
    /// (to move the connection to another core).
    pub(crate) fn into_parts(self) -> (T, Vec<u8>) {
        let mut unread = Vec::from(&self.rest[..]);
        unread.extend_from_slice(&self.prefix[self.start as usize..self.end as usize]);
        (self.inner, unread)
    }

    /// Whether bytes are in hand that hyper has not read.
    pub(crate) fn has_unread(&self) -> bool {
        self.start < self.end || !self.rest.is_empty()
    }

    /// Waits for the next bytes holding no buffer of its own (they go into
    /// the prefix): `true` once some are in hand, `false` at end of stream.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if self.has_unread() {
            return Poll::Ready(Ok(true));
        }
        self.start = 0;
        self.end = 0;
        let mut buf = ReadBuf::new(&mut self.prefix);
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf.unfilled()))?;
        let n = buf.filled().len();
        if n == 0 {
            return Poll::Ready(Ok(false));
        }
        self.state.on_read();
        self.end = n as u8;
        Poll::Ready(Ok(true))
    }

    /// Reads until the first bytes tell the protocol: the HTTP/2 preface, or
    /// anything else (HTTP/1; also at end of stream).
    pub(crate) fn poll_sniff(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Protocol>> {
        loop {
            let end = self.end as usize;
            if self.prefix[..end] != PREFACE[..end] {
                return Poll::Ready(Ok(Protocol::Http1));
            }
            if end == PREFACE.len() {
                return Poll::Ready(Ok(Protocol::Http2));
            }
            let mut buf = ReadBuf::new(&mut self.prefix[end..]);
            std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf.unfilled()))?;
            let n = buf.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(Protocol::Http1));
            }
            self.state.on_read();
            self.end += n as u8;
        }
    }
}

impl<T: Read + Unpin> Conn<T> {
    /// Reads from the transport into `cursor`, noting the bytes' arrival.
    fn read_inner(
        &mut self,
        cx: &mut Context<'_>,
        cursor: &mut ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: the inner read only writes (initialises) bytes of the
        // unfilled part, never de-initialises one.
        let unfilled: &mut [MaybeUninit<u8>] = unsafe { cursor.as_mut() };
        let mut buf = ReadBuf::uninit(unfilled);
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf.unfilled()))?;
        let n = buf.filled().len();
        if n > 0 {
            self.state.on_read();
            // SAFETY: the inner read initialised these `n` bytes.
            unsafe { cursor.advance(n) };
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: Read + Unpin> Read for Conn<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut cursor: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.rest.is_empty() {
            let n = this.rest.len().min(cursor.remaining());
            cursor.put_slice(&this.rest[..n]);
            this.rest.advance(n);
            if this.rest.is_empty() {
                // Let go of the retired connection's read buffer.
                this.rest = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        if this.start < this.end {
            let rest = &this.prefix[this.start as usize..this.end as usize];
            let n = rest.len().min(cursor.remaining());
            cursor.put_slice(&rest[..n]);
            this.start += n as u8;
            if this.start < this.end || cursor.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            // With the prefix, whatever else is already received: hyper then
            // parses the first request from one read, instead of growing its
            // buffer for a second.
            return match this.read_inner(cx, &mut cursor) {
                Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                _ => Poll::Ready(Ok(())),
            };
        }
        this.read_inner(cx, &mut cursor)
    }
}

impl<T> Conn<T> {
    /// Notes whether a write or flush is waiting for the transport.
    fn note<R>(&self, poll: Poll<R>) -> Poll<R> {
        self.state.write_pending.set(poll.is_pending());
        poll
    }
}

impl<T: Write + Unpin> Write for Conn<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note(poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.note(poll)
    }

    /// Shuts the writing side, except while hyper's connection is retired:
    /// the connection goes on (hyper only flushes, then). A shutdown hyper
    /// began on its own stays one if a retire begins before it is done.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.state.keeps_open() {
            let poll = Pin::new(&mut this.inner).poll_flush(cx);
            return this.note(poll);
        }
        this.state.set_closing();
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Something the connection's timeouts and the server's shutdown drive: the
/// protocol sniff, then hyper's connection.
pub(crate) trait Driven: Future {
    /// Whether it can be retired while idle (hyper's HTTP/1 connection).
    const RETIRES: bool = false;

    /// Tells it to finish what is in hand and close; `false` if it should
    /// just stop now.
    fn graceful(self: Pin<&mut Self>) -> bool;

    /// Retires it while idle (see the [module docs](self)); only called
    /// when [`RETIRES`](Driven::RETIRES).
    fn retire(self: Pin<&mut Self>, _state: &ConnState) {}

    /// Whether an idle timeout should tell it to go away first (HTTP/2),
    /// rather than close it at once.
    fn goes_away(&self) -> bool {
        false
    }
}

/// How a driven phase ended.
#[derive(Debug)]
pub(crate) enum Ended<T> {
    /// It completed with this output.
    Done(T),
    /// A timeout closed it, or the server's shutdown stopped it before it
    /// served anything.
    Stopped,
}

/// Polls `phase` under the connection's timeouts and the server's shutdown.
/// With `rehome` (the stream of a retiring phase), it also asks at each idle
/// moment whether the connection should move to another core
/// ([`TcpStream::rehome_wanted`]), and retires the phase if so.
pub(crate) async fn drive<F: Driven>(
    mut phase: Pin<&mut F>,
    state: &ConnState,
    timeouts: Timeouts,
    connections: &Connections,
    rehome: Option<&TcpStream>,
) -> Ended<F::Output> {
    let mut finishing = pin!(connections.finishing());
    let mut shutting = false;
    let mut timer: Option<Sleep> = None;
    let mut gone_away: Option<Instant> = None;
    // The idle moment last asked about (once per idle moment, not per wake).
    let mut asked: Option<Instant> = None;
    let idle_first = timeouts.idle_first(F::RETIRES);
    let idle_only = timeouts.idle_first(false);
    poll_fn(|cx| loop {
        state.polling.set(true);
        let polled = phase.as_mut().poll(cx);
        state.polling.set(false);
        if let Poll::Ready(out) = polled {
            return Poll::Ready(Ended::Done(out));
        }
        if !shutting && finishing.as_mut().poll(cx).is_ready() {
            shutting = true;
            if !phase.as_mut().graceful() {
                return Poll::Ready(Ended::Stopped);
            }
            continue;
        }
        let due = match gone_away {
            Some(at) => Some((at, Expiry::GoneAway)),
            None => {
                let retire = !shutting && !state.retiring.get() && !state.write_pending.get();
                if let (Some(stream), true) = (rehome, retire) {
                    if state.is_idle() && asked != Some(state.idle_since.get()) {
                        asked = Some(state.idle_since.get());
                        if stream.rehome_wanted() {
                            // Polled again at once: hyper, idle, ends now.
                            phase.as_mut().retire(state);
                            continue;
                        }
                    }
                }
                let idle = if retire { idle_first } else { idle_only };
                state.deadline(&timeouts, idle)
            }
        };
        let Some((when, expiry)) = due else {
            state.set_waker(cx.waker());
            return Poll::Pending;
        };
        let sleep = timer.get_or_insert_with(|| sleep_until(when));
        if sleep.deadline() > when {
            sleep.reset(when);
        }
        if Pin::new(&mut *sleep).poll(cx).is_pending() {
            state.set_waker(cx.waker());
            return Poll::Pending;
        }
        if Instant::now() < when {
            // Fired for a deadline that has since moved later.
            sleep.reset(when);
            continue;
        }
        match expiry {
            // Polled again at once: hyper, idle, ends now.
            Expiry::Retire => phase.as_mut().retire(state),
            Expiry::Idle if phase.goes_away() && !shutting => {
                shutting = true;
                phase.as_mut().graceful();
                let grace = timeouts.header.unwrap_or(Duration::from_secs(5));
                gone_away = Some(Instant::now() + grace);
            }
            Expiry::Head | Expiry::Idle | Expiry::GoneAway => {
                return Poll::Ready(Ended::Stopped);
            }
        }
    })
    .await
}

/// The protocol sniff as a [`Driven`] phase.
pub(crate) struct Sniff<'a, T>(pub(crate) &'a mut Conn<T>);

impl<T: Read + Write + Unpin> Future for Sniff<'_, T> {
    type Output = io::Result<Protocol>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Protocol>> {
        self.get_mut().0.poll_sniff(cx)
    }
}

impl<T: Read + Write + Unpin> Driven for Sniff<'_, T> {
    fn graceful(self: Pin<&mut Self>) -> bool {
        false
    }
}

/// Waiting for the next request's first bytes, holding no buffer, as a
/// [`Driven`] phase: `true` once some are in hand, `false` at end of stream.
pub(crate) struct Readable<'a, T>(pub(crate) &'a mut Conn<T>);

impl<T: Read + Write + Unpin> Future for Readable<'_, T> {
    type Output = io::Result<bool>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        self.get_mut().0.poll_fill(cx)
    }
}

impl<T: Read + Write + Unpin> Driven for Readable<'_, T> {
    fn graceful(self: Pin<&mut Self>) -> bool {
        false
    }
}

/// Whether reads while idle start a head: not on HTTP/2.
pub(crate) fn set_protocol(state: &ConnState, protocol: Protocol) {
    state.track_heads.set(protocol == Protocol::Http1);
}

#[cfg(test)]
thread_local! {
    /// Hyper connections retired on this thread, for the tests.
    pub(crate) static RETIRED: Cell<u64> = const { Cell::new(0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport that takes every write, and whose shutdown is pending
    /// the first time it is polled.
    #[derive(Default)]
    struct Transport {
        flushes: u32,
        shutdowns: u32,
    }

    impl Read for Transport {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: ReadBufCursor<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl Write for Transport {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            this.shutdowns += 1;
            if this.shutdowns == 1 {
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        }
    }

    fn shutdown(conn: &mut Conn<Transport>) -> Poll<io::Result<()>> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(conn).poll_shutdown(&mut cx)
    }

    #[test]
    fn a_retire_turns_hypers_shutdown_into_a_flush() {
        let state = ConnState::new();
        let mut conn = Conn::new(Transport::default(), Rc::clone(&state));
        state.begin_retire();
        assert!(shutdown(&mut conn).is_ready());
        assert_eq!((conn.inner.flushes, conn.inner.shutdowns), (1, 0));
        assert!(state.take_retired(), "the connection goes on");
    }

    #[test]
    fn a_retire_that_begins_during_hypers_own_shutdown_does_not_stop_it() {
        let state = ConnState::new();
        let mut conn = Conn::new(Transport::default(), Rc::clone(&state));
        // hyper closes by itself (`keep_alive(false)`): the transport's
        // shutdown is pending when the connection's idle retire begins.
        assert!(shutdown(&mut conn).is_pending());
        state.begin_retire();
        assert!(shutdown(&mut conn).is_ready());
        assert_eq!((conn.inner.flushes, conn.inner.shutdowns), (0, 2));
        assert!(!state.take_retired(), "the connection ends");
    }
}
