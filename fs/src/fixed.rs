//! Registered ("fixed") files and buffers: the kernel looks a fixed file up by
//! index instead of by fd, and maps a fixed buffer's pages once at
//! registration instead of on every op (`IORING_OP_READ_FIXED`/`WRITE_FIXED`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::rc::Rc;

use percore_runtime::registered::{self, FILE_SLOTS, TABLE_SLOTS};
use percore_runtime::{BufResult, IoBuf, IoBufMut, Op};

use crate::op::{ReadAt, Target, WriteAt};
use crate::{DmaBuffer, File};

/// A budget of slots in this core's registered file table
/// (`IORING_REGISTER_FILES`): files put in it are named by slot, not fd.
///
/// The table belongs to the core and is shared (with other `FixedFiles`, and
/// with files that register themselves once hot: see [`File`]); this value
/// caps how many slots its own files take. A file registered through it
/// stays in the table while its [`FixedFile`] lives.
///
/// # Examples
///
/// ```
/// use percore_fs::{File, FixedFiles};
///
/// # percore_runtime::run(async {
/// let table = FixedFiles::new(8)?;
/// let file = table.register(File::open("Cargo.toml").await?)?;
/// let (n, buf) = file.read_at(Vec::with_capacity(9), 0).await;
/// assert_eq!(n?, 9);
/// assert_eq!(buf, b"[package]");
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub struct FixedFiles {
    slots: u32,
    /// Files registered through this value and still alive.
    used: Rc<Cell<u32>>,
}

impl FixedFiles {
    /// A budget of `slots` files in this core's table.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for more slots than a core's table has ([`FILE_SLOTS`]).
    pub fn new(slots: u32) -> io::Result<FixedFiles> {
        if slots > FILE_SLOTS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a fixed file table of {slots} slots: a core's table has {FILE_SLOTS}"),
            ));
        }
        Ok(FixedFiles {
            slots,
            used: Rc::new(Cell::new(0)),
        })
    }

    /// Puts `file` in a free slot; ops on the returned [`FixedFile`] name the
    /// slot instead of the fd.
    ///
    /// # Errors
    ///
    /// An `Other` error naming the file if this budget is used up, or the
    /// core's table is full (the file is then closed); the kernel's, naming
    /// the file; outside a percore runtime.
    pub fn register(&self, file: File) -> io::Result<FixedFile> {
        if self.used.get() >= self.slots {
            return Err(io::Error::other(format!(
                "fixed file table full ({} slots) registering {}",
                self.slots,
                file.path().display()
            )));
        }
        let index = file
            .install_now()
            .map_err(|err| crate::error::with_path(err, "register", file.path()))?;
        self.used.set(self.used.get() + 1);
        // SAFETY: F_GETFL on an fd `file` keeps open; no memory is passed.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        Ok(FixedFile {
            file,
            index,
            used: Rc::clone(&self.used),
            direct: flags >= 0 && flags & libc::O_DIRECT != 0,
        })
    }
}

impl fmt::Debug for FixedFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedFiles")
            .field("slots", &self.slots)
            .field("used", &self.used.get())
            .finish()
    }
}

/// A file in a [`FixedFiles`] table: reads and writes like [`File`]'s, by slot.
///
/// Dropping it clears the slot (the kernel keeps the file for ops still in
/// flight) and closes the file.
#[derive(Debug)]
pub struct FixedFile {
    file: File,
    /// The file's slot (the `File` holds it, so its own ops use it too).
    index: u32,
    used: Rc<Cell<u32>>,
    /// Opened with `O_DIRECT`: its ops go to the device, so they are device
    /// ops, submitted at once and polled for (see `DmaFile`).
    direct: bool,
}

impl FixedFile {
    /// `op`, as a device op ([`Op::device`]) if the file bypasses the page cache.
    fn submit<T: percore_runtime::OpCode>(&self, op: Op<T>) -> Op<T> {
        if self.direct {
            op.device()
        } else {
            op
        }
    }

    /// The slot in the table.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The file, for what only [`File`] offers (sync, metadata…).
    pub fn file(&self) -> &File {
        &self.file
    }

    fn target(&self) -> Target {
        // By slot on the core that registered it, by fd elsewhere.
        self.file.target()
    }

