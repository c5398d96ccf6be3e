use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use io_uring::{opcode, squeue, types};

use crate::OpCode;

/// `IORING_OP_OPENAT`: like `openat(2)` relative to the working directory.
///
/// If the future is dropped but the open succeeds anyway, the new fd is closed.
#[derive(Debug)]
pub struct OpenAt {
    path: CString,
    flags: i32,
    mode: u32,
}

impl OpenAt {
    /// Opens `path` with `open(2)` `flags` (`O_CLOEXEC` is always added) and `mode`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the path contains a NUL byte.
    pub fn new(path: impl AsRef<Path>, flags: i32, mode: u32) -> io::Result<OpenAt> {
        let path = path.as_ref();
        let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("path {} contains a NUL byte", path.display()),
            )
        })?;
        Ok(OpenAt {
            path,
            flags: flags | libc::O_CLOEXEC,
            mode,
        })
    }
}

// SAFETY: the entry points at `self.path`'s heap buffer, which stays in place while
// `self` moves.
unsafe impl OpCode for OpenAt {
    type Output = io::Result<OwnedFd>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), self.path.as_ptr())
            .flags(self.flags)
            .mode(self.mode)
            .build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<OwnedFd> {
        // SAFETY: a successful openat returns a new fd that nothing else owns.
        res.map(|fd| unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
}
