use std::io;

use io_uring::{opcode, squeue};

use crate::OpCode;

/// `IORING_OP_NOP`: completes at once with 0. Useful to measure the ring itself.
#[derive(Debug, Default)]
pub struct Nop(());

impl Nop {
    /// A no-op.
    pub fn new() -> Nop {
        Nop(())
    }
}

// SAFETY: the entry points at no memory.
unsafe impl OpCode for Nop {
    type Output = io::Result<u32>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Nop::new().build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<u32> {
        res
    }
}
