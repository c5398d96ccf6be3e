//! `Socket`: the fd every public socket type wraps, and the ops they share.
//!
//! # Closing
//!
//! The fd lives in an `Rc` shared by the socket (and its split halves) and by
//! every op in flight on it. Dropping the socket drops one reference; the fd is
//! closed with a plain `close(2)` when the *last* reference goes — which is after
//! the last op on it has completed, since an op dropped in flight keeps its
//! reference in the runtime's op table until its final CQE. So the fd *number*
//! can never be reused while an SQE still names it (an unsubmitted SQE would
//! otherwise act on whatever socket got the number next), and no async `Close`
//! op (and no task to await it) is needed per connection.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use futures_core::Stream;
use percore_runtime::{BufResult, IoBuf, MultiOp, Op, Slice};
use socket2::{Domain, SockAddr, SockRef, Type};

use crate::error::context;
use crate::op::{self, One, SharedFd};

/// A socket fd shared with the ops in flight on it; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Socket {
    fd: SharedFd,
}

impl Socket {
    /// Wraps an open socket fd (blocking or not: io_uring handles both).
    pub(crate) fn from_fd(fd: OwnedFd) -> Socket {
        Socket {
            fd: Rc::new(op::SocketFd::new(fd)),
        }
    }

    /// A new `SOCK_CLOEXEC` socket.
    pub(crate) fn new(domain: Domain, ty: Type) -> io::Result<Socket> {
        let socket = socket2::Socket::new(domain, ty, None)
            .map_err(|err| context(err, format!("socket({domain:?}, {ty:?})")))?;
        Ok(Socket::from_fd(socket.into()))
    }

    /// Counts this fresh socket on a core of a `Balance` until it closes;
    /// gives the seat back if an op already shares the fd.
    pub(crate) fn set_seat(
        &mut self,
        seat: crate::balance::Seat,
    ) -> Result<(), crate::balance::Seat> {
        match Rc::get_mut(&mut self.fd) {
            Some(fd) => {
                fd.set_seat(seat);
                Ok(())
            }
            None => Err(seat),
        }
    }

    pub(crate) fn shared_fd(&self) -> &SharedFd {
        &self.fd
    }

