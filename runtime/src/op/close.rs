use std::io;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};

use io_uring::{opcode, squeue, types};

use crate::OpCode;

/// `IORING_OP_CLOSE`: like `close(2)`, asynchronously.
#[derive(Debug)]
pub struct Close {
    fd: RawFd,
}

impl Close {
    /// Closes `fd`; ownership passes to the op, so the fd is closed exactly once.
    pub fn new(fd: OwnedFd) -> Close {
        Close {
            fd: fd.into_raw_fd(),
        }
    }
}

// SAFETY: the entry points at no memory.
unsafe impl OpCode for Close {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Close::new(types::Fd(self.fd)).build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(|_| ())
    }
}
