use std::io;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::registered;
use percore_runtime::{BufResult, IoBufMut, OpCode};

use super::{with_target, Target};

/// `IORING_OP_READ` (like `pread(2)`), or `IORING_OP_READ_FIXED` when the buffer
/// lies in a registered buffer (`fixed` is its index): a `FixedBuf`, or memory
/// from the core's registered pool, which `new` finds by address. Reads into the buffer's
/// spare capacity, after its initialised bytes.
#[derive(Debug)]
pub(crate) struct ReadAt<B> {
    target: Target,
    buf: B,
    offset: u64,
    fixed: Option<u16>,
}

impl<B: IoBufMut> ReadAt<B> {
    /// A read into `buf`: a fixed one if the buffer's spare capacity lies in
    /// the core's registered memory.
    pub(crate) fn new(target: Target, mut buf: B, offset: u64) -> ReadAt<B> {
        let init = buf.bytes_init();
        let spare = buf.bytes_total() - init;
        // Only the address is computed; `init <= bytes_total` keeps it in bounds.
        let ptr = buf.stable_mut_ptr().wrapping_add(init);
        ReadAt {
            fixed: registered::index_of(ptr, spare),
            target,
            buf,
            offset,
        }
    }

    /// A read into registered buffer `index`; `buf` must lie inside that buffer.
    pub(crate) fn fixed(target: Target, buf: B, offset: u64, index: u16) -> ReadAt<B> {
        ReadAt {
            target,
            buf,
            offset,
            fixed: Some(index),
        }
    }
}

// SAFETY: the entry points at `buf`'s storage past its initialised bytes; `IoBufMut`
// guarantees that storage is on the heap and stays put while `self` moves.
unsafe impl<B: IoBufMut> OpCode for ReadAt<B> {
    type Output = BufResult<usize, B>;

    fn sqe(&mut self) -> squeue::Entry {
        let init = self.buf.bytes_init();
        let spare = (self.buf.bytes_total() - init).min(u32::MAX as usize) as u32;
        // SAFETY: `init <= bytes_total`, so the offset stays inside the allocation.
        let ptr = unsafe { self.buf.stable_mut_ptr().add(init) };
        match self.fixed {
            None => with_target!(self.target, |fd| opcode::Read::new(fd, ptr, spare)
                .offset(self.offset)
                .build()),
            Some(index) => with_target!(self.target, |fd| opcode::ReadFixed::new(
                fd, ptr, spare, index
            )
            .offset(self.offset)
            .build()),
        }
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
