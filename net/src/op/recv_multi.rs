use std::io;
use std::os::fd::AsRawFd;

use percore_runtime::buf_ring::{BufRing, Bundle, RingBuf};
use percore_runtime::io_uring::{opcode, squeue, types};
use percore_runtime::MultishotCode;

use super::SharedFd;

/// Multishot `IORING_OP_RECV` with buffer selection: one SQE, then one CQE per
/// arrival of data, each naming a buffer the kernel picked from `ring` — or,
/// where the ring takes bundles (`IORING_RECVSEND_BUNDLE`), the first of
/// several buffers filled in one go.
pub(crate) struct RecvMulti {
    fd: SharedFd,
    ring: BufRing,
}

impl RecvMulti {
    pub(crate) fn new(fd: SharedFd, ring: BufRing) -> RecvMulti {
        RecvMulti { fd, ring }
    }
}

// SAFETY: the entry points at no memory of its own; the kernel writes only into
// buffers of `ring`, which `self` keeps registered and allocated until the last
// CQE (a `BufRing` clone is held here), and `self.fd` keeps the fd open.
unsafe impl MultishotCode for RecvMulti {
    /// `Ok(Some((buf, more)))`: bytes arrived, in `buf` and, for a bundle
    /// of several buffers, those of `more`; `Ok(None)`: end of stream;
    /// `Err`: the receive failed (`ENOBUFS`: the ring was empty; the op has
    /// ended).
    type Item = io::Result<Option<(RingBuf, Option<Bundle>)>>;

    fn sqe(&mut self) -> squeue::Entry {
        let fd = types::Fd(self.fd.as_raw_fd());
        if self.ring.bundles() {
            opcode::RecvMultiBundle::new(fd, self.ring.group()).build()
        } else {
            opcode::RecvMulti::new(fd, self.ring.group()).build()
        }
    }

    fn next(&mut self, res: io::Result<u32>, flags: u32) -> Self::Item {
        let len = *res.as_ref().unwrap_or(&0) as usize;
        // SAFETY: `flags` is this op's CQE, and this op selects from
        // `self.ring`, as a bundle if the ring takes bundles; each CQE reaches
        // `next` once; `len` is what the kernel wrote.
        let bufs = unsafe { self.ring.take_bundle(flags, len) };
        res?;
        // No bytes (or no buffer at all) is the end of the stream; buffers
        // taken go back to the ring when dropped here.
        Ok(bufs.filter(|(first, _)| !first.is_empty()))
    }
}
