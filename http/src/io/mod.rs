//! A percore stream as hyper's [`Read`](hyper::rt::Read) and
//! [`Write`](hyper::rt::Write), the way io_uring wants it: [`Io`].
//!
//! It is the one place the server, the client and TLS take their bytes from.
//!
//! - **Reads** come from one multishot receive into the core's
//!   provided-buffer ring (a [`RecvStream`]): the kernel picks a buffer of a
//!   ring every connection of the core shares only when data arrives, so a
//!   connection waiting for its next request holds no buffer and costs no
//!   SQE per read. hyper copies each buffer into its own read buffer and the
//!   ring buffer goes back at once; a tail hyper had no room for is kept
//!   until it asks again. When the ring runs dry (`ENOBUFS`), a connection
//!   waits for data with a one-shot poll (no buffer) and then receives it
//!   with a one-shot `recv` into a plain buffer, until ring buffers are back
//!   — slower, never stalled, no byte lost, and still no buffer held while
//!   waiting. A core that cannot have a ring (Linux before 5.19) reads that
//!   way throughout.
//! - **Writes**: hyper hands over borrowed slices, which io_uring cannot send
//!   from, so each write copies them (all of a `poll_write_vectored` call
//!   together; hyper itself flattens a response into one slice, see
//!   `is_write_vectored`) into one owned buffer from a free list the core's
//!   connections share, and submits one `send` of it;
//!   the write is reported done at once. Writes made while a send is in
//!   flight gather into the next buffer (up to 64 KiB, then they wait: a peer
//!   that does not read stops the writer). `poll_flush` waits until every
//!   byte has gone to the kernel; an error of a send is reported by the next
//!   write, flush or shutdown. Between responses a connection holds no send
//!   buffer either.
//!
//! Both directions work the same on the epoll backend, which emulates the
//! ring and the sends.
//!
//! Dropping an `Io` is safe at any point: ops in flight keep their buffers
//! and the stream's fd until their completions arrive.

mod op;
mod pool;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_core::Stream as _;
use hyper::rt::ReadBufCursor;
use percore_net::{BufRing, RecvStream, RingBuf, TcpStream, UnixStream};
use percore_runtime::Op;

/// Most bytes gathered into one send; a write beyond waits for the send in
/// flight.
const MAX_SEND: usize = 64 * 1024;
/// Receive errors after which a fresh receive is tried rather than failing
/// the connection (a fault-injected `EINTR`, say), at most this many in a row.
const MAX_RETRIES: u8 = 16;

/// A connected stream [`Io`] can carry: [`TcpStream`] or [`UnixStream`].
pub trait Stream: AsFd + AsRawFd + sealed::Sealed + 'static {
    /// A multishot receive into `ring` (the stream's own `recv_stream`).
    #[doc(hidden)]
    fn recv_stream(&self, ring: &BufRing) -> RecvStream;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for percore_net::TcpStream {}
    impl Sealed for percore_net::UnixStream {}
}

impl Stream for TcpStream {
    fn recv_stream(&self, ring: &BufRing) -> RecvStream {
        TcpStream::recv_stream(self, ring)
    }
}

impl Stream for UnixStream {
    fn recv_stream(&self, ring: &BufRing) -> RecvStream {
        UnixStream::recv_stream(self, ring)
    }
}

/// A connection as hyper's `Read`/`Write`: reads through the core's buffer
/// ring, writes gathered into one owned `send` (see the [module docs](self)).
///
/// `!Send`, like the stream: it belongs to the core it was made on.
///
/// # Examples
///
/// ```
/// use percore_http::io::Io;
/// use percore_net::{TcpListener, TcpStream};
///
/// percore::run(async {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let stream = TcpStream::connect(listener.local_addr()?).await?;
///     let io = Io::new(stream);
///     // Hand `io` to hyper: `hyper::client::conn::http1::handshake(io)`…
///     assert!(io.get_ref().peer_addr().is_ok());
///     std::io::Result::Ok(())
/// })??;
/// # std::io::Result::Ok(())
/// ```
pub struct Io<S: Stream = TcpStream> {
    stream: Rc<S>,
    read: Reader<S>,
    write: Writer<S>,
}

struct Reader<S: Stream> {
    /// The multishot receive, made on the first read.
    recv: Option<RecvStream>,
    /// Reading while the ring has no buffer to give (or the core has no
    /// ring). On the heap: rare, and a connection keeps no room for it.
    fallback: Option<Box<Fallback<S>>>,
    /// Received bytes hyper has not taken yet: `tail[pos..]`.
    tail: Option<RingBuf>,
    pos: usize,
    eof: bool,
    retries: u8,
}

