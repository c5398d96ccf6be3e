//! The receive path of streams (TCP, Unix): the one place bytes come in.
//!
//! Two ways in: each `read` is one `IORING_OP_RECV` (or `READV`) into the
//! caller's buffer; a [`RecvStream`] is one multishot `recv` that picks buffers
//! from a provided-buffer ring ([`BufRing`]) as data arrives, so a connection
//! waiting for data holds no buffer at all and costs no SQE per read.

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use percore_runtime::buf_ring::{BufRing, Bundle, RingBuf};
use percore_runtime::{BufResult, IoBufMut, MultiOp, Op};
use socket2::SockAddr;

use crate::op::{self, One, SharedFd};
use crate::socket::Socket;

impl Socket {
    /// A multishot receive into `ring`'s buffers.
    pub(crate) fn recv_stream(&self, ring: &BufRing) -> RecvStream {
        RecvStream {
            fd: self.shared_fd().clone(),
            ring: ring.clone(),
            multi: None,
            bundle: None,
            fallback: None,
            done: false,
            stopping: false,
        }
    }

    /// One `recv(2)` into `buf`'s spare capacity: the hot read path, one SQE.
    pub(crate) fn read<B: IoBufMut>(&self, buf: B) -> Op<op::Recv<B>> {
        Op::new(op::Recv::new(self.shared_fd().clone(), buf))
    }

    /// One `readv(2)` filling each buffer's spare capacity in order.
    pub(crate) fn readv<B: IoBufMut>(&self, bufs: Vec<B>) -> Op<op::Readv<B>> {
        Op::new(op::Readv::new(self.shared_fd().clone(), bufs))
    }

    /// Reads until `buf` is full (`bytes_init == bytes_total`).
    ///
    /// `UnexpectedEof` if the peer closes first; the bytes read so far stay in `buf`.
    pub(crate) async fn read_exact<B: IoBufMut>(&self, buf: B) -> BufResult<(), B> {
        let mut buf = buf;
        loop {
            let (init, total) = (buf.bytes_init(), buf.bytes_total());
            if init >= total {
                return (Ok(()), buf);
            }
            let (res, slice) = self.read(buf.slice(init..total)).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let err = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("peer closed after {init} of {total} bytes"),
                    );
                    return (Err(err), buf);
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return (Err(err), buf),
            }
        }
    }

    /// One `recvmsg(2)` into `buf`, with the sender's address.
    pub(crate) async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SockAddr), B> {
        let (res, One(buf)) = Op::new(op::RecvMsg::new(self.shared_fd().clone(), One(buf))).await;
        (res.map(|got| (got.len, got.from)), buf)
    }

    /// One `recvmsg(2)` into `buf` with room for `max_fds` fds sent along
    /// (`SCM_RIGHTS`, received close-on-exec).
    ///
    /// `MSG_CTRUNC` (more fds came than there was room for) is an
    /// `InvalidData` error: the fds that fit are closed (the kernel closed the
    /// rest), and the bytes received stay in `buf`.
    pub(crate) async fn recv_fds<B: IoBufMut>(
        &self,
        buf: B,
        max_fds: usize,
    ) -> BufResult<(usize, Vec<OwnedFd>), B> {
        let op = op::RecvMsg::with_fds(self.shared_fd().clone(), One(buf), max_fds);
        let (res, One(buf)) = Op::new(op).await;
        let res = res.and_then(|got| {
            if got.flags & libc::MSG_CTRUNC != 0 {
                let closed = got.fds.len();
                drop(got.fds);
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the peer sent more fds than the {max_fds} there was room for \
                         (MSG_CTRUNC): the {closed} that fit were closed, the kernel \
                         closed the rest; the {} bytes received are in the buffer",
                        got.len
                    ),
                ));
            }
            Ok((got.len, got.fds))
        });
        (res, buf)
    }

    /// One `recvmsg(2)` scattering into `bufs`, with the sender and `msg_flags`.
    pub(crate) async fn recv_msg<B: IoBufMut>(
        &self,
        bufs: Vec<B>,
    ) -> BufResult<op::Received, Vec<B>> {
        Op::new(op::RecvMsg::new(self.shared_fd().clone(), bufs)).await
    }
}

/// The bytes a stream receives, as they arrive: a `Stream` of [`RingBuf`]s
/// filled by one multishot `recv` from a provided-buffer ring ([`BufRing`]).
///
/// Made by `recv_stream(&ring)` on a stream or read half. The stream ends at
/// end of stream (the peer shut down its side), or after yielding an error.
/// Each buffer goes back to the ring when dropped; an echo can write it out as
/// it is (`RingBuf` is an `IoBuf`).
///
/// Where the kernel has receive bundles (Linux 6.10,
/// [`Features::RECV_BUNDLE`](percore_runtime::Features::RECV_BUNDLE)), one
/// completion may fill several ring buffers when more than one buffer's worth
/// of bytes was waiting; they are yielded one by one, in order, as without.
///
/// While it waits, the connection holds no buffer: a server with 100,000 idle
/// connections holds only the ring. If the ring runs out (the application holds
/// every buffer), receives do not stall: each read falls back to a one-shot
/// `recv` into a fresh `Vec` of the ring's buffer size, and the multishot
/// receive is re-armed once buffers are back.
///
/// # Cancel safety
///
/// Dropping it cancels the receive; bytes the kernel received meanwhile are
/// dropped (their buffers go back to the ring), so the position in the byte
/// stream is lost.
///
/// # Examples
///
/// ```
/// use futures_util::StreamExt;
/// use percore_net::{BufRing, UnixStream};
///
/// percore_runtime::run(async {
///     let ring = BufRing::new(64, 4096)?;
///     let (a, b) = UnixStream::pair()?;
///     let (res, _) = a.write_all(b"hello".to_vec()).await;
///     res?;
///     drop(a);
///     let mut incoming = b.recv_stream(&ring);
///     let mut got = Vec::new();
///     while let Some(buf) = incoming.next().await {
///         got.extend_from_slice(&buf?);
///     }
///     assert_eq!(got, b"hello");
///     assert_eq!(ring.available(), ring.capacity());
///     std::io::Result::Ok(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
#[must_use = "a RecvStream receives nothing unless polled"]
pub struct RecvStream {
    fd: SharedFd,
    ring: BufRing,
    multi: Option<MultiOp<op::RecvMulti>>,
    /// Buffers of the last completion not yielded yet (a completion of a
    /// receive bundle may fill several).
    bundle: Option<Bundle>,
    /// A one-shot receive, used while the ring has no buffer to give. On
    /// the heap: rare, and a stream keeps no room for it.
    fallback: Option<Box<Op<op::Recv<Vec<u8>>>>>,
    done: bool,
    /// [`stop`](RecvStream::stop) was called: end once what is in flight
    /// has come back, re-arming nothing.
    stopping: bool,
}

