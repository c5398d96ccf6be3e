use std::io;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::OpCode;

use super::{with_target, Target};

/// `IORING_OP_SYNC_FILE_RANGE`: like `sync_file_range(2)`.
#[derive(Debug)]
pub(crate) struct SyncFileRange {
    pub(crate) target: Target,
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) flags: u32,
}

// SAFETY: the entry points at no memory.
unsafe impl OpCode for SyncFileRange {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        with_target!(self.target, |fd| opcode::SyncFileRange::new(fd, self.len)
            .offset(self.offset)
            .flags(self.flags)
            .build())
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
