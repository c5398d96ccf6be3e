//! `Metadata`: what `statx(2)` says about a file, and `metadata` /
//! `symlink_metadata` by path.

use std::fs::Permissions;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use percore_runtime::Op;

use crate::error::with_path;
use crate::op::{cstring, Statx};

/// Metadata of a file, from one `IORING_OP_STATX`: what [`std::fs::Metadata`]
/// and `std::os::unix::fs::MetadataExt` give, plus the direct I/O alignments.
///
/// # Examples
///
/// ```
/// # percore_runtime::run(async {
/// let meta = percore_fs::metadata("Cargo.toml").await?;
/// assert!(meta.is_file());
/// assert_eq!(meta.len(), std::fs::metadata("Cargo.toml")?.len());
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
#[derive(Clone, Copy)]
pub struct Metadata {
    stx: libc::statx,
}

impl Metadata {
    pub(crate) fn new(stx: libc::statx) -> Metadata {
        Metadata { stx }
    }

    fn kind(&self) -> u32 {
        u32::from(self.stx.stx_mode) & libc::S_IFMT
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.stx.stx_size
    }

    /// Whether the size is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.kind() == libc::S_IFREG
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }

    /// Whether this is a symbolic link (only from [`symlink_metadata`]).
    pub fn is_symlink(&self) -> bool {
        self.kind() == libc::S_IFLNK
    }

    /// The full `st_mode`: file type and permission bits.
    pub fn mode(&self) -> u32 {
        u32::from(self.stx.stx_mode)
    }

    /// The permission bits, as std's type.
    pub fn permissions(&self) -> Permissions {
        Permissions::from_mode(self.mode())
    }

    /// Inode number.
    pub fn ino(&self) -> u64 {
        self.stx.stx_ino
    }

    /// Device the file lives on, as `st_dev` encodes it.
    pub fn dev(&self) -> u64 {
        libc::makedev(self.stx.stx_dev_major, self.stx.stx_dev_minor)
    }

    /// Device this file is, for device files, as `st_rdev` encodes it.
    pub fn rdev(&self) -> u64 {
        libc::makedev(self.stx.stx_rdev_major, self.stx.stx_rdev_minor)
    }

    /// Number of hard links.
    pub fn nlink(&self) -> u64 {
        u64::from(self.stx.stx_nlink)
    }

    /// Owner's user id.
    pub fn uid(&self) -> u32 {
        self.stx.stx_uid
    }

    /// Owner's group id.
    pub fn gid(&self) -> u32 {
        self.stx.stx_gid
    }

    /// Preferred I/O block size.
    pub fn blksize(&self) -> u64 {
        u64::from(self.stx.stx_blksize)
    }

    /// Number of 512-byte blocks allocated.
    pub fn blocks(&self) -> u64 {
        self.stx.stx_blocks
    }

    /// Last modification time.
    pub fn modified(&self) -> io::Result<SystemTime> {
        time(self.stx.stx_mtime)
    }

    /// Last access time.
    pub fn accessed(&self) -> io::Result<SystemTime> {
        time(self.stx.stx_atime)
    }

    /// Creation time.
    ///
    /// # Errors
    ///
    /// `Unsupported` if the filesystem does not record it.
    pub fn created(&self) -> io::Result<SystemTime> {
        if self.stx.stx_mask & libc::STATX_BTIME == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "creation time is not available on this filesystem",
            ));
        }
        time(self.stx.stx_btime)
    }

    /// Last status change time (`st_ctime`).
    pub fn changed(&self) -> io::Result<SystemTime> {
        time(self.stx.stx_ctime)
    }

    /// Alignment `O_DIRECT` needs for buffer addresses, if the filesystem says
    /// (`STATX_DIOALIGN`; `None` also when direct I/O is not supported).
    pub fn dio_mem_align(&self) -> Option<u32> {
        self.dio_field(self.stx.stx_dio_mem_align)
    }

    /// Alignment `O_DIRECT` needs for file offsets and lengths, if the
    /// filesystem says.
    pub fn dio_offset_align(&self) -> Option<u32> {
        self.dio_field(self.stx.stx_dio_offset_align)
    }

    fn dio_field(&self, value: u32) -> Option<u32> {
        (self.stx.stx_mask & libc::STATX_DIOALIGN != 0 && value != 0).then_some(value)
    }
}

fn time(ts: libc::statx_timestamp) -> io::Result<SystemTime> {
    let nanos = Duration::new(ts.tv_sec.unsigned_abs(), ts.tv_nsec);
    let time = if ts.tv_sec >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(nanos)
    } else {
        SystemTime::UNIX_EPOCH
            .checked_sub(Duration::from_secs(ts.tv_sec.unsigned_abs()))
            .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(ts.tv_nsec))))
    };
    time.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "timestamp out of range"))
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata")
            .field("mode", &format_args!("{:#o}", self.mode()))
            .field("len", &self.len())
            .field("ino", &self.ino())
            .field("nlink", &self.nlink())
            .field("uid", &self.uid())
            .field("gid", &self.gid())
            .field("modified", &self.modified().ok())
            .finish_non_exhaustive()
    }
}

/// Metadata of `path`, following symlinks (`statx(2)` as an io_uring op).
///
/// # Errors
///
/// Those of `statx(2)` (`NotFound`, `PermissionDenied`…), naming the path.
///
/// # Examples
///
/// ```
/// # percore_runtime::run(async {
/// let meta = percore_fs::metadata("src").await?;
/// assert!(meta.is_dir());
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    stat(path.as_ref(), true, "metadata").await
}

/// Metadata of `path` itself: a symlink is described, not followed.
///
/// # Errors
///
/// Those of `statx(2)`, naming the path.
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    stat(path.as_ref(), false, "symlink_metadata").await
}

/// Whether `path` exists (following symlinks); errors other than "not found"
/// are returned.
///
/// # Errors
///
/// Those of `statx(2)` except `ENOENT`, naming the path.
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    match metadata(path).await {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

async fn stat(path: &Path, follow: bool, op: &'static str) -> io::Result<Metadata> {
    let c_path = cstring(path)?;
    Op::new(Statx::path(c_path, follow))
        .await
        .map(Metadata::new)
        .map_err(|err| with_path(err, op, path))
}
