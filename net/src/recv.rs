//! The receive path of streams (TCP, Unix): the one place bytes come in.
//!
//! Today each read is one `IORING_OP_RECV` (or `READV`) into the caller's buffer.
//! A multishot `recv` into a provided buffer ring (issue 4, part 2) belongs
//! beside it here: a second way to receive, with its own buffer type, chosen per
//! stream; the send side and the public types do not change.

use std::io;

use percore_runtime::{BufResult, IoBufMut, Op};
use socket2::SockAddr;

use crate::op::{self, One};
use crate::socket::Socket;

impl Socket {
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
        (res.map(|(n, from, _flags)| (n, from)), buf)
    }

    /// One `recvmsg(2)` scattering into `bufs`, with the sender and `msg_flags`.
    pub(crate) async fn recv_msg<B: IoBufMut>(
        &self,
        bufs: Vec<B>,
    ) -> BufResult<op::Received, Vec<B>> {
        Op::new(op::RecvMsg::new(self.shared_fd().clone(), bufs)).await
    }
}
