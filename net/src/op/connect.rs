use std::io;
use std::os::fd::AsRawFd;

use percore_runtime::io_uring::{opcode, squeue, types};
use percore_runtime::OpCode;
use socket2::SockAddr;

use super::SharedFd;

/// `IORING_OP_CONNECT`: like `connect(2)`.
pub(crate) struct Connect {
    fd: SharedFd,
    addr: Box<SockAddr>,
}

impl Connect {
    pub(crate) fn new(fd: SharedFd, addr: SockAddr) -> Connect {
        Connect {
            fd,
            addr: Box::new(addr),
        }
    }
}

// SAFETY: the entry points at `self.addr`, boxed so it stays in place while `self`
// moves; `self.fd` keeps the socket open.
unsafe impl OpCode for Connect {
    type Output = io::Result<()>;

    /// May wait for the peer to answer: a paused clock does not wait for it.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Connect::new(
            types::Fd(self.fd.as_raw_fd()),
            self.addr.as_ptr().cast(),
            self.addr.len(),
        )
        .build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
