//! Errors that name the file: the original OS error, wrapped with the operation
//! and the path(s) it was about.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An I/O error about a named file: which operation failed, on which path(s),
/// and the original error as [`source`](Error::source).
///
/// Every error of this crate that concerns a path is an [`io::Error`] of the
/// original [`kind`](io::Error::kind) wrapping a `PathError`; its message reads
/// `open /srv/data.bin: No such file or directory (os error 2)`. The OS error
/// number stays reachable through [`raw_os_error`](crate::raw_os_error).
///
/// # Examples
///
/// ```
/// # percore_runtime::run(async {
/// let err = percore_fs::File::open("/no/such/file").await.unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// assert!(err.to_string().contains("/no/such/file"));
/// assert_eq!(percore_fs::raw_os_error(&err), Some(libc::ENOENT));
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct PathError {
    op: &'static str,
    path: PathBuf,
    to: Option<PathBuf>,
    source: io::Error,
}

impl PathError {
    /// The operation that failed (`open`, `read`, `rename`…).
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The path the operation was about (the source path of a rename or link).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The second path of a two-path operation (the target of a rename or link).
    pub fn to(&self) -> Option<&Path> {
        self.to.as_deref()
    }

    /// The OS error number, if the original error came from the kernel.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.path.display())?;
        if let Some(to) = &self.to {
            write!(f, " -> {}", to.display())?;
        }
        write!(f, ": {}", self.source)
    }
}

impl Error for PathError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// The OS error number of `err`, looking through a [`PathError`] wrapper.
///
/// # Examples
///
/// ```
/// # percore_runtime::run(async {
/// let err = percore_fs::remove_file("/no/such/file").await.unwrap_err();
/// assert_eq!(percore_fs::raw_os_error(&err), Some(libc::ENOENT));
/// # }).unwrap();
/// ```
pub fn raw_os_error(err: &io::Error) -> Option<i32> {
    err.raw_os_error().or_else(|| {
        err.get_ref()
            .and_then(|inner| inner.downcast_ref::<PathError>())
            .and_then(PathError::raw_os_error)
    })
}

/// Wraps `err` so it names `op` and `path`, keeping its kind.
pub(crate) fn with_path(err: io::Error, op: &'static str, path: &Path) -> io::Error {
    wrap(err, op, path, None)
}

/// Wraps `err` so it names `op` and both paths, keeping its kind.
pub(crate) fn with_paths(err: io::Error, op: &'static str, from: &Path, to: &Path) -> io::Error {
    wrap(err, op, from, Some(to))
}

fn wrap(err: io::Error, op: &'static str, path: &Path, to: Option<&Path>) -> io::Error {
    let kind = err.kind();
    io::Error::new(
        kind,
        PathError {
            op,
            path: path.to_path_buf(),
            to: to.map(Path::to_path_buf),
            source: err,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_kind_and_errno_and_names_the_path() {
        let err = with_path(
            io::Error::from_raw_os_error(libc::ENOSPC),
            "write",
            Path::new("/data/x"),
        );
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(raw_os_error(&err), Some(libc::ENOSPC));
        let text = err.to_string();
        assert!(text.starts_with("write /data/x: "), "{text}");
    }

    #[test]
    fn two_paths_are_both_named() {
        let err = with_paths(
            io::Error::from_raw_os_error(libc::EXDEV),
            "rename",
            Path::new("/a"),
            Path::new("/b"),
        );
        assert!(err.to_string().starts_with("rename /a -> /b: "));
    }
}