    /// socket2's view of the fd, for options and addresses (plain syscalls).
    pub(crate) fn sock_ref(&self) -> SockRef<'_> {
        SockRef::from(&*self.fd)
    }

    /// The fd back, for `into_std`. If an op dropped in flight still holds it, a
    /// duplicate (`dup(2)`) is returned and the original closes when that op ends.
    pub(crate) fn into_fd(self) -> io::Result<OwnedFd> {
        match Rc::try_unwrap(self.fd) {
            Ok(fd) => fd
                .into_owned()
                .ok_or_else(|| io::Error::other("the socket's fd is gone")),
            Err(shared) => shared.as_fd().try_clone_to_owned(),
        }
    }

    /// The fd back if no op shares it (a fresh socket), else the socket.
    pub(crate) fn into_unique_fd(self) -> Result<OwnedFd, Socket> {
        match Rc::try_unwrap(self.fd) {
            Ok(fd) => match fd.into_owned() {
                Some(fd) => Ok(fd),
                None => unreachable!("a SocketFd holds its fd until it is consumed"),
            },
            Err(fd) => Err(Socket { fd }),
        }
    }

    /// Whether `self` and `other` are the same socket (for `reunite`).
    pub(crate) fn same_as(&self, other: &Socket) -> bool {
        Rc::ptr_eq(&self.fd, &other.fd)
    }

    pub(crate) async fn connect(&self, addr: SockAddr) -> io::Result<()> {
        Op::new(op::Connect::new(self.fd.clone(), addr)).await
    }

    pub(crate) async fn accept(&self) -> io::Result<(Socket, SockAddr)> {
        let (fd, addr) = Op::new(op::Accept::new(self.fd.clone())).await?;
        Ok((Socket::from_fd(fd), addr))
    }

    /// One `send(2)`: the hot write path, one SQE.
    pub(crate) fn write<B: IoBuf>(&self, buf: B) -> Op<op::Send<B>> {
        Op::new(op::Send::new(self.fd.clone(), buf))
    }

    /// One zero-copy `send(2)`: returns once the kernel let go of the buffer.
    pub(crate) async fn write_zc<B: IoBuf>(&self, buf: B) -> BufResult<usize, B> {
        let mut op = MultiOp::new(op::SendZc::new(self.fd.clone(), buf));
        // Two CQEs: the result, then the notification that ends the stream.
        while std::future::poll_fn(|cx| std::pin::Pin::new(&mut op).poll_next(cx))
            .await
            .is_some()
        {}
        let Some(mut data) = op.into_inner() else {
            // The stream ended, so the runtime hands the data back (MultiOp's contract).
            unreachable!("a finished zero-copy send gives its buffer back");
        };
        let sent = data
            .sent
            .take()
            .unwrap_or_else(|| Err(io::Error::other("zero-copy send ended without a result")));
        (sent, data.into_buf())
    }

    /// Writes all of `buf`'s initialised bytes with zero-copy sends.
    pub(crate) async fn write_all_zc<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        write_all_by(buf, |slice| self.write_zc(slice)).await
    }

    /// Writes all of `buf`'s initialised bytes, one `send` per partial write.
    pub(crate) async fn write_all<B: IoBuf>(&self, buf: B) -> BufResult<(), B> {
        write_all_by(buf, |slice| self.write(slice)).await
    }

    /// One `sendmsg(2)` of all buffers in order (a gather write, `MSG_NOSIGNAL`).
    pub(crate) fn writev<B: IoBuf>(&self, bufs: Vec<B>) -> Op<op::SendMsg<Vec<B>>> {
        Op::new(op::SendMsg::new(self.fd.clone(), bufs, None))
    }

    pub(crate) async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        Op::new(op::Shutdown::new(self.fd.clone(), how)).await
    }

    pub(crate) async fn send_to<B: IoBuf>(&self, buf: B, addr: &SockAddr) -> BufResult<usize, B> {
        let (res, One(buf)) =
            Op::new(op::SendMsg::new(self.fd.clone(), One(buf), Some(addr))).await;
        (res, buf)
    }

    /// One `sendmsg(2)` of `buf` with `fds` attached (`SCM_RIGHTS`). The op
    /// sends duplicates it owns, so the caller's fds may close as soon as the
    /// future is dropped.
    pub(crate) async fn send_fds<B: IoBuf>(
        &self,
        buf: B,
        fds: &[BorrowedFd<'_>],
    ) -> BufResult<usize, B> {
        let owned: io::Result<Vec<OwnedFd>> =
            fds.iter().map(BorrowedFd::try_clone_to_owned).collect();
        let owned = match owned {
            Ok(owned) => owned,
            Err(err) => return (Err(context(err, "dup of an fd to send")), buf),
        };
        let (res, One(buf)) =
            Op::new(op::SendMsg::with_fds(self.fd.clone(), One(buf), owned)).await;
        (res, buf)
    }

    pub(crate) async fn send_msg<B: IoBuf>(
        &self,
        bufs: Vec<B>,
        addr: Option<&SockAddr>,
    ) -> BufResult<usize, Vec<B>> {
        Op::new(op::SendMsg::new(self.fd.clone(), bufs, addr)).await
    }

    pub(crate) fn local_addr(&self) -> io::Result<SockAddr> {
        self.sock_ref().local_addr()
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SockAddr> {
        self.sock_ref().peer_addr()
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An IP socket address from a `SockAddr` the kernel gave for an IP socket.
pub(crate) fn ip_addr(addr: &SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "expected an IPv4/IPv6 address, got family {}",
                addr.family()
            ),
        )
    })
}

/// Sends all of `buf`'s initialised bytes with `send`, resending the rest after
/// partial writes.
async fn write_all_by<B, F, Fut>(buf: B, mut send: F) -> BufResult<(), B>
where
    B: IoBuf,
    F: FnMut(Slice<B>) -> Fut,
    Fut: std::future::Future<Output = BufResult<usize, Slice<B>>>,
{
    let len = buf.bytes_init();
    let mut done = 0;
    let mut buf = buf;
    while done < len {
        let (res, slice) = send(buf.slice(done..len)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
            Ok(n) => done += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return (Err(err), buf),
        }
    }
    (Ok(()), buf)
}
