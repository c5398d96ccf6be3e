//! `DmaFile`: a file opened with `O_DIRECT`, whose reads and writes bypass the
//! page cache and must be aligned to what the file's device asks.

use std::io;
use std::ops::Deref;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use percore_runtime::{BufResult, IoBuf, IoBufMut, Op};

use crate::error::with_path;
use crate::op::{ReadAt, WriteAt};
use crate::{DmaBuffer, File, Metadata, OpenOptions};

/// Alignment assumed when the filesystem does not report one (`STATX_DIOALIGN`).
const FALLBACK_ALIGN: usize = 4096;

/// What [`DmaFile::alloc_buffer`] aligns to at least (the usual page size).
const PAGE: usize = 4096;

/// A file opened with `O_DIRECT`: reads and writes go straight between the
/// device and your buffer, skipping the page cache.
///
/// The kernel then needs buffer addresses, file offsets and lengths to be
/// multiples of the device's alignment, read once at open with `statx`'s
/// `STATX_DIOALIGN` (4096 when the filesystem does not say).
/// [`alloc_buffer`](DmaFile::alloc_buffer) gives buffers that fit; an op with
/// a misaligned buffer, offset or length fails *before* it is submitted, with an
/// `InvalidInput` error that says which value is off and by how much, instead
/// of the kernel's bare `EINVAL`. [`read_range`](DmaFile::read_range) serves any
/// byte range by reading the aligned blocks that cover it.
///
/// # Cancel safety
///
/// As for [`File`]: dropping a future leaves its buffer with the runtime until
/// the kernel is done with it.
///
/// # Performance
///
/// A core submits the ops its tasks issued in one batch per tick, which is
/// what makes buffered and socket I/O cheap. Direct reads and writes go to a
/// device, where an entry waiting in the queue until the tick ends leaves the
/// device below its queue depth, so `DmaFile` submits each one at once, and a
/// core with nothing else to do polls for their completions for a while
/// before it sleeps ([`Op::device`](percore_runtime::Op::device); the budget is
/// [`Builder::device_spin`](percore_runtime::Builder::device_spin); see
/// `benches/benches/fs_compare.rs`).
///
/// # Examples
///
/// ```
/// use percore_fs::DmaFile;
///
/// # percore_runtime::run(async {
/// let path = std::env::temp_dir().join("percore-doc-dma");
/// let file = DmaFile::create(&path).await?;
/// let block = file.block_size();
///
/// let mut buf = file.alloc_buffer(block);
/// buf.resize(block, b'x');
/// file.write_all_at(buf, 0).await.0?;
///
/// let data = file.read_range(10, 5).await?;
/// assert_eq!(&data[..], b"xxxxx");
/// file.close().await?;
/// # std::fs::remove_file(&path)?;
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
#[derive(Debug)]
pub struct DmaFile {
    file: File,
    /// What buffer addresses must be a multiple of.
    mem_align: usize,
    /// What offsets and lengths must be multiples of.
    block: usize,
}

