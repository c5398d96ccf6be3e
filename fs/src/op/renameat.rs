use std::ffi::CString;
use std::io;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::OpCode;

use super::CWD;

/// `IORING_OP_RENAMEAT`: like `renameat2(2)` relative to the working directory.
#[derive(Debug)]
pub(crate) struct RenameAt {
    pub(crate) from: CString,
    pub(crate) to: CString,
    pub(crate) flags: u32,
}

// SAFETY: the entry points at the heap buffers of `from` and `to`, which stay put
// while `self` moves.
unsafe impl OpCode for RenameAt {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::RenameAt::new(CWD, self.from.as_ptr(), CWD, self.to.as_ptr())
            .flags(self.flags)
            .build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
