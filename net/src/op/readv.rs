use std::io;
use std::os::fd::AsRawFd;

use percore_runtime::io_uring::{opcode, squeue, types};
use percore_runtime::{BufResult, IoBufMut, OpCode};

use super::{BufListMut, SharedFd};

/// `IORING_OP_READV`: like `readv(2)`, filling each buffer's spare capacity in order.
pub(crate) struct Readv<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    iovecs: Vec<libc::iovec>,
}

impl<B: IoBufMut> Readv<B> {
    pub(crate) fn new(fd: SharedFd, bufs: Vec<B>) -> Readv<B> {
        Readv {
            fd,
            iovecs: Vec::with_capacity(bufs.len()),
            bufs,
        }
    }
}

// SAFETY: the entry points at `self.iovecs`' heap storage, which points at the
// buffers' heap storage (past their initialised bytes); neither moves with `self`.
unsafe impl<B: IoBufMut> OpCode for Readv<B> {
    type Output = BufResult<usize, Vec<B>>;

    /// May wait for data from the peer: a paused clock does not wait for it.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        self.iovecs.clear();
        for i in 0..self.bufs.len() {
            self.iovecs.push(self.bufs.spare_iovec(i));
        }
        let count = self.iovecs.len().min(u32::MAX as usize) as u32;
        opcode::Readv::new(types::Fd(self.fd.as_raw_fd()), self.iovecs.as_ptr(), count)
            .offset(u64::MAX)
            .build()
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> BufResult<usize, Vec<B>> {
        let res = res.map(|n| n as usize);
        if let Ok(n) = res {
            // SAFETY: the kernel wrote `n` bytes through the iovecs built in `sqe`.
            unsafe { self.bufs.advance(n) };
        }
        (res, self.bufs)
    }
}
