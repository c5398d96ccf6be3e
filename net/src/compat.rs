//! `Compat`: a stream behind the ecosystem's poll-based I/O traits.
//!
//! Crates written for `futures-io`, tokio or hyper read into a borrowed `&mut
//! [u8]` and return `Pending` when nothing is ready. io_uring needs memory it
//! owns until the completion, so [`Compat`] keeps one buffer per direction and
//! the op in flight on it, and copies between those buffers and the caller's:
//!
//! - reading receives into the read buffer (one `recv` SQE per refill) and hands
//!   out its bytes until they are used up;
//! - writing copies into the write buffer, starts a `send` of it and reports the
//!   bytes written at once; the next write (or a flush) waits until the kernel
//!   has taken the whole buffer — so at most one buffer is ever pending, and a
//!   peer that does not read stops the writer (backpressure). An error of a send
//!   is reported by the next write or flush.
//!
//! Dropping a `Compat` with an op in flight is safe: the op keeps its buffer and
//! the fd until the kernel is done ([`Op`]'s contract), then frees both.
//!
//! The trait impls are behind the crate features `futures-io`, `tokio`, `hyper`.

use std::fmt;
use std::future::Future;
use std::io;
use std::mem;
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use percore_runtime::{IoBuf, Op, Slice};

use crate::op;
use crate::socket::Socket;

/// Size of each direction's buffer unless told otherwise.
pub(crate) const DEFAULT_CAPACITY: usize = 16 * 1024;

/// A [`TcpStream`](crate::TcpStream) or [`UnixStream`](crate::UnixStream) with poll-based `AsyncRead`/`AsyncWrite`
/// (futures-io, tokio) and `hyper::rt::Read`/`Write`, per the crate's features.
///
/// Made by [`TcpStream::into_compat`](crate::TcpStream::into_compat) or
/// [`UnixStream::into_compat`](crate::UnixStream::into_compat).
///
/// # Examples
///
/// ```
/// use percore_net::compat::Compat;
/// use percore_net::UnixStream;
///
/// let (a, _b) = UnixStream::pair()?;
/// let io: Compat<UnixStream> = a.into_compat();
/// let _stream: UnixStream = io.into_inner();
/// # std::io::Result::Ok(())
/// ```
pub struct Compat<S> {
    stream: S,
    socket: Socket,
    read: ReadState,
    write: WriteState,
}

enum ReadState {
    /// `buf[pos..]` are received bytes not yet handed out.
    Idle { buf: Vec<u8>, pos: usize },
    /// A `recv` into the (cleared) buffer is in flight.
    Reading(Op<op::Recv<Vec<u8>>>),
}

enum WriteState {
    /// Nothing in flight; the buffer is empty.
    Idle(Vec<u8>),
    /// A `send` of the slice's bytes is in flight; bytes before it are sent.
    Writing(Op<op::Send<Slice<Vec<u8>>>>),
    /// A send failed; the error goes to the next write or flush.
    Failed(Vec<u8>, io::Error),
}

impl<S> Compat<S> {
    pub(crate) fn build(stream: S, socket: Socket, capacity: usize) -> Compat<S> {
        let capacity = capacity.max(1);
        Compat {
            stream,
            socket,
            read: ReadState::Idle {
                buf: Vec::with_capacity(capacity),
                pos: 0,
            },
            write: WriteState::Idle(Vec::with_capacity(capacity)),
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The wrapped stream back. Bytes received but not yet read, and bytes
    /// written but not yet flushed, are lost: flush first.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

// The poll helpers below are what the feature-gated trait impls call.
#[cfg_attr(
    not(any(feature = "futures-io", feature = "tokio", feature = "hyper")),
    allow(dead_code)
)]
impl<S> Compat<S> {
    /// Received bytes not handed out yet, receiving more if there are none;
    /// empty at end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        loop {
            match &mut self.read {
                ReadState::Idle { buf, pos } if *pos < buf.len() => break,
                ReadState::Idle { buf, .. } => {
                    let mut buf = mem::take(buf);
                    buf.clear();
                    self.read = ReadState::Reading(self.socket.read(buf));
                }
                ReadState::Reading(recv) => {
                    let (res, buf) = ready!(Pin::new(recv).poll(cx));
                    let eof = matches!(res, Ok(0));
                    self.read = ReadState::Idle { buf, pos: 0 };
                    match res {
                        Err(err) => return Poll::Ready(Err(err)),
                        Ok(_) if eof => return Poll::Ready(Ok(&[])),
                        Ok(_) => {}
                    }
                }
            }
        }
        match &self.read {
            ReadState::Idle { buf, pos } => Poll::Ready(Ok(&buf[*pos..])),
            ReadState::Reading(_) => Poll::Ready(Ok(&[])),
        }
    }

    /// Marks `n` bytes of what [`poll_fill`](Compat::poll_fill) gave as used.
    fn consume(&mut self, n: usize) {
        if let ReadState::Idle { buf, pos } = &mut self.read {
            *pos = (*pos + n).min(buf.len());
        }
    }

    /// Copies received bytes into `dst`; `Ok(0)` at end of stream.
    #[cfg(feature = "futures-io")]
    fn poll_read_slice(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        if dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let data = ready!(self.poll_fill(cx))?;
        let n = data.len().min(dst.len());
        dst[..n].copy_from_slice(&data[..n]);
        self.consume(n);
        Poll::Ready(Ok(n))
    }

    /// Waits until nothing is in flight and the write buffer is empty; reports
    /// (once) the error of a send that failed since the last call.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match &mut self.write {
                WriteState::Idle(_) => return Poll::Ready(Ok(())),
                WriteState::Writing(send) => {
                    let (res, slice) = ready!(Pin::new(send).poll(cx));
                    self.write = self.after_send(res, slice);
                }
                WriteState::Failed(buf, _) => {
                    let idle = WriteState::Idle(mem::take(buf));
                    if let WriteState::Failed(_, err) = mem::replace(&mut self.write, idle) {
                        return Poll::Ready(Err(err));
                    }
                }
            }
        }
    }

    /// The state after a send of `slice` completed with `res`: the rest of the
    /// slice in flight, or idle, or failed.
    fn after_send(&self, res: io::Result<usize>, slice: Slice<Vec<u8>>) -> WriteState {
        let (begin, end) = (slice.begin(), slice.end());
        let mut buf = slice.into_inner();
        match res {
            Ok(n) if n > 0 && begin + n < end => {
                WriteState::Writing(self.socket.write(buf.slice(begin + n..end)))
            }
            Ok(n) if n > 0 => {
                buf.clear();
                WriteState::Idle(buf)
            }
            Ok(_) => {
                buf.clear();
                WriteState::Failed(buf, io::ErrorKind::WriteZero.into())
            }
            Err(err) => {
                buf.clear();
                WriteState::Failed(buf, err)
            }
        }
    }

    /// Takes up to one buffer of `src` and starts sending it.
    fn poll_write_slice(&mut self, cx: &mut Context<'_>, src: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        if src.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let WriteState::Idle(buf) = &mut self.write else {
            return Poll::Ready(Ok(0));
        };
        let mut buf = mem::take(buf);
        let n = src.len().min(buf.capacity().max(1));
        buf.extend_from_slice(&src[..n]);
        self.write = WriteState::Writing(self.socket.write(buf.slice(0..n)));
        // Poll once to submit the send: it cannot complete before the next tick,
        // but an error submitting it is reported now, with nothing taken.
        match self.poll_drain(cx) {
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Ready(Ok(())) | Poll::Pending => Poll::Ready(Ok(n)),
        }
    }

    fn poll_shutdown_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        match self.socket.sock_ref().shutdown(Shutdown::Write) {
            Err(err) if err.raw_os_error() == Some(libc::ENOTCONN) => Poll::Ready(Ok(())),
            res => Poll::Ready(res),
        }
    }
}

