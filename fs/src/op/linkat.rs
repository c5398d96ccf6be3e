use std::ffi::CString;
use std::io;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::OpCode;

use super::CWD;

/// `IORING_OP_LINKAT`: like `linkat(2)` relative to the working directory.
#[derive(Debug)]
pub(crate) struct LinkAt {
    pub(crate) original: CString,
    pub(crate) link: CString,
}

// SAFETY: the entry points at the heap buffers of `original` and `link`, which
// stay put while `self` moves.
unsafe impl OpCode for LinkAt {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::LinkAt::new(CWD, self.original.as_ptr(), CWD, self.link.as_ptr()).build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
