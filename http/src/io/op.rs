//! The two socket operations [`Io`](super::Io) submits itself, each owning
//! its buffer and keeping the stream open until its completion: the send of
//! every write, and the plain receive used where no buffer ring can be had.

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use percore_runtime::io_uring::{opcode, squeue, types};
use percore_runtime::OpCode;

/// Sends `buf[pos..]` on `stream` (`send(2)` with `MSG_NOSIGNAL`: a reset peer
/// is an `EPIPE` error, never a `SIGPIPE`).
pub(super) struct Send<S> {
    /// Keeps the fd open — and its number from being reused — until the op's
    /// completion, even if the [`Io`](super::Io) was dropped meanwhile.
    stream: Rc<S>,
    buf: Vec<u8>,
    pos: usize,
}

/// What a send gives back: its result, the buffer and where the send began.
pub(super) struct Sent {
    pub(super) res: io::Result<usize>,
    pub(super) buf: Vec<u8>,
    pub(super) pos: usize,
}

impl<S: AsRawFd + 'static> Send<S> {
    pub(super) fn new(stream: Rc<S>, buf: Vec<u8>, pos: usize) -> Send<S> {
        debug_assert!(pos < buf.len());
        Send { stream, buf, pos }
    }
}

// SAFETY: the entry points at `buf[pos..]`, heap memory the op owns and does
// not touch until `complete`; moving the op moves the `Vec`'s pointer, not the
// bytes. `stream` keeps the fd open until then.
unsafe impl<S: AsRawFd + 'static> OpCode for Send<S> {
    type Output = Sent;

    /// Waits for room in the socket's send buffer, that is for the peer.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        let rest = &self.buf[self.pos..];
        let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        opcode::Send::new(types::Fd(self.stream.as_raw_fd()), rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> Sent {
        Sent {
            res: res.map(|n| n as usize),
            buf: self.buf,
            pos: self.pos,
        }
    }
}

/// Receives into `buf`'s spare capacity (`recv(2)`).
pub(super) struct Recv<S> {
    /// As in [`Send`]: the fd stays open until the completion.
    stream: Rc<S>,
    buf: Vec<u8>,
}

impl<S: AsRawFd + 'static> Recv<S> {
    pub(super) fn new(stream: Rc<S>, buf: Vec<u8>) -> Recv<S> {
        Recv { stream, buf }
    }
}

// SAFETY: the entry points at the spare capacity of `buf`, heap memory the op
// owns and does not touch until `complete`; `stream` keeps the fd open.
unsafe impl<S: AsRawFd + 'static> OpCode for Recv<S> {
    type Output = (io::Result<usize>, Vec<u8>);

    /// Waits for the peer to send.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        let spare = self.buf.spare_capacity_mut();
        let len = u32::try_from(spare.len()).unwrap_or(u32::MAX);
        opcode::Recv::new(
            types::Fd(self.stream.as_raw_fd()),
            spare.as_mut_ptr().cast(),
            len,
        )
        .build()
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> (io::Result<usize>, Vec<u8>) {
        if let Ok(n) = res {
            let n = (n as usize).min(self.buf.capacity() - self.buf.len());
            // SAFETY: the kernel wrote `n` bytes into the spare capacity, right
            // after the initialised ones.
            unsafe { self.buf.set_len(self.buf.len() + n) };
        }
        (res.map(|n| n as usize), self.buf)
    }
}

/// Waits until the stream has something to read (`poll(2)` for `POLLIN`,
/// one-shot), holding no buffer meanwhile.
pub(super) struct PollIn<S> {
    /// As in [`Send`]: the fd stays open until the completion.
    stream: Rc<S>,
}

impl<S: AsRawFd + 'static> PollIn<S> {
    pub(super) fn new(stream: Rc<S>) -> PollIn<S> {
        PollIn { stream }
    }
}

// SAFETY: the entry points at no memory; `stream` keeps the fd open.
unsafe impl<S: AsRawFd + 'static> OpCode for PollIn<S> {
    type Output = io::Result<()>;

    /// Waits for the peer to send.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        opcode::PollAdd::new(types::Fd(self.stream.as_raw_fd()), libc::POLLIN as u32).build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