#[cfg(feature = "futures-io")]
mod futures_io_impls {
    use super::*;

    impl<S: Unpin> futures_io::AsyncRead for Compat<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().poll_read_slice(cx, buf)
        }
    }

    impl<S: Unpin> futures_io::AsyncBufRead for Compat<S> {
        fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
            self.get_mut().poll_fill(cx)
        }

        fn consume(self: Pin<&mut Self>, amt: usize) {
            self.get_mut().consume(amt);
        }
    }

    impl<S: Unpin> futures_io::AsyncWrite for Compat<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().poll_write_slice(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_drain(cx)
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_shutdown_write(cx)
        }
    }
}

#[cfg(feature = "tokio")]
mod tokio_impls {
    use super::*;
    use tokio::io::ReadBuf;

    impl<S: Unpin> tokio::io::AsyncRead for Compat<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let data = ready!(this.poll_fill(cx))?;
            let n = data.len().min(buf.remaining());
            buf.put_slice(&data[..n]);
            this.consume(n);
            Poll::Ready(Ok(()))
        }
    }

    impl<S: Unpin> tokio::io::AsyncBufRead for Compat<S> {
        fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
            self.get_mut().poll_fill(cx)
        }

        fn consume(self: Pin<&mut Self>, amt: usize) {
            self.get_mut().consume(amt);
        }
    }

    impl<S: Unpin> tokio::io::AsyncWrite for Compat<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().poll_write_slice(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_drain(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_shutdown_write(cx)
        }
    }
}

/// percore's timers as hyper's [`Timer`](hyper::rt::Timer), so hyper's timeouts
/// (`header_read_timeout`, keep-alive) work on percore: pass it to the
/// connection builder's `timer`. Its sleeps run on the core that polls them.
#[cfg(feature = "hyper")]
#[derive(Debug, Clone, Copy, Default)]
pub struct HyperTimer;

#[cfg(feature = "hyper")]
mod hyper_impls {
    use std::time::{Duration, Instant};

    use super::*;
    use hyper::rt::ReadBufCursor;
    use percore_runtime::time::{sleep, sleep_until, Sleep};

    impl hyper::rt::Timer for HyperTimer {
        fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
            Box::pin(HyperSleep(sleep(duration)))
        }

        fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
            Box::pin(HyperSleep(sleep_until(deadline.into())))
        }

        /// The core's clock, so hyper's deadlines agree with paused time.
        fn now(&self) -> Instant {
            percore_runtime::time::Instant::now().into_std()
        }
    }

    /// A percore [`Sleep`] as a `hyper::rt::Sleep`.
    struct HyperSleep(Sleep);

    impl Future for HyperSleep {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            Pin::new(&mut self.get_mut().0).poll(cx)
        }
    }

    impl hyper::rt::Sleep for HyperSleep {}

    impl<S: Unpin> hyper::rt::Read for Compat<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            mut buf: ReadBufCursor<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let data = ready!(this.poll_fill(cx))?;
            let n = data.len().min(buf.remaining());
            buf.put_slice(&data[..n]);
            this.consume(n);
            Poll::Ready(Ok(()))
        }
    }

    impl<S: Unpin> hyper::rt::Write for Compat<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().poll_write_slice(cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_drain(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().poll_shutdown_write(cx)
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Compat<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buffered = match &self.read {
            ReadState::Idle { buf, pos } => buf.len() - pos,
            ReadState::Reading(_) => 0,
        };
        f.debug_struct("Compat")
            .field("stream", &self.stream)
            .field("buffered", &buffered)
            .field("writing", &!matches!(self.write, WriteState::Idle(_)))
            .finish()
    }
}
