use std::io;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::registered;
use percore_runtime::{BufResult, IoBuf, OpCode};

use super::{with_target, Target};

/// `IORING_OP_WRITE` (like `pwrite(2)`), or `IORING_OP_WRITE_FIXED` when the
/// buffer lies in a registered buffer (`fixed` is its index). Writes the
/// buffer's initialised bytes.
#[derive(Debug)]
pub(crate) struct WriteAt<B> {
    target: Target,
    buf: B,
    offset: u64,
    fixed: Option<u16>,
}

impl<B: IoBuf> WriteAt<B> {
    /// A write of `buf`: a fixed one if its bytes lie in the core's registered
    /// memory.
    pub(crate) fn new(target: Target, buf: B, offset: u64) -> WriteAt<B> {
        WriteAt {
            fixed: registered::index_of(buf.stable_ptr(), buf.bytes_init()),
            target,
            buf,
            offset,
        }
    }

    /// A write from registered buffer `index`; `buf` must lie inside that buffer.
    pub(crate) fn fixed(target: Target, buf: B, offset: u64, index: u16) -> WriteAt<B> {
        WriteAt {
            target,
            buf,
            offset,
            fixed: Some(index),
        }
    }
}

// SAFETY: the entry points at `buf`'s initialised bytes, heap storage that `IoBuf`
// keeps in place while `self` moves.
unsafe impl<B: IoBuf> OpCode for WriteAt<B> {
    type Output = BufResult<usize, B>;

    fn sqe(&mut self) -> squeue::Entry {
        let len = self.buf.bytes_init().min(u32::MAX as usize) as u32;
        let ptr = self.buf.stable_ptr();
        match self.fixed {
            None => with_target!(self.target, |fd| opcode::Write::new(fd, ptr, len)
                .offset(self.offset)
                .build()),
            Some(index) => with_target!(self.target, |fd| opcode::WriteFixed::new(
                fd, ptr, len, index
            )
            .offset(self.offset)
            .build()),
        }
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> BufResult<usize, B> {
        (res.map(|n| n as usize), self.buf)
    }
}
