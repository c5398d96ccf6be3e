use std::io;
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

use crate::{MultishotCode, OpCode};

/// `IORING_OP_POLL_ADD`: like `poll(2)` on one fd. As an [`Op`](crate::Op) it
/// completes once with the ready events; as a [`MultiOp`](crate::MultiOp) it is
/// multishot (`IORING_POLL_ADD_MULTI`) and yields the events every time the fd
/// becomes ready, until cancelled.
#[derive(Debug)]
pub struct PollAdd {
    fd: RawFd,
    events: u32,
}

impl PollAdd {
    /// Polls `fd` for `events` (`libc::POLLIN`, `libc::POLLOUT`, …).
    pub fn new(fd: RawFd, events: u32) -> PollAdd {
        PollAdd { fd, events }
    }
}

// SAFETY: the entry points at no memory.
unsafe impl OpCode for PollAdd {
    type Output = io::Result<u32>;

    /// May wait for an event someone else causes: a paused clock does not wait for it.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd), self.events).build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<u32> {
        res
    }
}

// SAFETY: the entry points at no memory.
unsafe impl MultishotCode for PollAdd {
    type Item = io::Result<u32>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.fd), self.events)
            .multi(true)
            .build()
    }

    fn next(&mut self, res: io::Result<u32>, _flags: u32) -> io::Result<u32> {
        res
    }
}
