use std::io;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::{BufResult, IoBuf, OpCode};

use super::{with_target, Target};

/// `IORING_OP_WRITEV`: like `pwritev(2)`. Writes each buffer's initialised
/// bytes in turn.
#[derive(Debug)]
pub(crate) struct Writev<B> {
    target: Target,
    bufs: Vec<B>,
    /// One entry per buffer, built in `sqe`; on the heap, so it stays put.
    iovecs: Vec<libc::iovec>,
    offset: u64,
}

impl<B: IoBuf> Writev<B> {
    pub(crate) fn new(target: Target, bufs: Vec<B>, offset: u64) -> Writev<B> {
        Writev {
            target,
            bufs,
            iovecs: Vec::new(),
            offset,
        }
    }
}

// SAFETY: the entry points at `iovecs`, a heap array this op owns, whose entries
// point at the buffers' initialised bytes; `IoBuf` keeps that storage in place
// while `self` moves, and neither vector is touched again before `complete`.
unsafe impl<B: IoBuf> OpCode for Writev<B> {
    type Output = BufResult<usize, Vec<B>>;

    fn sqe(&mut self) -> squeue::Entry {
        self.iovecs = self
            .bufs
            .iter()
            .map(|buf| libc::iovec {
                iov_base: buf.stable_ptr().cast_mut().cast(),
                iov_len: buf.bytes_init(),
            })
            .collect();
        let count = self.iovecs.len().min(u32::MAX as usize) as u32;
        with_target!(self.target, |fd| opcode::Writev::new(
            fd,
            self.iovecs.as_ptr(),
            count
        )
        .offset(self.offset)
        .build())
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> BufResult<usize, Vec<B>> {
        (res.map(|n| n as usize), self.bufs)
    }
}
