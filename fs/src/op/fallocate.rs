use std::io;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::OpCode;

use super::{with_target, Target};

/// `IORING_OP_FALLOCATE`: like `fallocate(2)`.
#[derive(Debug)]
pub(crate) struct Fallocate {
    pub(crate) target: Target,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) mode: i32,
}

// SAFETY: the entry points at no memory.
unsafe impl OpCode for Fallocate {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        with_target!(self.target, |fd| opcode::Fallocate::new(fd, self.len)
            .offset(self.offset)
            .mode(self.mode)
            .build())
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
