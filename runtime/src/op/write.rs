use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use crate::{BufResult, IoBuf, OpCode};

/// `IORING_OP_WRITE`: like `pwrite(2)` (`write(2)` at offset `u64::MAX`). Writes the
/// buffer's initialised bytes.
#[derive(Debug)]
pub struct Write<B> {
    fd: RawFd,
    buf: B,
    offset: u64,
}

impl<B: IoBuf> Write<B> {
    /// Writes `buf.bytes_init()` bytes to `fd` at `offset`.
    pub fn new(fd: RawFd, buf: B, offset: u64) -> Write<B> {
        Write { fd, buf, offset }
    }
}

// SAFETY: the entry points at `buf`'s initialised bytes, heap storage that `IoBuf`
// keeps in place while `self` moves.
unsafe impl<B: IoBuf> OpCode for Write<B> {
    type Output = BufResult<usize, B>;

    /// May wait for a reader, on a pipe or socket: a paused clock does not wait for it.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        let len = self.buf.bytes_init().min(u32::MAX as usize) as u32;
        opcode::Write::new(types::Fd(self.fd), self.buf.stable_ptr(), len)
            .offset(self.offset)
            .build()
    }

    fn complete(self, res: std::io::Result<u32>, _flags: u32) -> BufResult<usize, B> {
        (res.map(|n| n as usize), self.buf)
    }
}