/// How a connection reads without a ring buffer.
enum Fallback<S: Stream> {
    /// Waiting for data without a buffer…
    Poll(Op<op::PollIn<S>>),
    /// …then one one-shot receive of it.
    Plain(Op<op::Recv<S>>),
}

struct Writer<S: Stream> {
    /// Bytes taken from hyper and not yet submitted (no capacity when none).
    queued: Vec<u8>,
    /// The send in flight.
    sending: Option<Op<op::Send<S>>>,
    /// A send failed: reported by the next write, flush or shutdown.
    error: Option<io::Error>,
}

impl<S: Stream> Io<S> {
    /// Wraps a connected stream. Nothing is submitted until hyper reads or
    /// writes.
    pub fn new(stream: S) -> Io<S> {
        Io::from_shared(Rc::new(stream))
    }

    /// Wraps a stream some op may still hold ([`into_stream`](Io::into_stream)).
    pub(crate) fn from_shared(stream: Rc<S>) -> Io<S> {
        Io {
            stream,
            read: Reader {
                recv: None,
                fallback: None,
                tail: None,
                pos: 0,
                eof: false,
                retries: 0,
            },
            write: Writer {
                queued: Vec::new(),
                sending: None,
                error: None,
            },
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Bytes received and not yet read.
    pub fn buffered(&self) -> usize {
        self.read
            .tail
            .as_ref()
            .map_or(0, |tail| tail.len() - self.read.pos)
    }

    /// The stream, shared: it stays open while the returned handle lives,
    /// after the `Io` is gone (the server reads a rejected client's leftover
    /// bytes with it before closing).
    pub(crate) fn shared(&self) -> Rc<S> {
        Rc::clone(&self.stream)
    }

    /// Stops receiving without losing a byte, for the stream to be read
    /// elsewhere (another core, [`TcpStream::rehome`]): the receive in
    /// flight is cancelled, and what it and earlier receives brought that
    /// was not read yet is returned. Bytes that arrive later stay in the
    /// socket. Reading again starts a fresh receive.
    ///
    /// # Errors
    ///
    /// The receive failed (a reset peer): the bytes are lost with the
    /// connection.
    pub(crate) async fn stop_reading(&mut self) -> io::Result<Vec<u8>> {
        let mut received = Vec::new();
        if let Some(tail) = self.read.tail.take() {
            received.extend_from_slice(&tail[self.read.pos..]);
            self.read.pos = 0;
        }
        if let Some(mut recv) = self.read.recv.take() {
            recv.stop();
            while let Some(buf) = std::future::poll_fn(|cx| Pin::new(&mut recv).poll_next(cx)).await
            {
                received.extend_from_slice(&buf?);
            }
        }
        match self.read.fallback.take().map(|fallback| *fallback) {
            Some(Fallback::Poll(mut poll)) => {
                // Readable or cancelled: it brings no byte either way.
                poll.cancel();
                let _ = poll.await;
            }
            Some(Fallback::Plain(mut plain)) => {
                plain.cancel();
                let (res, buf) = plain.await;
                match res {
                    Ok(_) => received.extend_from_slice(&buf),
                    // Cancelled, or it did nothing: no byte came.
                    Err(err)
                        if err.raw_os_error() == Some(libc::ECANCELED) || is_retryable(&err) => {}
                    Err(err) => return Err(err),
                }
            }
            None => {}
        }
        self.read.retries = 0;
        Ok(received)
    }

    /// The stream back, once no op holds it any more (a send in flight, a
    /// receive not stopped) nor another handle ([`shared`](Io::shared));
    /// else it is given back shared, for [`from_shared`](Io::from_shared).
    /// What was received and not read is dropped: take it with
    /// [`stop_reading`](Io::stop_reading) first.
    pub(crate) fn into_stream(self) -> Result<S, Rc<S>> {
        let stream = Rc::clone(&self.stream);
        drop(self);
        Rc::try_unwrap(stream)
    }

    /// The next received buffer; `None` at end of stream.
    fn poll_next_buf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<RingBuf>>> {
        loop {
            match self.read.fallback.as_deref_mut() {
                Some(Fallback::Plain(plain)) => {
                    let (res, buf) = ready!(Pin::new(plain).poll(cx));
                    self.read.fallback = None;
                    return Poll::Ready(match res {
                        Ok(0) => Ok(None),
                        Ok(_) => Ok(Some(RingBuf::from(buf))),
                        Err(err) => Err(err),
                    });
                }
                Some(Fallback::Poll(poll)) => {
                    let res = ready!(Pin::new(poll).poll(cx));
                    self.read.fallback = None;
                    match res {
                        // Readable (or closed): a one-shot receive completes at once.
                        Ok(()) => self.start_plain(),
                        Err(err) if is_retryable(&err) && self.read.retries < MAX_RETRIES => {
                            self.read.retries += 1;
                        }
                        Err(err) => return Poll::Ready(Err(err)),
                    }
                    continue;
                }
                None => {}
            }
            let recv = match self.read.recv.as_mut() {
                Some(recv) => recv,
                None => match pool::ring() {
                    Some(ring) if ring.available() > 0 => {
                        self.read.recv.insert(self.stream.recv_stream(&ring))
                    }
                    // No ring buffer to wait with: wait for data holding no
                    // buffer either, then receive it into a plain one.
                    _ => {
                        let poll = op::PollIn::new(Rc::clone(&self.stream));
                        self.read.fallback = Some(Box::new(Fallback::Poll(Op::new(poll))));
                        continue;
                    }
                },
            };
            match ready!(Pin::new(recv).poll_next(cx)) {
                Some(Ok(buf)) => {
                    self.read.retries = 0;
                    if !buf.is_from_ring() {
                        // The ring ran dry and the stream fell back to a
                        // one-shot receive, now complete: nothing is in
                        // flight, and the next wait must not hold a plain
                        // buffer (it would, with this stream), so drop it.
                        self.read.recv = None;
                    }
                    return Poll::Ready(Ok(Some(buf)));
                }
                None => return Poll::Ready(Ok(None)),
                Some(Err(err)) if is_retryable(&err) && self.read.retries < MAX_RETRIES => {
                    // The receive did nothing: a fresh one loses no byte.
                    self.read.retries += 1;
                    self.read.recv = None;
                }
                Some(Err(err)) => return Poll::Ready(Err(err)),
            }
        }
    }

    fn start_plain(&mut self) {
        let buf = Vec::with_capacity(pool::RING_BUF_SIZE as usize);
        let recv = op::Recv::new(Rc::clone(&self.stream), buf);
        self.read.fallback = Some(Box::new(Fallback::Plain(Op::new(recv))));
    }

    /// Copies received bytes into `cursor`, receiving if none are in hand.
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        cursor: &mut ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if cursor.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if self.write.sending.is_some() || !self.write.queued.is_empty() {
            // Woken by a send's completion while hyper only reads: keep the
            // queued bytes going.
            let _ = self.poll_send(cx);
        }
        loop {
            if let Some(tail) = self.read.tail.as_ref() {
                let data = &tail[self.read.pos..];
                let n = data.len().min(cursor.remaining());
                cursor.put_slice(&data[..n]);
                self.read.pos += n;
                if self.read.pos == tail.len() {
                    // Back into the ring at once.
                    self.read.tail = None;
                    self.read.pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if self.read.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(self.poll_next_buf(cx))? {
                Some(buf) if buf.is_empty() => {}
                Some(buf) => self.read.tail = Some(buf),
                None => self.read.eof = true,
            }
        }
    }

    /// Drives the sends: submits queued bytes when no send is in flight and
    /// resubmits what a short send left. Ready when nothing is queued or in
    /// flight.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let Some(sending) = self.write.sending.as_mut() else {
                if self.write.queued.is_empty() {
                    return Poll::Ready(());
                }
                let buf = std::mem::take(&mut self.write.queued);
                self.start_send(buf, 0);
                continue;
            };
            let sent = ready!(Pin::new(sending).poll(cx));
            self.write.sending = None;
            match sent.res {
                Ok(n) if n > 0 && sent.pos + n < sent.buf.len() => {
                    self.start_send(sent.buf, sent.pos + n);
                }
                Ok(n) if n > 0 => pool::give_send_buf(sent.buf),
                Err(err) if is_retryable(&err) => self.start_send(sent.buf, sent.pos),
                res => {
                    // The stream is broken: what is queued will not go either.
                    pool::give_send_buf(sent.buf);
                    pool::give_send_buf(std::mem::take(&mut self.write.queued));
                    self.write.error = Some(match res {
                        Err(err) => err,
                        Ok(_) => io::Error::new(
                            io::ErrorKind::WriteZero,
                            "the socket took no byte of a send",
                        ),
                    });
                }
            }
        }
    }

