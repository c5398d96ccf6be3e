use std::io;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::OpCode;

use super::{with_target, Target};

/// `IORING_OP_FTRUNCATE` (Linux 6.9+): like `ftruncate(2)`.
#[derive(Debug)]
pub(crate) struct Ftruncate {
    pub(crate) target: Target,
    pub(crate) len: u64,
}

impl Ftruncate {
    pub(crate) const CODE: u8 = opcode::Ftruncate::CODE;
}

// SAFETY: the entry points at no memory.
unsafe impl OpCode for Ftruncate {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        with_target!(self.target, |fd| opcode::Ftruncate::new(fd, self.len)
            .build())
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
