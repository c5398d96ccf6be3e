use std::io;

use percore_runtime::io_uring::{opcode, squeue, types::FsyncFlags};
use percore_runtime::OpCode;

use super::{with_target, Target};

/// `IORING_OP_FSYNC`: like `fsync(2)`, or `fdatasync(2)` with `datasync`.
#[derive(Debug)]
pub(crate) struct Fsync {
    pub(crate) target: Target,
    pub(crate) datasync: bool,
}

// SAFETY: the entry points at no memory.
unsafe impl OpCode for Fsync {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        let flags = if self.datasync {
            FsyncFlags::DATASYNC
        } else {
            FsyncFlags::empty()
        };
        with_target!(self.target, |fd| opcode::Fsync::new(fd)
            .flags(flags)
            .build())
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
