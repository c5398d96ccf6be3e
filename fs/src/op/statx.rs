use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use percore_runtime::io_uring::{opcode, squeue, types};
use percore_runtime::OpCode;

/// `IORING_OP_STATX`: like `statx(2)`, of a path (relative to the working
/// directory) or, with an empty path and `AT_EMPTY_PATH`, of an open fd.
#[derive(Debug)]
pub(crate) struct Statx {
    dirfd: RawFd,
    path: CString,
    flags: i32,
    mask: u32,
    buf: Box<libc::statx>,
}

impl Statx {
    /// Every field this crate reads, and the direct I/O alignments.
    const MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME | libc::STATX_DIOALIGN;

    /// Of `path`; `follow` says whether a final symlink is followed.
    pub(crate) fn path(path: CString, follow: bool) -> Statx {
        let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
        Statx::new(libc::AT_FDCWD, path, flags)
    }

    /// Of the open file `fd`.
    pub(crate) fn fd(fd: RawFd) -> Statx {
        Statx::new(fd, CString::default(), libc::AT_EMPTY_PATH)
    }

    fn new(dirfd: RawFd, path: CString, flags: i32) -> Statx {
        Statx {
            dirfd,
            path,
            flags,
            mask: Statx::MASK,
            // SAFETY: `statx` is plain old data; all zeroes is a valid value.
            buf: Box::new(unsafe { std::mem::zeroed() }),
        }
    }
}

// SAFETY: the entry points at the heap buffers of `path` and `buf`, which stay put
// while `self` moves.
unsafe impl OpCode for Statx {
    type Output = io::Result<libc::statx>;

    fn sqe(&mut self) -> squeue::Entry {
        let buf: *mut libc::statx = &mut *self.buf;
        opcode::Statx::new(types::Fd(self.dirfd), self.path.as_ptr(), buf.cast())
            .flags(self.flags)
            .mask(self.mask)
            .build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<libc::statx> {
        res.map(|_| *self.buf)
    }
}
