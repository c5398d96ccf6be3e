//! Whole-file helpers: `read`, `write`, `copy`.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use percore_runtime::IoBuf;

use crate::error::with_path;
use crate::{File, OpenOptions};

/// Chunk size of [`copy`].
const COPY_CHUNK: usize = 1 << 20;

/// Reads the whole file at `path`.
///
/// One `statx` sizes the buffer, then reads run until end of file (so a file
/// that grows meanwhile is read to its new end).
///
/// # Errors
///
/// Those of open, statx and read, naming the path.
///
/// # Examples
///
/// ```
/// # percore_runtime::run(async {
/// let text = percore_fs::read("Cargo.toml").await?;
/// assert!(text.starts_with(b"[package]"));
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let file = File::open(path).await?;
    let len = file.metadata().await?.len();
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    // One byte more than the size, so the read that finds the end needs no growth.
    let mut buf = Vec::with_capacity(len.saturating_add(1).max(512));
    loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        let pos = buf.len() as u64;
        let (res, back) = file.read_at(buf, pos).await;
        buf = back;
        if res? == 0 {
            break;
        }
    }
    file.close().await?;
    Ok(buf)
}

/// Writes `contents` to `path`, creating or truncating it.
///
/// # Errors
///
/// Those of open, write and close, naming the path.
///
/// # Examples
///
/// ```
/// # percore_runtime::run(async {
/// let path = std::env::temp_dir().join("percore-doc-write");
/// percore_fs::write(&path, b"abc".to_vec()).await?;
/// assert_eq!(std::fs::read(&path)?, b"abc");
/// # std::fs::remove_file(&path)?;
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub async fn write<B: IoBuf>(path: impl AsRef<Path>, contents: B) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .await?;
    file.write_all_at(contents, 0).await.0?;
    file.close().await
}

/// Copies the contents of `from` to `to` (created or truncated) and its
/// permission bits, returning the number of bytes copied. Reads and writes
/// 1 MiB at a time, the next read in flight while the last chunk is written.
///
/// # Errors
///
/// Those of open, read and write (naming the file concerned); `InvalidInput`
/// if `from` is not a regular file.
///
/// # Examples
///
/// ```
/// # percore_runtime::run(async {
/// let dst = std::env::temp_dir().join("percore-doc-copy");
/// let n = percore_fs::copy("Cargo.toml", &dst).await?;
/// assert_eq!(n, std::fs::metadata("Cargo.toml")?.len());
/// # std::fs::remove_file(&dst)?;
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref(), to.as_ref());
    let src = File::open(from).await?;
    let meta = src.metadata().await?;
    if !meta.is_file() {
        let err = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
        return Err(with_path(err, "copy", from));
    }
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(meta.mode() & 0o7777)
        .open(to)
        .await?;
    let copied = copy_data(&src, &dst).await?;
    // The umask may have narrowed the mode `open` was given; std's copy sets it.
    let perms = std::fs::Permissions::from_mode(meta.mode() & 0o7777);
    let to_buf = to.to_path_buf();
    crate::blocking(move || {
        std::fs::set_permissions(&to_buf, perms).map_err(|e| with_path(e, "chmod", &to_buf))
    })
    .await?;
    src.close().await?;
    dst.close().await?;
    Ok(copied)
}

/// Copies until `src` ends, with one read and one write in flight at a time.
async fn copy_data(src: &File, dst: &File) -> io::Result<u64> {
    let mut pos = 0u64;
    let (res, mut current) = src.read_at(Vec::with_capacity(COPY_CHUNK), 0).await;
    let mut n = res?;
    let mut spare = Vec::with_capacity(COPY_CHUNK);
    while n > 0 {
        let next_pos = pos + n as u64;
        // Write this chunk while the next one is read.
        let write = dst.write_all_at(current, pos);
        let read = src.read_at(spare, next_pos);
        let ((wrote, written), (read_res, next)) = futures_util::future::join(write, read).await;
        wrote?;
        n = read_res?;
        pos = next_pos;
        spare = written;
        spare.clear();
        current = next;
    }
    Ok(pos)
}
