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

use std::os::fd::OwnedFd;
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
pub(crate) type SharedFd = Rc<OwnedFd>;

/// The io_uring length field for `len` bytes (ops move at most 4 GiB − 1 at once).
fn len_u32(len: usize) -> u32 {
    len.min(u32::MAX as usize) as u32
}
