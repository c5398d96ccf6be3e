//! The socket operations percore-net submits, one file per io_uring opcode.
//!
//! Each struct owns what the kernel may touch (buffers, boxed sockaddrs and
//! message headers) and a [`SharedFd`] clone, so the socket's fd stays open —
//! and its *number* cannot be reused — until the op's last CQE has arrived, even
//! if the future was dropped and the socket with it.

mod accept;
mod connect;
mod msg;
mod readv;
mod recv;
mod recv_multi;
mod send;
mod send_zc;
mod shutdown;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;

pub(crate) use accept::{Accept, AcceptMulti};
pub(crate) use connect::Connect;
pub(crate) use msg::{BufListMut, One, Received, RecvMsg, SendMsg};
pub(crate) use readv::Readv;
pub(crate) use recv::Recv;
pub(crate) use recv_multi::RecvMulti;
pub(crate) use send::Send;
pub(crate) use send_zc::SendZc;
pub(crate) use shutdown::Shutdown;

/// A socket's fd, shared by the socket and every op in flight on it. The last
/// owner closes it with `close(2)`: by then no op can still name the number.
pub(crate) type SharedFd = Rc<SocketFd>;

/// A socket fd percore-net owns from creation (or adoption) to close. The
/// core is told both ends ([`claim_fd`](percore_runtime::__private::claim_fd),
/// [`release_fd`](percore_runtime::__private::release_fd)), so the readiness
/// backend may keep the fd registered with epoll for its whole life instead
/// of re-arming it at every wait.
///
/// A connection placed by a [`Balance`](crate::balance::Balance) also holds
/// its seat in the balance's table: it is counted on its core until the fd
/// closes (or leaves percore-net through `into_std`).
#[derive(Debug)]
pub(crate) struct SocketFd {
    fd: Option<OwnedFd>,
    seat: Option<crate::balance::Seat>,
}

impl SocketFd {
    pub(crate) fn new(fd: OwnedFd) -> SocketFd {
        percore_runtime::__private::claim_fd(fd.as_raw_fd());
        SocketFd {
            fd: Some(fd),
            seat: None,
        }
    }

    /// Counts the socket on a core of a [`Balance`](crate::balance::Balance)
    /// until it closes.
    pub(crate) fn set_seat(&mut self, seat: crate::balance::Seat) {
        self.seat = Some(seat);
    }

    /// The socket's seat in a `Balance`, if one placed it.
    pub(crate) fn seat(&self) -> Option<&crate::balance::Seat> {
        self.seat.as_ref()
    }

    /// The fd, no longer percore-net's (`into_std`).
    pub(crate) fn into_owned(mut self) -> Option<OwnedFd> {
        let fd = self.fd.take()?;
        percore_runtime::__private::release_fd(fd.as_raw_fd());
        Some(fd)
    }
}

impl Drop for SocketFd {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            // Before the close: the number may be reused right after it.
            percore_runtime::__private::release_fd(fd.as_raw_fd());
        }
    }
}

impl AsFd for SocketFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.fd {
            Some(fd) => fd.as_fd(),
            // `fd` is only `None` inside `into_owned` and `drop`, which own `self`.
            None => unreachable!("a SocketFd is used only while it holds its fd"),
        }
    }
}

impl AsRawFd for SocketFd {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// The io_uring length field for `len` bytes (ops move at most 4 GiB − 1 at once).
fn len_u32(len: usize) -> u32 {
    len.min(u32::MAX as usize) as u32
}
