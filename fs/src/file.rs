//! `File`: a file on io_uring, read and written at explicit offsets with owned
//! buffers.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use percore_runtime::op::Close;
use percore_runtime::registered::FileSlot;
use percore_runtime::{BufResult, IoBuf, IoBufMut, Op};

use crate::error::with_path;
use crate::metadata::Metadata;
use crate::op::{Fallocate, Fsync, Ftruncate, ReadAt, Readv, Statx, SyncFileRange, Target};
use crate::op::{WriteAt, Writev};
use crate::OpenOptions;

/// An open file. Every read and write names its offset (there is no cursor),
/// takes its buffer by value and gives it back with the result.
///
/// Each method is one io_uring operation submitted on the current core (the
/// `*_exact_at`/`*_all_at` helpers loop until done). Errors name the file's path.
///
/// # Cancel safety
///
/// Dropping any of the futures is safe: the buffer stays with the runtime until
/// the kernel is done with it, then it is freed. What was read or written
/// before the drop is not reported.
///
/// # Hot files
///
/// After 64 operations a file installs itself in its core's registered file
/// table (see [`percore_runtime::registered::FileSlot`]); from then on its
/// operations on that core name it by slot, which saves the kernel an fd
/// lookup and a reference count per call. On other cores it is still named by
/// fd. The slot is emptied when the file is dropped or closed. A file that is
/// opened, used a few times and closed never takes a slot.
///
/// # Examples
///
/// ```
/// use percore_fs::File;
///
/// # percore_runtime::run(async {
/// let path = std::env::temp_dir().join("percore-doc-file");
/// let file = File::create(&path).await?;
/// file.write_all_at(b"hello, world".to_vec(), 0).await.0?;
/// file.sync_all().await?;
///
/// let (res, buf) = file.read_at(Vec::with_capacity(5), 7).await;
/// assert_eq!(res?, 5);
/// assert_eq!(buf, b"world");
/// file.close().await?;
/// # std::fs::remove_file(&path)?;
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
#[derive(Debug)]
pub struct File {
    fd: OwnedFd,
    path: Arc<Path>,
    hot: Hot,
}

/// Ops after which a file installs itself in its core's registered file table.
const HOT_AFTER: u32 = 64;

/// How much a file is used, and its slot in a core's file table once hot.
#[derive(Debug, Default)]
struct Hot {
    /// Ops that named the file by fd (counted until it has a slot).
    uses: AtomicU32,
    slot: OnceLock<FileSlot>,
}

impl File {
    pub(crate) fn from_parts(fd: OwnedFd, path: Arc<Path>) -> File {
        File {
            fd,
            path,
            hot: Hot::default(),
        }
    }