    /// As [`File::read_at`], through the fixed slot.
    ///
    /// # Errors
    ///
    /// Those of `pread(2)`, naming the path.
    pub async fn read_at<B: IoBufMut>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let (res, buf) = self
            .submit(Op::new(ReadAt::new(self.target(), buf, pos)))
            .await;
        (res.map_err(self.file.path_error("read")), buf)
    }

    /// As [`File::write_at`], through the fixed slot.
    ///
    /// # Errors
    ///
    /// Those of `pwrite(2)`, naming the path.
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let (res, buf) = self
            .submit(Op::new(WriteAt::new(self.target(), buf, pos)))
            .await;
        (res.map_err(self.file.path_error("write")), buf)
    }

    /// Reads into a registered buffer's spare capacity: `IORING_OP_READ_FIXED`
    /// on the fixed slot, the cheapest read io_uring has.
    ///
    /// # Errors
    ///
    /// Those of `pread(2)`, naming the path.
    pub async fn read_fixed_at(&self, buf: FixedBuf, pos: u64) -> BufResult<usize, FixedBuf> {
        let index = buf.index;
        let (res, buf) = self
            .submit(Op::new(ReadAt::fixed(self.target(), buf, pos, index)))
            .await;
        (res.map_err(self.file.path_error("read")), buf)
    }

    /// Writes a registered buffer's initialised bytes: `IORING_OP_WRITE_FIXED`
    /// on the fixed slot.
    ///
    /// # Errors
    ///
    /// Those of `pwrite(2)`, naming the path.
    pub async fn write_fixed_at(&self, buf: FixedBuf, pos: u64) -> BufResult<usize, FixedBuf> {
        let index = buf.index;
        let (res, buf) = self
            .submit(Op::new(WriteAt::fixed(self.target(), buf, pos, index)))
            .await;
        (res.map_err(self.file.path_error("write")), buf)
    }
}

impl Drop for FixedFile {
    fn drop(&mut self) {
        // The file's slot empties itself when the file drops.
        self.used.set(self.used.get().saturating_sub(1));
    }
}

impl File {
    /// Reads into a registered buffer with `IORING_OP_READ_FIXED` (the file
    /// itself by fd).
    ///
    /// # Errors
    ///
    /// Those of `pread(2)`, naming the path.
    pub async fn read_fixed_at(&self, buf: FixedBuf, pos: u64) -> BufResult<usize, FixedBuf> {
        let index = buf.index;
        let (res, buf) = Op::new(ReadAt::fixed(self.target(), buf, pos, index)).await;
        (res.map_err(self.path_error("read")), buf)
    }

    /// Writes a registered buffer with `IORING_OP_WRITE_FIXED`.
    ///
    /// # Errors
    ///
    /// Those of `pwrite(2)`, naming the path.
    pub async fn write_fixed_at(&self, buf: FixedBuf, pos: u64) -> BufResult<usize, FixedBuf> {
        let index = buf.index;
        let (res, buf) = Op::new(WriteAt::fixed(self.target(), buf, pos, index)).await;
        (res.map_err(self.path_error("write")), buf)
    }
}

/// A set of equal, aligned buffers registered with this core's ring
/// (`IORING_REGISTER_BUFFERS`), lent out one at a time as [`FixedBuf`]s.
///
/// The buffers take a run of slots in the core's buffer table (shared with
/// the core's registered memory, see [`percore_runtime::registered`]), so a
/// core can have several pools. The memory is pinned, and counted against
/// `RLIMIT_MEMLOCK`. The buffers are aligned, so they also serve
/// [`DmaFile`](crate::DmaFile)-style `O_DIRECT` reads through a [`File`]
/// opened with `O_DIRECT`.
///
/// # Examples
///
/// ```
/// use percore_fs::{File, FixedBuffers};
///
/// # percore_runtime::run(async {
/// let bufs = FixedBuffers::new(4, 4096, 4096)?;
/// let file = File::open("Cargo.toml").await?;
/// let buf = bufs.get().expect("a free buffer");
/// let (n, buf) = file.read_fixed_at(buf, 0).await;
/// assert!(n? > 0);
/// assert!(buf.starts_with(b"[package]"));
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub struct FixedBuffers {
    pool: Rc<BufferPool>,
}

struct BufferPool {
    /// Free buffers, by position; a lent one is `None` until its `FixedBuf` drops.
    free: RefCell<Vec<Option<DmaBuffer>>>,
    /// The table slot of the first buffer; buffer `i` is slot `first + i`.
    first: u16,
}