impl DmaFile {
    /// Opens `path` read-only with `O_DIRECT`.
    ///
    /// # Errors
    ///
    /// Those of `openat(2)` (`EINVAL` if the filesystem has no direct I/O), naming
    /// the path.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<DmaFile> {
        DmaFile::open_with(OpenOptions::new().read(true), path).await
    }

    /// Opens `path` read-write with `O_DIRECT`, creating or truncating it.
    ///
    /// # Errors
    ///
    /// As [`open`](DmaFile::open).
    pub async fn create(path: impl AsRef<Path>) -> io::Result<DmaFile> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(true);
        DmaFile::open_with(&options, path).await
    }

    /// Opens `path` with `options` plus `O_DIRECT`.
    ///
    /// # Errors
    ///
    /// As [`open`](DmaFile::open).
    pub async fn open_with(options: &OpenOptions, path: impl AsRef<Path>) -> io::Result<DmaFile> {
        let path = path.as_ref();
        let fd = options.open_fd(path, libc::O_DIRECT).await?;
        let file = File::from_parts(fd, path.into());
        let meta = file.metadata().await?;
        let block = meta
            .dio_offset_align()
            .map_or(FALLBACK_ALIGN, |n| n as usize);
        let mem_align = meta.dio_mem_align().map_or(FALLBACK_ALIGN, |n| n as usize);
        Ok(DmaFile {
            file,
            mem_align,
            block,
        })
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// What file offsets and lengths must be multiples of.
    pub fn block_size(&self) -> usize {
        self.block
    }

    /// What buffer addresses must be multiples of.
    pub fn mem_alignment(&self) -> usize {
        self.mem_align
    }

    /// An empty buffer of at least `len` bytes, rounded up to whole blocks, at an
    /// address aligned for this file and to the page size: a buffer that
    /// straddles fewer pages costs the kernel fewer pins and the device fewer
    /// DMA segments per op.
    ///
    /// The buffer comes from the core's registered memory when it has room
    /// ([`DmaBuffer::new_registered`]): reads and writes through it are then
    /// fixed ops (`IORING_OP_READ_FIXED`/`WRITE_FIXED`), which skip pinning the
    /// pages on every call.
    pub fn alloc_buffer(&self, len: usize) -> DmaBuffer {
        let capacity = len.div_ceil(self.block).max(1) * self.block;
        DmaBuffer::new_registered(capacity, self.mem_align.max(self.block).max(PAGE))
    }

    /// Reads into the buffer's spare capacity (after its initialised bytes) at
    /// `pos`, which must all be aligned; returns how many bytes were read (fewer
    /// at the end of the file) and the buffer.
    ///
    /// # Errors
    ///
    /// `InvalidInput`, before anything is submitted, if the buffer address, its
    /// spare length or `pos` is misaligned (the message says which); otherwise
    /// those of `pread(2)`. All name the path.
    pub async fn read_at<B: IoBufMut>(&self, mut buf: B, pos: u64) -> BufResult<usize, B> {
        let init = buf.bytes_init();
        let addr = buf.stable_mut_ptr() as usize + init;
        if let Err(err) = self.check("read", addr, buf.bytes_total() - init, pos) {
            return (Err(err), buf);
        }
        let (res, buf) = Op::new(ReadAt::new(self.file.target(), buf, pos))
            .device()
            .await;
        (res.map_err(self.file.path_error("read")), buf)
    }

    /// Writes the buffer's initialised bytes at `pos`, which must all be
    /// aligned; returns how many were written and the buffer.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if misaligned, as [`read_at`](DmaFile::read_at); otherwise
    /// those of `pwrite(2)`. All name the path.
    pub async fn write_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<usize, B> {
        let addr = buf.stable_ptr() as usize;
        if let Err(err) = self.check("write", addr, buf.bytes_init(), pos) {
            return (Err(err), buf);
        }
        let (res, buf) = Op::new(WriteAt::new(self.file.target(), buf, pos))
            .device()
            .await;
        (res.map_err(self.file.path_error("write")), buf)
    }

    /// Writes all of the buffer's initialised bytes at `pos`, looping on short
    /// writes (each remainder stays aligned, or the loop ends with an error).
    ///
    /// # Errors
    ///
    /// As [`write_at`](DmaFile::write_at); `WriteZero` if the kernel accepts no
    /// bytes.
    pub async fn write_all_at<B: IoBuf>(&self, buf: B, pos: u64) -> BufResult<(), B> {
        let mut done = 0;
        let mut buf = buf;
        while done < buf.bytes_init() {
            let (res, slice) = self.write_at(buf.slice(done..), pos + done as u64).await;
            buf = slice.into_inner();
            match res {
                Ok(0) => {
                    let err = io::Error::new(io::ErrorKind::WriteZero, "the kernel wrote 0 bytes");
                    return (Err(with_path(err, "write", self.path())), buf);
                }
                Ok(n) => done += n,
                Err(err) => return (Err(err), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Reads `len` bytes at any `pos`, aligned or not, by reading the whole
    /// blocks that cover them into a fresh aligned buffer. The result holds
    /// fewer bytes if the file ends first.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `len` is too large to be read into memory at all;
    /// otherwise those of `pread(2)`. All name the path.
    pub async fn read_range(&self, pos: u64, len: usize) -> io::Result<DmaRead> {
        let block = self.block as u64;
        let start = pos - pos % block;
        let skip = (pos - start) as usize;
        let Some(total) = skip
            .checked_add(len)
            .and_then(|n| n.checked_next_multiple_of(self.block))
        else {
            let err = io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a range of {len} bytes at offset {pos} does not fit in memory"),
            );
            return Err(with_path(err, "read", self.path()));
        };
        let mut buf = self.alloc_buffer(total);
        let mut at = start;
        // A short read before the end can happen (signals, some filesystems);
        // continue at the block where it stopped.
        while buf.len() < total {
            let (res, back) = self.read_at(buf.slice(..total), at).await;
            buf = back.into_inner();
            let n = res?;
            if n == 0 || buf.len() % self.block != 0 {
                break;
            }
            at = start + buf.len() as u64;
        }
        // Past the end of the file, the range is empty.
        let start = skip.min(buf.len());
        let len = (buf.len() - start).min(len);
        Ok(DmaRead { buf, start, len })
    }

    /// Checks that an op's memory and file range are aligned for this file.
    fn check(&self, op: &'static str, addr: usize, len: usize, pos: u64) -> io::Result<()> {
        let (block, mem) = (self.block, self.mem_align);
        let problem = if addr % mem != 0 {
            format!(
                "buffer address {addr:#x} is not a multiple of {mem} (it is {} past one)",
                addr % mem
            )
        } else if len % block != 0 {
            format!("length {len} is not a multiple of the block size {block}")
        } else if pos % block as u64 != 0 {
            format!("offset {pos} is not a multiple of the block size {block}")
        } else {
            return Ok(());
        };
        let err = io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "misaligned O_DIRECT {op}: {problem}; this file's device needs buffer \
                 addresses aligned to {mem} and offsets and lengths to {block} bytes \
                 (allocate with DmaFile::alloc_buffer, or use DmaFile::read_range)"
            ),
        );
        Err(with_path(err, op, self.path()))
    }

    /// Flushes data and metadata (`fsync(2)`).
    ///
    /// # Errors
    ///
    /// Those of `fsync(2)`, naming the path.
    pub async fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all().await
    }

    /// Flushes data and the metadata needed to read it (`fdatasync(2)`).
    ///
    /// # Errors
    ///
    /// Those of `fdatasync(2)`, naming the path.
    pub async fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data().await
    }

    /// Truncates or extends the file, as [`File::set_len`].
    ///
    /// # Errors
    ///
    /// Those of `ftruncate(2)`, naming the path.
    pub async fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len).await
    }

    /// Allocates space, as [`File::fallocate`].
    ///
    /// # Errors
    ///
    /// Those of `fallocate(2)`, naming the path.
    pub async fn fallocate(&self, offset: u64, len: u64, mode: i32) -> io::Result<()> {
        self.file.fallocate(offset, len, mode).await
    }

    /// Metadata of the open file.
    ///
    /// # Errors
    ///
    /// Those of `statx(2)`, naming the path.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        self.file.metadata().await
    }

    /// Closes the file, reporting what `close(2)` says.
    ///
    /// # Errors
    ///
    /// Those of `close(2)`, naming the path.
    pub async fn close(self) -> io::Result<()> {
        self.file.close().await
    }
}

impl AsRawFd for DmaFile {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl From<DmaFile> for OwnedFd {
    fn from(file: DmaFile) -> OwnedFd {
        file.file.into()
    }
}

/// Bytes of [`DmaFile::read_range`]: derefs to exactly the requested range (or
/// less at the end of the file), inside the aligned buffer that was read.
#[derive(Debug)]
pub struct DmaRead {
    buf: DmaBuffer,
    start: usize,
    len: usize,
}

impl DmaRead {
    /// The whole aligned buffer, to reuse it.
    pub fn into_buffer(self) -> DmaBuffer {
        self.buf
    }
}

impl Deref for DmaRead {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}