    fn start_send(&mut self, buf: Vec<u8>, pos: usize) {
        let send = op::Send::new(Rc::clone(&self.stream), buf, pos);
        self.write.sending = Some(Op::new(send));
    }

    /// Takes what fits of `bufs` into the send buffer (one send for all of
    /// them) and starts sending it if no send is in flight.
    fn poll_write_bufs(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let ready = self.poll_send(cx).is_ready();
        if let Some(err) = self.write.error.take() {
            return Poll::Ready(Err(err));
        }
        let total: usize = bufs.iter().map(|buf| buf.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        let room = MAX_SEND.saturating_sub(self.write.queued.len());
        if room == 0 {
            // A full buffer waits for the send in flight (whose waker is set).
            return Poll::Pending;
        }
        if self.write.queued.capacity() == 0 {
            self.write.queued = pool::take_send_buf(total.min(room));
        }
        let mut taken = 0;
        for buf in bufs {
            let n = buf.len().min(room - taken);
            self.write.queued.extend_from_slice(&buf[..n]);
            taken += n;
            if taken == room {
                break;
            }
        }
        if ready {
            // Nothing in flight: submit now (polling the new send pushes its
            // SQE; it goes with this tick's enter).
            if self.poll_send(cx).is_ready() {
                if let Some(err) = self.write.error.take() {
                    return Poll::Ready(Err(err));
                }
            }
        }
        Poll::Ready(Ok(taken))
    }

    fn poll_flush_sends(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx));
        match self.write.error.take() {
            Some(err) => Poll::Ready(Err(err)),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_flush_sends(cx))?;
        let socket = socket2::SockRef::from(&*self.stream);
        match socket.shutdown(std::net::Shutdown::Write) {
            Err(err) if err.raw_os_error() == Some(libc::ENOTCONN) => Poll::Ready(Ok(())),
            res => Poll::Ready(res),
        }
    }
}