    /// Opens `path` read-only.
    ///
    /// # Errors
    ///
    /// Those of `openat(2)`, naming the path.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens `path` read-write, creating it or truncating it.
    ///
    /// # Errors
    ///
    /// Those of `openat(2)`, naming the path.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Creates `path` read-write, failing if it exists.
    ///
    /// # Errors
    ///
    /// `AlreadyExists` if it does; otherwise those of `openat(2)`, naming the path.
    pub async fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .await
    }

    /// Options to open a file with; the same as [`OpenOptions::new`].
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps a std file. Its path, for error messages, is read from
    /// `/proc/self/fd` (or is `fd N` if that fails).
    pub fn from_std(file: std::fs::File) -> File {
        let fd = OwnedFd::from(file);
        let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .unwrap_or_else(|_| format!("fd {}", fd.as_raw_fd()).into());
        File::from_parts(fd, path.into())
    }

    /// The std file with the same fd (blocking I/O; no path).
    pub fn into_std(self) -> std::fs::File {
        std::fs::File::from(self.fd)
    }

    /// The path this file was opened with (used in error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How an op names this file: by its slot in this core's registered file
    /// table if it has one there, else by fd. The op that makes the file hot
    /// ([`HOT_AFTER`] ops by fd) installs it first.
    pub(crate) fn target(&self) -> Target {
        match self.hot.slot.get() {
            Some(slot) if slot.is_local() => Target::Fixed(slot.index()),
            Some(_) => self.fd_target(),
            None => {
                if self.hot.uses.fetch_add(1, Ordering::Relaxed) == HOT_AFTER {
                    self.register_hot();
                }
                self.fd_target()
            }
        }
    }

    /// This file's slot in the current core's registered file table, if it
    /// has one there (it became hot on this core: see "Hot files" above).
    pub fn fixed_slot(&self) -> Option<u32> {
        let slot = self.hot.slot.get()?;
        slot.is_local().then(|| slot.index())
    }

    /// Installs the file in this core's file table now, unless it has a slot
    /// here already (what [`FixedFiles`](crate::FixedFiles) does); its slot.
    pub(crate) fn install_now(&self) -> io::Result<u32> {
        if let Some(slot) = self.hot.slot.get() {
            return match slot.is_local() {
                true => Ok(slot.index()),
                false => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the file already has a slot in another core's file table \
                     (it became hot there); register it on that core",
                )),
            };
        }
        let slot = FileSlot::new(self.fd.as_fd())?;
        let index = slot.index();
        match self.hot.slot.set(slot) {
            Ok(()) => Ok(index),
            // Another thread installed it first: use that slot.
            Err(_) => self.install_now(),
        }
    }

    /// The fd (every op can name the file by fd).
    fn fd_target(&self) -> Target {
        Target::Fd(self.fd.as_raw_fd())
    }

    /// Installs the file in this core's file table, once. If the table is
    /// full or refused, the file keeps being named by fd.
    #[cold]
    fn register_hot(&self) {
        let _ = self.install_now();
    }

    pub(crate) fn path_error(&self, op: &'static str) -> impl FnOnce(io::Error) -> io::Error + '_ {
        move |err| with_path(err, op, &self.path)
    }

    /// Reads up to the buffer's spare capacity (`bytes_total - bytes_init`) at
    /// `pos`, after its initialised bytes; returns how many bytes were read (0
    /// at end of file) and the buffer. One `IORING_OP_READ`, like `pread(2)`.
    ///
    /// A `Vec::with_capacity(n)` reads up to `n` bytes; a full buffer (a
    /// `Vec` at capacity, a `Box<[u8]>`) reads nothing — use
    /// [`IoBuf::slice`] or clear it.
    ///
    /// # Errors
    ///
    /// Those of `pread(2)` (`EISDIR`, `EIO`…), naming the path; the buffer
    /// comes back either way.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the read; the buffer is freed once the
    /// kernel is done with it.
    pub async fn read_at<B: IoBufMut>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let (res, buf) = Op::new(ReadAt::new(self.target(), buf, pos)).await;
        (res.map_err(self.path_error("read")), buf)
    }

    /// Writes the buffer's initialised bytes at `pos`; returns how many were
    /// written and the buffer. One `IORING_OP_WRITE`, like `pwrite(2)`.
    ///
    /// # Errors
    ///
    /// Those of `pwrite(2)` (`ENOSPC`, `EBADF` on a read-only file…), naming
    /// the path; the buffer comes back either way.
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let (res, buf) = Op::new(WriteAt::new(self.target(), buf, pos)).await;
        (res.map_err(self.path_error("write")), buf)
    }

    /// Fills the buffer's spare capacity from `pos`, reading until it is full.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the file ends first (the bytes read so far are in the
    /// buffer); otherwise those of `pread(2)`. All name the path.
    pub async fn read_exact_at<B: IoBufMut>(&self, mut buf: B, mut pos: u64) -> BufResult<(), B> {
        while buf.bytes_init() < buf.bytes_total() {
            let (res, back) = Op::new(ReadAt::new(self.target(), buf, pos)).await;
            buf = back;
            match res {
                Ok(0) => return (Err(self.eof()), buf),
                Ok(n) => pos += n as u64,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return (Err(with_path(err, "read", &self.path)), buf),
            }
        }
        (Ok(()), buf)
    }

    fn eof(&self) -> io::Error {
        with_path(
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file ended before the buffer was full",
            ),
            "read",
            &self.path,
        )
    }

    /// Writes all of the buffer's initialised bytes at `pos`, looping on short
    /// writes.
    ///
    /// # Errors
    ///
    /// `WriteZero` if the kernel accepts no bytes; otherwise those of
    /// `pwrite(2)`. All name the path.
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<(), B> {
        let mut done = 0;
        let mut buf = buf;
        while done < buf.bytes_init() {
            let op = WriteAt::new(self.target(), buf.slice(done..), pos + done as u64);
            let (res, slice) = Op::new(op).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let err = io::Error::new(io::ErrorKind::WriteZero, "the kernel wrote 0 bytes");
                    return (Err(with_path(err, "write", &self.path)), buf);
                }
                Ok(n) => done += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return (Err(with_path(err, "write", &self.path)), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Reads into the buffers in turn (each into its spare capacity) from `pos`:
    /// one `IORING_OP_READV`, like `preadv(2)`.
    ///
    /// # Errors
    ///
    /// Those of `preadv(2)`, naming the path; the buffers come back either way.
    pub async fn read_vectored_at<B: IoBufMut>(
        &self,
        bufs: Vec<B>,
        pos: u64,
    ) -> BufResult<usize, Vec<B>> {
        let (res, bufs) = Op::new(Readv::new(self.target(), bufs, pos)).await;
        (res.map_err(self.path_error("read")), bufs)
    }

    /// Writes the buffers' initialised bytes in turn at `pos`: one
    /// `IORING_OP_WRITEV`, like `pwritev(2)`. May write fewer bytes than given.
    ///
    /// # Errors
    ///
    /// Those of `pwritev(2)`, naming the path; the buffers come back either way.
    pub async fn write_vectored_at<B: IoBuf>(
        &self,
        bufs: Vec<B>,
        pos: u64,
    ) -> BufResult<usize, Vec<B>> {
        let (res, bufs) = Op::new(Writev::new(self.target(), bufs, pos)).await;
        (res.map_err(self.path_error("write")), bufs)
    }

    /// Flushes data and metadata to the device (`fsync(2)`).
    ///
    /// # Errors
    ///
    /// Those of `fsync(2)`, naming the path.
    pub async fn sync_all(&self) -> io::Result<()> {
        let op = Fsync {
            target: self.target(),
            datasync: false,
        };
        Op::new(op).await.map_err(self.path_error("fsync"))
    }

    /// Flushes data, and only the metadata needed to read it back
    /// (`fdatasync(2)`).
    ///
    /// # Errors
    ///
    /// Those of `fdatasync(2)`, naming the path.
    pub async fn sync_data(&self) -> io::Result<()> {
        let op = Fsync {
            target: self.target(),
            datasync: true,
        };
        Op::new(op).await.map_err(self.path_error("fdatasync"))
    }

    /// Starts or waits for writeback of `len` bytes at `offset`, as
    /// `sync_file_range(2)` with `flags` (`libc::SYNC_FILE_RANGE_WRITE`,
    /// `…_WAIT_BEFORE`, `…_WAIT_AFTER`). `len` 0 means to the end of the file.
    /// It makes no durability promise; [`sync_data`](File::sync_data) does.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `len` exceeds `u32::MAX` (the io_uring entry's field);
    /// otherwise those of `sync_file_range(2)`, naming the path.
    pub async fn sync_range(&self, offset: u64, len: u64, flags: u32) -> io::Result<()> {
        let len = u32::try_from(len).map_err(|_| {
            with_path(
                io::Error::new(io::ErrorKind::InvalidInput, "sync_range length over 4 GiB"),
                "sync_file_range",
                &self.path,
            )
        })?;
        let op = SyncFileRange {
            target: self.target(),
            offset,
            len,
            flags,
        };
        Op::new(op)
            .await
            .map_err(self.path_error("sync_file_range"))
    }

    /// Allocates or punches space as `fallocate(2)` with `mode` (0 allocates
    /// and extends the file; `libc::FALLOC_FL_KEEP_SIZE`,
    /// `FALLOC_FL_PUNCH_HOLE`…).
    ///
    /// # Errors
    ///
    /// Those of `fallocate(2)` (`ENOSPC`, `EOPNOTSUPP`…), naming the path.
    pub async fn fallocate(&self, offset: u64, len: u64, mode: i32) -> io::Result<()> {
        let op = Fallocate {
            target: self.target(),
            offset,
            len,
            mode,
        };
        Op::new(op).await.map_err(self.path_error("fallocate"))
    }

    /// Truncates or extends the file to `len` bytes: `IORING_OP_FTRUNCATE` where
    /// the kernel has it (6.9+), else `ftruncate(2)` on the blocking pool.
    ///
    /// # Errors
    ///
    /// Those of `ftruncate(2)`, naming the path.
    pub async fn set_len(&self, len: u64) -> io::Result<()> {
        let res = if percore_runtime::is_supported(Ftruncate::CODE) {
            let op = Ftruncate {
                target: self.target(),
                len,
            };
            Op::new(op).await
        } else {
            match self.fd.try_clone() {
                Ok(fd) => {
                    let file = std::fs::File::from(fd);
                    crate::blocking(move || file.set_len(len)).await
                }
                Err(err) => Err(err),
            }
        };
        res.map_err(self.path_error("ftruncate"))
    }

    /// Metadata of the open file (`statx(2)` on the fd).
    ///
    /// # Errors
    ///
    /// Those of `statx(2)`, naming the path.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        Op::new(Statx::fd(self.fd.as_raw_fd()))
            .await
            .map(Metadata::new)
            .map_err(self.path_error("statx"))
    }

    /// Closes the file with `IORING_OP_CLOSE` and reports what `close(2)` says
    /// (dropping a `File` closes it too, silently and synchronously).
    ///
    /// # Errors
    ///
    /// Those of `close(2)` (`EIO` from a late writeback on some filesystems),
    /// naming the path.
    pub async fn close(self) -> io::Result<()> {
        let File { fd, path, hot } = self;
        // The table holds the file too: empty the slot so the close is the last.
        drop(hot);
        Op::new(Close::new(fd))
            .await
            .map_err(|err| with_path(err, "close", &path))
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<File> for OwnedFd {
    fn from(file: File) -> OwnedFd {
        file.fd
    }
}