impl FixedBuffers {
    /// Allocates `count` buffers of `size` bytes aligned to `align` and
    /// registers them with this core's ring.
    ///
    /// # Errors
    ///
    /// `ENOMEM` past `RLIMIT_MEMLOCK`; `OutOfMemory` if the core's buffer table
    /// has no run of `count` free slots ([`TABLE_SLOTS`] in all);
    /// `InvalidInput` for no buffers; `EINVAL` before Linux 5.19.
    ///
    /// # Panics
    ///
    /// Outside a percore runtime; if `align` is not a power of two.
    pub fn new(count: usize, size: usize, align: usize) -> io::Result<FixedBuffers> {
        if count == 0 || count > TABLE_SLOTS as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "register {count} fixed buffers: a pool has 1 to {TABLE_SLOTS} buffers \
                     (the slots of a core's buffer table)"
                ),
            ));
        }
        let mut bufs: Vec<DmaBuffer> = (0..count).map(|_| DmaBuffer::new(size, align)).collect();
        let iovecs: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|buf| libc::iovec {
                iov_base: buf.stable_mut_ptr().cast(),
                iov_len: buf.capacity(),
            })
            .collect();
        // SAFETY: every iovec points at a `DmaBuffer` owned by the pool, which
        // lives until every `FixedBuf` is back and the pool is dropped; the
        // pool's `Drop` unregisters the buffers before the memory is freed.
        let first = unsafe { registered::register_buffers(&iovecs) }
            .map_err(|err| io::Error::new(err.kind(), format!("fixed buffers: {err}")))?;
        Ok(FixedBuffers {
            pool: Rc::new(BufferPool {
                free: RefCell::new(bufs.into_iter().map(Some).collect()),
                first,
            }),
        })
    }

    /// A free buffer (empty), or `None` if all are lent out.
    pub fn get(&self) -> Option<FixedBuf> {
        let mut free = self.pool.free.borrow_mut();
        let index = free.iter().position(Option::is_some)?;
        let mut buf = free[index].take()?;
        buf.clear();
        Some(FixedBuf {
            buf: Some(buf),
            position: index,
            index: self.pool.first + index as u16,
            pool: Rc::clone(&self.pool),
        })
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        // Runs once every `FixedBuf` is back, so no op uses the buffers; the
        // kernel must let go of them before their memory is freed.
        let free = self.free.get_mut();
        let base = free.first().and_then(Option::as_ref).map(DmaBuffer::as_ptr);
        if let Some(base) = base {
            registered::unregister_buffers(self.first, free.len(), base);
        }
    }
}

impl fmt::Debug for FixedBuffers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let free = self.pool.free.borrow();
        f.debug_struct("FixedBuffers")
            .field("count", &free.len())
            .field("free", &free.iter().filter(|b| b.is_some()).count())
            .finish()
    }
}

/// A registered buffer lent by [`FixedBuffers`]; it goes back to the pool when
/// dropped. Works like a [`DmaBuffer`] (length, capacity, `Deref` to the
/// initialised bytes), and as a plain buffer with any read or write.
pub struct FixedBuf {
    /// Always `Some` until dropped.
    buf: Option<DmaBuffer>,
    /// Where it goes back in the pool.
    position: usize,
    index: u16,
    pool: Rc<BufferPool>,
}

impl FixedBuf {
    /// The buffer's index in the ring's table.
    pub fn index(&self) -> u16 {
        self.index
    }

    fn inner(&self) -> &DmaBuffer {
        match &self.buf {
            Some(buf) => buf,
            None => unreachable!("a FixedBuf holds its buffer until dropped"),
        }
    }

    fn inner_mut(&mut self) -> &mut DmaBuffer {
        match &mut self.buf {
            Some(buf) => buf,
            None => unreachable!("a FixedBuf holds its buffer until dropped"),
        }
    }

    /// The underlying aligned buffer (length, resize, clear…).
    pub fn buffer_mut(&mut self) -> &mut DmaBuffer {
        self.inner_mut()
    }
}

impl Deref for FixedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.inner()
    }
}

impl DerefMut for FixedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.inner_mut()
    }
}

impl Drop for FixedBuf {
    fn drop(&mut self) {
        if let Some(slot) = self.pool.free.borrow_mut().get_mut(self.position) {
            *slot = self.buf.take();
        }
    }
}

impl fmt::Debug for FixedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixedBuf")
            .field("index", &self.index)
            .field("buf", self.inner())
            .finish()
    }
}

// SAFETY: delegates to the `DmaBuffer`, whose heap storage stays put while the
// `FixedBuf` moves; the buffer is only given back to the pool on drop.
unsafe impl IoBuf for FixedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.inner().stable_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.inner().bytes_init()
    }
    fn bytes_total(&self) -> usize {
        self.inner().bytes_total()
    }
}

// SAFETY: as for `IoBuf`.
unsafe impl IoBufMut for FixedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.inner_mut().stable_mut_ptr()
    }
    unsafe fn set_init(&mut self, len: usize) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.inner_mut().set_init(len) }
    }
}
