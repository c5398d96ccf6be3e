use std::ffi::CString;
use std::io;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::OpCode;

use super::CWD;

/// `IORING_OP_MKDIRAT`: like `mkdirat(2)` relative to the working directory.
#[derive(Debug)]
pub(crate) struct MkDirAt {
    pub(crate) path: CString,
    pub(crate) mode: u32,
}

// SAFETY: the entry points at `path`'s heap buffer, which stays put while `self` moves.
unsafe impl OpCode for MkDirAt {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::MkDirAt::new(CWD, self.path.as_ptr())
            .mode(self.mode)
            .build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
