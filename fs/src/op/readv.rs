use std::io;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::{BufResult, IoBufMut, OpCode};

use super::{with_target, Target};

/// `IORING_OP_READV`: like `preadv(2)`. Fills each buffer's spare capacity in
/// turn.
#[derive(Debug)]
pub(crate) struct Readv<B> {
    target: Target,
    bufs: Vec<B>,
    /// One entry per buffer, built in `sqe`; on the heap, so it stays put.
    iovecs: Vec<libc::iovec>,
    offset: u64,
}

impl<B: IoBufMut> Readv<B> {
    pub(crate) fn new(target: Target, bufs: Vec<B>, offset: u64) -> Readv<B> {
        Readv {
            target,
            bufs,
            iovecs: Vec::new(),
            offset,
        }
    }
}

// SAFETY: the entry points at `iovecs`, a heap array this op owns, whose entries
// point at the buffers' spare capacity; `IoBufMut` keeps that storage in place
// while `self` moves, and neither vector is touched again before `complete`.
unsafe impl<B: IoBufMut> OpCode for Readv<B> {
    type Output = BufResult<usize, Vec<B>>;

    fn sqe(&mut self) -> squeue::Entry {
        self.iovecs = self
            .bufs
            .iter_mut()
            .map(|buf| {
                let init = buf.bytes_init();
                libc::iovec {
                    // SAFETY: `init <= bytes_total`, so the offset stays in the allocation.
                    iov_base: unsafe { buf.stable_mut_ptr().add(init) }.cast(),
                    iov_len: buf.bytes_total() - init,
                }
            })
            .collect();
        let count = self.iovecs.len().min(u32::MAX as usize) as u32;
        with_target!(self.target, |fd| opcode::Readv::new(
            fd,
            self.iovecs.as_ptr(),
            count
        )
        .offset(self.offset)
        .build())
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> BufResult<usize, Vec<B>> {
        let res = res.map(|n| n as usize);
        if let Ok(n) = res {
            let mut left = n;
            for buf in &mut self.bufs {
                let init = buf.bytes_init();
                let got = left.min(buf.bytes_total() - init);
                // SAFETY: the kernel filled the iovecs in order; `got` bytes of this
                // buffer's spare capacity were written.
                unsafe { buf.set_init(init + got) };
                left -= got;
            }
        }
        (res, self.bufs)
    }
}
