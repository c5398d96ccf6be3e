//! Names in the file tree: make and remove directories, remove, rename and link
//! files — each one io_uring operation.

use std::io;
use std::path::{Path, PathBuf};

use percore_runtime::Op;

use crate::error::{with_path, with_paths};
use crate::op::{cstring, LinkAt, MkDirAt, RenameAt, SymlinkAt, UnlinkAt};

/// Creates the directory `path` (mode `0o777` before the umask):
/// `IORING_OP_MKDIRAT`.
///
/// # Errors
///
/// `AlreadyExists` if `path` exists, `NotFound` if its parent does not;
/// otherwise those of `mkdir(2)`. All name the path.
///
/// # Examples
///
/// ```
/// # percore_runtime::run(async {
/// let dir = std::env::temp_dir().join("percore-doc-create-dir");
/// # let _ = std::fs::remove_dir(&dir);
/// percore_fs::create_dir(&dir).await?;
/// assert!(dir.is_dir());
/// percore_fs::remove_dir(&dir).await?;
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    mkdir(path)
        .await
        .map_err(|err| with_path(err, "mkdir", path))
}

async fn mkdir(path: &Path) -> io::Result<()> {
    let op = MkDirAt {
        path: cstring(path)?,
        mode: 0o777,
    };
    Op::new(op).await
}

/// Creates `path` and every missing parent; an existing directory is fine.
///
/// # Errors
///
/// If a component exists and is not a directory, or as [`create_dir`]; the
/// error names the directory that could not be made.
///
/// # Examples
///
/// ```
/// # percore_runtime::run(async {
/// let root = std::env::temp_dir().join("percore-doc-create-dir-all");
/// percore_fs::create_dir_all(root.join("a/b/c")).await?;
/// assert!(root.join("a/b/c").is_dir());
/// # std::fs::remove_dir_all(&root)?;
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    // Walk up until a directory exists (or is made), then make the rest going down.
    let mut missing: Vec<&Path> = Vec::new();
    let mut next = Some(path);
    while let Some(dir) = next {
        if dir.as_os_str().is_empty() {
            break;
        }
        match mkdir(dir).await {
            Ok(()) => break,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                missing.push(dir);
                next = dir.parent();
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                existing_dir(dir).await?;
                break;
            }
            Err(err) => return Err(with_path(err, "mkdir", dir)),
        }
    }
    for dir in missing.into_iter().rev() {
        match mkdir(dir).await {
            Ok(()) => {}
            // Another task or process made it meanwhile.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => existing_dir(dir).await?,
            Err(err) => return Err(with_path(err, "mkdir", dir)),
        }
    }
    Ok(())
}

/// Ok if `dir` is a directory; an error naming it if it is something else.
async fn existing_dir(dir: &Path) -> io::Result<()> {
    if crate::metadata(dir).await?.is_dir() {
        Ok(())
    } else {
        let err = io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a directory",
        );
        Err(with_path(err, "mkdir", dir))
    }
}

/// Removes the file (or symlink) `path`: `IORING_OP_UNLINKAT`.
///
/// # Errors
///
/// Those of `unlink(2)` (`NotFound`, `IsADirectory`…), naming the path.
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    unlink(path.as_ref(), 0, "unlink").await
}

/// Removes the empty directory `path`: `IORING_OP_UNLINKAT` with
/// `AT_REMOVEDIR`.
///
/// # Errors
///
/// Those of `rmdir(2)` (`NotFound`, `DirectoryNotEmpty`…), naming the path.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    unlink(path.as_ref(), libc::AT_REMOVEDIR, "rmdir").await
}

async fn unlink(path: &Path, flags: i32, op_name: &'static str) -> io::Result<()> {
    let op = UnlinkAt {
        path: cstring(path)?,
        flags,
    };
    Op::new(op)
        .await
        .map_err(|err| with_path(err, op_name, path))
}

/// Renames `from` to `to`, replacing `to` if it exists (as `rename(2)`):
/// `IORING_OP_RENAMEAT`.
///
/// # Errors
///
/// Those of `rename(2)` (`NotFound`, `CrossesDevices`…), naming both paths.
///
/// # Examples
///
/// ```
/// # percore_runtime::run(async {
/// let dir = std::env::temp_dir();
/// let (a, b) = (dir.join("percore-doc-rename-a"), dir.join("percore-doc-rename-b"));
/// percore_fs::write(&a, b"x".to_vec()).await?;
/// percore_fs::rename(&a, &b).await?;
/// assert!(!a.exists() && b.exists());
/// # std::fs::remove_file(&b)?;
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    let op = RenameAt {
        from: cstring(from)?,
        to: cstring(to)?,
        flags: 0,
    };
    Op::new(op)
        .await
        .map_err(|err| with_paths(err, "rename", from, to))
}

/// Makes `link` a new name (hard link) of the file `original`:
/// `IORING_OP_LINKAT`.
///
/// # Errors
///
/// Those of `link(2)` (`AlreadyExists`, `NotFound`…), naming both paths.
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    let op = LinkAt {
        original: cstring(original)?,
        link: cstring(link)?,
    };
    Op::new(op)
        .await
        .map_err(|err| with_paths(err, "link", original, link))
}

/// Makes `link` a symbolic link to `target` (which need not exist):
/// `IORING_OP_SYMLINKAT`.
///
/// # Errors
///
/// Those of `symlink(2)` (`AlreadyExists`…), naming both paths.
pub async fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (target, link) = (target.as_ref(), link.as_ref());
    let op = SymlinkAt {
        target: cstring(target)?,
        link: cstring(link)?,
    };
    Op::new(op)
        .await
        .map_err(|err| with_paths(err, "symlink", target, link))
}

/// Where the symlink `path` points (`readlink(2)`, on the blocking pool:
/// io_uring has no readlink).
///
/// # Errors
///
/// Those of `readlink(2)`, naming the path.
pub async fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_path_buf();
    crate::blocking(move || std::fs::read_link(&path).map_err(|e| with_path(e, "readlink", &path)))
        .await
}
