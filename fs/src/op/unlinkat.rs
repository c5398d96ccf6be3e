use std::ffi::CString;
use std::io;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::OpCode;

use super::CWD;

/// `IORING_OP_UNLINKAT`: like `unlinkat(2)`; `AT_REMOVEDIR` in `flags` removes
/// an empty directory.
#[derive(Debug)]
pub(crate) struct UnlinkAt {
    pub(crate) path: CString,
    pub(crate) flags: i32,
}

// SAFETY: the entry points at `path`'s heap buffer, which stays put while `self` moves.
unsafe impl OpCode for UnlinkAt {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::UnlinkAt::new(CWD, self.path.as_ptr())
            .flags(self.flags)
            .build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
