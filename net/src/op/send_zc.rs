use std::io;
use std::os::fd::AsRawFd;

use percore_runtime::io_uring::{cqueue, opcode, squeue, types};
use percore_runtime::{IoBuf, MultishotCode};

use super::{len_u32, SharedFd};

/// `IORING_OP_SEND_ZC`: `send(2)` without copying the bytes into the kernel.
/// Two CQEs: the result (with `F_MORE` when a notification follows), then the
/// notification that the kernel no longer reads the buffer. The buffer is held
/// until that last one.
pub(crate) struct SendZc<B> {
    fd: SharedFd,
    buf: B,
    /// The result CQE's outcome, once it came.
    pub(crate) sent: Option<io::Result<usize>>,
}

impl<B: IoBuf> SendZc<B> {
    pub(crate) fn new(fd: SharedFd, buf: B) -> SendZc<B> {
        SendZc {
            fd,
            buf,
            sent: None,
        }
    }

    pub(crate) fn into_buf(self) -> B {
        self.buf
    }
}

// SAFETY: the entry points at `buf`'s initialised bytes, heap memory `IoBuf` keeps
// in place while `self` moves, and `self` (so `buf`) lives until the op's last
// CQE, the notification; `self.fd` keeps the fd open.
unsafe impl<B: IoBuf> MultishotCode for SendZc<B> {
    type Item = ();

    fn sqe(&mut self) -> squeue::Entry {
        let len = len_u32(self.buf.bytes_init());
        opcode::SendZc::new(types::Fd(self.fd.as_raw_fd()), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn next(&mut self, res: io::Result<u32>, flags: u32) {
        if !cqueue::notif(flags) {
            self.sent = Some(res.map(|n| n as usize));
        }
    }
}
