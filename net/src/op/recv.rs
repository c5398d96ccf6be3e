use std::io;
use std::os::fd::AsRawFd;

use percore_runtime::io_uring::{opcode, squeue, types};
use percore_runtime::{BufResult, IoBufMut, OpCode};

use super::{len_u32, SharedFd};

/// `IORING_OP_RECV`: like `recv(2)`, into the buffer's spare capacity after its
/// initialised bytes.
pub(crate) struct Recv<B> {
    fd: SharedFd,
    buf: B,
}

impl<B: IoBufMut> Recv<B> {
    pub(crate) fn new(fd: SharedFd, buf: B) -> Recv<B> {
        Recv { fd, buf }
    }
}

// SAFETY: the entry points at `buf`'s storage past its initialised bytes, heap
// memory `IoBufMut` keeps in place while `self` moves; `self.fd` keeps the fd open.
unsafe impl<B: IoBufMut> OpCode for Recv<B> {
    type Output = BufResult<usize, B>;

    /// May wait for data from the peer: a paused clock does not wait for it.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        let init = self.buf.bytes_init();
        let spare = len_u32(self.buf.bytes_total() - init);
        // SAFETY: `init <= bytes_total`, so the offset stays inside the allocation.
        let ptr = unsafe { self.buf.stable_mut_ptr().add(init) };
        opcode::Recv::new(types::Fd(self.fd.as_raw_fd()), ptr, spare).build()
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> BufResult<usize, B> {
        let res = res.map(|n| n as usize);
        if let Ok(n) = res {
            let init = self.buf.bytes_init() + n;
            // SAFETY: the kernel wrote `n` bytes right after the initialised ones.
            unsafe { self.buf.set_init(init) };
        }
        (res, self.buf)
    }
}
