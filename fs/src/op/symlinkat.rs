use std::ffi::CString;
use std::io;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::OpCode;

use super::CWD;

/// `IORING_OP_SYMLINKAT`: like `symlinkat(2)`: `link` will point to `target`.
#[derive(Debug)]
pub(crate) struct SymlinkAt {
    pub(crate) target: CString,
    pub(crate) link: CString,
}

// SAFETY: the entry points at the heap buffers of `target` and `link`, which stay
// put while `self` moves.
unsafe impl OpCode for SymlinkAt {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::SymlinkAt::new(CWD, self.target.as_ptr(), self.link.as_ptr()).build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