/// Ends a connection politely: shuts its writing side (the peer sees end of
/// stream), then reads and drops what the peer still sends — up to
/// `max_bytes`, for at most `max_time` — until it closes too. Closing with
/// unread bytes would make the kernel reset the connection, and the peer
/// could lose the last response it was sent (a 413 or 431 the server
/// answered without reading the request).
pub(crate) async fn linger<S: Stream>(stream: Rc<S>, max_bytes: usize, max_time: Duration) {
    let _ = socket2::SockRef::from(&*stream).shutdown(std::net::Shutdown::Write);
    let drain = async {
        let mut left = max_bytes;
        let mut buf = pool::take_send_buf(pool::RING_BUF_SIZE as usize);
        while left > 0 {
            buf.clear();
            let (res, back) = Op::new(op::Recv::new(Rc::clone(&stream), buf)).await;
            buf = back;
            match res {
                Ok(0) => break,
                Ok(n) => left = left.saturating_sub(n),
                Err(err) if is_retryable(&err) => {}
                Err(_) => break,
            }
        }
        pool::give_send_buf(buf);
    };
    let _ = percore_runtime::time::timeout(max_time, drain).await;
}

/// An error after which the op did nothing, so trying again loses nothing.
fn is_retryable(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
    )
}

impl<S: Stream> hyper::rt::Read for Io<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().poll_read_into(cx, &mut buf)
    }
}

impl<S: Stream> hyper::rt::Write for Io<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_bufs(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_bufs(cx, bufs)
    }

    /// No, though vectored writes are gathered into one send all the same:
    /// told yes, hyper queues a response's pieces and hands them over as
    /// slices, which measured about 480 more instructions per small
    /// response (callgrind, hello world: 9,807–9,850 against 9,345–9,346)
    /// than letting hyper flatten them into its own buffer first. A server
    /// of large bodies may prefer hyper's queue anyway (one copy less):
    /// `http1::Builder::writev(true)`.
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_sends(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_shutdown_write(cx)
    }
}

impl<S: Stream> Drop for Io<S> {
    fn drop(&mut self) {
        // A send in flight keeps its buffer until its completion (its `Op`
        // moves into the op table); only the queued one can go back now.
        pool::give_send_buf(std::mem::take(&mut self.write.queued));
    }
}

impl<S: Stream + fmt::Debug> fmt::Debug for Io<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io")
            .field("stream", &self.stream)
            .field("buffered", &self.buffered())
            .field("queued", &self.write.queued.len())
            .field("sending", &self.write.sending.is_some())
            .finish()
    }
}
