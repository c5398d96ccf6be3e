use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use crate::{BufResult, IoBufMut, OpCode};

/// `IORING_OP_READ`: like `pread(2)` (or `read(2)` at offset `u64::MAX` for pipes,
/// sockets and the current file position). Reads into the buffer's spare capacity
/// after its initialised bytes.
#[derive(Debug)]
pub struct Read<B> {
    fd: RawFd,
    buf: B,
    offset: u64,
}

impl<B: IoBufMut> Read<B> {
    /// Reads up to `buf.bytes_total() - buf.bytes_init()` bytes from `fd` at `offset`.
    pub fn new(fd: RawFd, buf: B, offset: u64) -> Read<B> {
        Read { fd, buf, offset }
    }
}

// SAFETY: the entry points at `buf`'s storage past its initialised bytes; `IoBufMut`
// guarantees that storage is on the heap and stays put while `self` moves.
unsafe impl<B: IoBufMut> OpCode for Read<B> {
    type Output = BufResult<usize, B>;

    /// May wait for a writer, on a pipe or socket: a paused clock does not wait for it.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        let init = self.buf.bytes_init();
        let spare = (self.buf.bytes_total() - init).min(u32::MAX as usize) as u32;
        // SAFETY: `init <= bytes_total`, so the offset stays inside the allocation.
        let ptr = unsafe { self.buf.stable_mut_ptr().add(init) };
        opcode::Read::new(types::Fd(self.fd), ptr, spare)
            .offset(self.offset)
            .build()
    }

    fn complete(mut self, res: std::io::Result<u32>, _flags: u32) -> BufResult<usize, B> {
        let res = res.map(|n| n as usize);
        if let Ok(n) = res {
            let init = self.buf.bytes_init() + n;
            // SAFETY: the kernel wrote `n` bytes right after the initialised ones.
            unsafe { self.buf.set_init(init) };
        }
        (res, self.buf)
    }
}
