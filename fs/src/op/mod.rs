//! The io_uring operations this crate submits, one file per opcode, each an
//! [`OpCode`](percore_runtime::OpCode) that owns what the kernel may touch.
//!
//! Paths are `CString`s and buffers are owned values: their storage is on the
//! heap, so it stays put when the runtime moves an op into its table.

mod fallocate;
mod fsync;
mod ftruncate;
mod linkat;
mod mkdirat;
mod read;
mod readv;
mod renameat;
mod statx;
mod symlinkat;
mod sync_file_range;
mod unlinkat;
mod write;
mod writev;

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use percore_runtime::io_uring::types;

pub(crate) use fallocate::Fallocate;
pub(crate) use fsync::Fsync;
pub(crate) use ftruncate::Ftruncate;
pub(crate) use linkat::LinkAt;
pub(crate) use mkdirat::MkDirAt;
pub(crate) use read::ReadAt;
pub(crate) use readv::Readv;
pub(crate) use renameat::RenameAt;
pub(crate) use statx::Statx;
pub(crate) use symlinkat::SymlinkAt;
pub(crate) use sync_file_range::SyncFileRange;
pub(crate) use unlinkat::UnlinkAt;
pub(crate) use write::WriteAt;
pub(crate) use writev::Writev;

/// The file an op works on: a plain fd, or an index in the ring's registered
/// (fixed) file table, which saves the kernel an fd lookup per op.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    Fd(RawFd),
    Fixed(u32),
}

/// Puts `target` in an opcode builder's fd field, whichever kind it is.
macro_rules! with_target {
    ($target:expr, |$fd:ident| $build:expr) => {
        match $target {
            $crate::op::Target::Fd(raw) => {
                let $fd = percore_runtime::io_uring::types::Fd(raw);
                $build
            }
            $crate::op::Target::Fixed(index) => {
                let $fd = percore_runtime::io_uring::types::Fixed(index);
                $build
            }
        }
    };
}
pub(crate) use with_target;

/// `AT_FDCWD`: paths are relative to the working directory.
pub(crate) const CWD: types::Fd = types::Fd(libc::AT_FDCWD);

/// `path` as the NUL-terminated string the kernel reads.
pub(crate) fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path {} contains a NUL byte", path.display()),
        )
    })
}
