//! The file of a job: laying it out (noise, each 4 KiB block stamped with its
//! index, the format `fs_compare` checks), reading it once to warm the page
//! cache, and a temp file that removes itself.

use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Bytes written per call while laying a file out.
const LAYOUT_CHUNK: usize = 1 << 20;

/// Block size of the layout's headers: each 4 KiB block starts with its index.
pub const LAYOUT_BLOCK: usize = 4096;

/// xorshift64: each task draws its own offsets, and writes their noise.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose sequence depends on `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Fills `bytes` with noise.
    pub fn fill(&mut self, bytes: &mut [u8]) {
        for word in bytes.chunks_mut(8) {
            let n = word.len();
            word.copy_from_slice(&self.next_u64().to_le_bytes()[..n]);
        }
    }
}

/// Makes `path` at least `size` bytes long, writing what is missing: noise
/// with each 4 KiB block's index in its first 8 bytes, then `fsync`. Returns
/// whether anything was written; a file already that long is left as it is.
///
/// # Errors
///
/// The path is not a regular file (a character device such as `/dev/full`
/// is tried, a block device or directory refused), cannot be created, or a
/// write fails (`ENOSPC`…). The message names the path.
pub fn lay_out(path: &Path, size: u64) -> io::Result<bool> {
    let context = |err: io::Error, what: &str| {
        io::Error::new(err.kind(), format!("{what} {}: {err}", path.display()))
    };
    if let Ok(meta) = std::fs::metadata(path) {
        let kind = meta.file_type();
        if kind.is_dir() || kind.is_block_device() {
            let what = if kind.is_dir() {
                "a directory"
            } else {
                "a block device"
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is {what}; the job needs a regular file", path.display()),
            ));
        }
    }
    if !needs_layout(path, size) {
        return Ok(false);
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        // Only what is missing is written; what is there stays.
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(|err| context(err, "cannot create"))?;
    let start = file.metadata().map_or(0, |m| m.len()) / LAYOUT_BLOCK as u64 * LAYOUT_BLOCK as u64;
    let mut rng = Rng::new(start);
    let mut chunk = vec![0u8; LAYOUT_CHUNK];
    let mut pos = start;
    while pos < size {
        let len = (size - pos).min(LAYOUT_CHUNK as u64) as usize;
        rng.fill(&mut chunk[..len]);
        for (i, block) in chunk[..len].chunks_mut(LAYOUT_BLOCK).enumerate() {
            let index = pos / LAYOUT_BLOCK as u64 + i as u64;
            let n = block.len().min(8);
            block[..n].copy_from_slice(&index.to_le_bytes()[..n]);
        }
        file.write_all_at(&chunk[..len], pos)
            .map_err(|err| context(err, "laying out"))?;
        pos += len as u64;
    }
    file.sync_all().map_err(|err| context(err, "syncing"))?;
    Ok(true)
}

/// Whether [`lay_out`] would write: `path` is missing or shorter than `size`.
pub fn needs_layout(path: &Path, size: u64) -> bool {
    std::fs::metadata(path).map_or(true, |meta| meta.len() < size)
}

/// Reads the first `size` bytes of `path` once, through the page cache, so a
/// buffered read job starts warm.
///
/// # Errors
///
/// The file cannot be opened or read; the message names the path.
pub fn read_through(path: &Path, size: u64) -> io::Result<()> {
    let context =
        |err: io::Error| io::Error::new(err.kind(), format!("reading {}: {err}", path.display()));
    let file = std::fs::File::open(path).map_err(context)?;
    let mut chunk = vec![0u8; LAYOUT_CHUNK];
    let mut pos = 0;
    while pos < size {
        match file.read_at(&mut chunk, pos).map_err(context)? {
            0 => break,
            n => pos += n as u64,
        }
    }
    Ok(())
}

/// A file in the temp dir that is removed when this is dropped.
#[derive(Debug)]
pub struct TempFile(PathBuf);

impl TempFile {
    /// A fresh name in `std::env::temp_dir()`, unique to this process.
    pub fn new(tag: &str) -> TempFile {
        let name = format!("percore-bench-fs-{}-{tag}", std::process::id());
        TempFile(std::env::temp_dir().join(name))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lay_out_writes_only_what_is_missing() {
        let file = TempFile::new("layout-test");
        assert!(lay_out(file.path(), 10_000).unwrap());
        let data = std::fs::read(file.path()).unwrap();
        assert_eq!(data.len(), 10_000);
        assert_eq!(&data[4096..4104], &1u64.to_le_bytes());
        assert!(!lay_out(file.path(), 8192).unwrap());
        assert!(lay_out(file.path(), 12_288).unwrap());
        let data = std::fs::read(file.path()).unwrap();
        assert_eq!(&data[8192..8200], &2u64.to_le_bytes());
    }

    #[test]
    fn rng_fills_odd_lengths() {
        let mut bytes = [0u8; 13];
        Rng::new(0).fill(&mut bytes);
        assert!(bytes.iter().any(|&b| b != 0));
    }
}