impl RecvStream {
    /// The ring this stream receives into.
    pub fn ring(&self) -> &BufRing {
        &self.ring
    }

    /// Stops receiving without losing a byte: the receive in flight is
    /// cancelled, and the stream yields what arrived before the cancel took
    /// effect, then ends (`None`). Bytes that arrive later stay in the
    /// socket, for the next reader: another `RecvStream`, a `read`, or
    /// another core the connection is handed to
    /// ([`TcpStream::rehome`](crate::TcpStream::rehome)). Dropping the stream
    /// instead cancels the receive and discards what it still brings.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use percore_net::UnixStream;
    /// use percore_runtime::buf_ring::BufRing;
    ///
    /// percore_runtime::run(async {
    ///     let ring = BufRing::new(64, 4096)?;
    ///     let (a, b) = UnixStream::pair()?;
    ///     let mut incoming = b.recv_stream(&ring);
    ///     a.write_all(b"first".to_vec()).await.0?;
    ///     assert_eq!(&incoming.next().await.unwrap()?[..], b"first");
    ///     incoming.stop();
    ///     while let Some(buf) = incoming.next().await {
    ///         buf?; // whatever came before the stop
    ///     }
    ///     drop(incoming);
    ///     // Sent after the stop: still in the socket.
    ///     a.write_all(b"later".to_vec()).await.0?;
    ///     let (n, buf) = b.read(Vec::with_capacity(16)).await;
    ///     assert_eq!(&buf[..n?], b"later");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap()
    /// .unwrap();
    /// ```
    pub fn stop(&mut self) {
        self.stopping = true;
        if let Some(multi) = self.multi.as_mut() {
            multi.cancel();
        }
        if let Some(fallback) = self.fallback.as_mut() {
            fallback.cancel();
        }
    }
}

impl Stream for RecvStream {
    type Item = io::Result<RingBuf>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(bundle) = this.bundle.as_mut() {
                match bundle.next() {
                    Some(buf) => return Poll::Ready(Some(Ok(buf))),
                    None => this.bundle = None,
                }
            }
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(fallback) = this.fallback.as_mut() {
                let (res, buf) = std::task::ready!(Pin::new(&mut **fallback).poll(cx));
                this.fallback = None;
                return Poll::Ready(match res {
                    Ok(0) => {
                        this.done = true;
                        None
                    }
                    Ok(_) => Some(Ok(RingBuf::from(buf))),
                    Err(_) if this.stopping => {
                        this.done = true;
                        None
                    }
                    Err(err) => {
                        this.done = true;
                        Some(Err(err))
                    }
                });
            }
            let multi = match this.multi.as_mut() {
                Some(multi) => multi,
                // Stopped, and nothing in flight any more.
                None if this.stopping => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                None if this.ring.available() == 0 => {
                    let buf = Vec::with_capacity(this.ring.buf_size() as usize);
                    this.fallback = Some(Box::new(Op::new(op::Recv::new(this.fd.clone(), buf))));
                    continue;
                }
                None => this.multi.insert(MultiOp::new(op::RecvMulti::new(
                    this.fd.clone(),
                    this.ring.clone(),
                ))),
            };
            match std::task::ready!(Pin::new(multi).poll_next(cx)) {
                Some(Ok(Some((buf, more)))) => {
                    this.bundle = more;
                    return Poll::Ready(Some(Ok(buf)));
                }
                Some(Ok(None)) => {
                    this.done = true;
                    this.multi = None;
                    return Poll::Ready(None);
                }
                // The ring ran dry: the op has ended; go on without it.
                Some(Err(err)) if err.raw_os_error() == Some(libc::ENOBUFS) => this.multi = None,
                // The end `stop` asked for (`ECANCELED`), or any end meanwhile.
                Some(Err(_)) if this.stopping => this.multi = None,
                Some(Err(err)) => {
                    this.done = true;
                    this.multi = None;
                    return Poll::Ready(Some(Err(err)));
                }
                // The op ended without an error (the kernel may stop a multishot
                // receive at any time): re-arm.
                None => this.multi = None,
            }
        }
    }
}

impl std::fmt::Debug for RecvStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvStream")
            .field("ring", &self.ring)
            .field("armed", &self.multi.is_some())
            .field("bundle", &self.bundle)
            .field("done", &self.done)
            .finish()
    }
}
