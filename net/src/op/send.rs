use std::io;
use std::os::fd::AsRawFd;

use percore_runtime::io_uring::{opcode, squeue, types};
use percore_runtime::{BufResult, IoBuf, OpCode};

use super::{len_u32, SharedFd};

/// `IORING_OP_SEND`: like `send(2)` with `MSG_NOSIGNAL` (a reset peer is an
/// `EPIPE` error, never a `SIGPIPE`).
pub(crate) struct Send<B> {
    fd: SharedFd,
    buf: B,
}

impl<B: IoBuf> Send<B> {
    pub(crate) fn new(fd: SharedFd, buf: B) -> Send<B> {
        Send { fd, buf }
    }
}

// SAFETY: the entry points at `buf`'s initialised bytes, heap memory `IoBuf` keeps
// in place while `self` moves; `self.fd` keeps the fd open.
unsafe impl<B: IoBuf> OpCode for Send<B> {
    type Output = BufResult<usize, B>;

    /// May wait for room in the send buffer (the peer reading): a paused clock does not wait for it.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        let len = len_u32(self.buf.bytes_init());
        opcode::Send::new(types::Fd(self.fd.as_raw_fd()), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> BufResult<usize, B> {
        (res.map(|n| n as usize), self.buf)
    }
}
