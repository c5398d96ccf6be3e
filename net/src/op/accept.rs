use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use percore_runtime::io_uring::{opcode, squeue, types};
use percore_runtime::{MultishotCode, OpCode};
use socket2::{SockAddr, SockAddrStorage};

use super::SharedFd;

/// The address the kernel fills in for `accept4(2)`, boxed so it stays put.
struct PeerSlot {
    storage: SockAddrStorage,
    len: libc::socklen_t,
}

/// `IORING_OP_ACCEPT`: like `accept4(2)` with `SOCK_CLOEXEC`, returning the peer address.
pub(crate) struct Accept {
    fd: SharedFd,
    peer: Box<PeerSlot>,
}

impl Accept {
    pub(crate) fn new(fd: SharedFd) -> Accept {
        let storage = SockAddrStorage::zeroed();
        let len = storage.size_of();
        Accept {
            fd,
            peer: Box::new(PeerSlot { storage, len }),
        }
    }
}

// SAFETY: the entry points at `self.peer`, a box whose contents stay in place while
// `self` moves; `self.fd` keeps the listening fd open.
unsafe impl OpCode for Accept {
    type Output = io::Result<(OwnedFd, SockAddr)>;

    /// May wait for a connection from a peer: a paused clock does not wait for it.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        let peer = &mut *self.peer;
        opcode::Accept::new(
            types::Fd(self.fd.as_raw_fd()),
            (&raw mut peer.storage).cast(),
            &raw mut peer.len,
        )
        .flags(libc::SOCK_CLOEXEC)
        .build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        let fd = res?;
        // SAFETY: a successful accept returns a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let PeerSlot { storage, len } = *self.peer;
        // SAFETY: the kernel initialised `len` bytes of the storage (at most its size).
        let addr = unsafe { SockAddr::new(storage, len) };
        Ok((fd, addr))
    }
}

/// `IORING_OP_ACCEPT` with `IORING_ACCEPT_MULTISHOT`: one SQE, one CQE per connection.
pub(crate) struct AcceptMulti {
    fd: SharedFd,
}

impl AcceptMulti {
    pub(crate) fn new(fd: SharedFd) -> AcceptMulti {
        AcceptMulti { fd }
    }
}

// SAFETY: the entry points at no memory; `self.fd` keeps the listening fd open.
unsafe impl MultishotCode for AcceptMulti {
    type Item = io::Result<OwnedFd>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::AcceptMulti::new(types::Fd(self.fd.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }

    fn next(&mut self, res: io::Result<u32>, _flags: u32) -> Self::Item {
        // SAFETY: each successful CQE carries a new fd that nothing else owns; if
        // the stream was dropped, the `OwnedFd` made here closes it.
        res.map(|fd| unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
}
