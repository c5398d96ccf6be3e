//! `OpenOptions`: how to open a file, as in std, plus custom `open(2)` flags.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use percore_runtime::op::OpenAt;
use percore_runtime::Op;

use crate::error::with_path;
use crate::File;

/// Options for opening a file: std's [`std::fs::OpenOptions`] on io_uring
/// (`IORING_OP_OPENAT`), with the Unix extensions [`mode`](OpenOptions::mode)
/// and [`custom_flags`](OpenOptions::custom_flags).
///
/// # Examples
///
/// ```
/// use percore_fs::OpenOptions;
///
/// # percore_runtime::run(async {
/// let path = std::env::temp_dir().join("percore-doc-open-options");
/// let file = OpenOptions::new().write(true).create(true).truncate(true).open(&path).await?;
/// let (n, _) = file.write_at(b"hello".to_vec(), 0).await;
/// assert_eq!(n?, 5);
/// file.close().await?;
/// # std::fs::remove_file(&path)?;
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
#[derive(Clone, Debug)]
#[must_use = "options do nothing until `open` is called"]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
    custom_flags: i32,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// No access, no creation, mode `0o666` (before the umask).
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
        }
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.read = read;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.write = write;
        self
    }

    /// Open for appending (`O_APPEND`): every write goes to the end, whatever
    /// its offset. Implies write access.
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.append = append;
        self
    }

    /// Truncate an existing file to length 0 (`O_TRUNC`); needs write access.
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.truncate = truncate;
        self
    }

    /// Create the file if it does not exist (`O_CREAT`); needs write access.
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.create = create;
        self
    }

    /// Create the file, failing if it exists (`O_CREAT | O_EXCL`); needs write
    /// access. Overrides [`create`](OpenOptions::create) and
    /// [`truncate`](OpenOptions::truncate).
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.create_new = create_new;
        self
    }

    /// Permission bits of a created file (before the umask); default `0o666`.
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.mode = mode;
        self
    }

    /// Extra `open(2)` flags (`libc::O_NOATIME`, `libc::O_DSYNC`…), or'ed in.
    /// The access mode bits are ignored; `O_CLOEXEC` is always set.
    pub fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        self.custom_flags = flags;
        self
    }

    /// Opens `path` with these options.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for contradictory options (as std: creating or
    /// truncating without write access, or no access at all); otherwise those
    /// of `openat(2)`, naming the path.
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref();
        let fd = self.open_fd(path, 0).await?;
        Ok(File::from_parts(fd, path.into()))
    }

    /// Opens `path` with these options and `extra` flags (e.g. `O_DIRECT`).
    pub(crate) async fn open_fd(&self, path: &Path, extra: i32) -> io::Result<OwnedFd> {
        let flags = self.flags().map_err(|err| with_path(err, "open", path))? | extra;
        let op = OpenAt::new(path, flags, self.mode)?;
        Op::new(op)
            .await
            .map_err(|err| with_path(err, "open", path))
    }

    /// The `open(2)` flags these options mean, checked as std checks them.
    fn flags(&self) -> io::Result<i32> {
        let access = match (self.read, self.write || self.append) {
            (true, false) => libc::O_RDONLY,
            (false, true) => libc::O_WRONLY,
            (true, true) => libc::O_RDWR,
            (false, false) => return Err(invalid("neither read nor write access requested")),
        };
        let writable = self.write || self.append;
        if !writable && (self.truncate || self.create || self.create_new) {
            return Err(invalid("create or truncate without write access"));
        }
        if self.append && self.truncate && !self.create_new {
            return Err(invalid("append and truncate together"));
        }
        let creation = match (self.create, self.truncate, self.create_new) {
            (_, _, true) => libc::O_CREAT | libc::O_EXCL,
            (true, true, false) => libc::O_CREAT | libc::O_TRUNC,
            (true, false, false) => libc::O_CREAT,
            (false, true, false) => libc::O_TRUNC,
            (false, false, false) => 0,
        };
        let append = if self.append { libc::O_APPEND } else { 0 };
        let custom = self.custom_flags & !libc::O_ACCMODE;
        Ok(access | creation | append | custom)
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid open options: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_std_rules() {
        let mut opts = OpenOptions::new();
        assert!(opts.flags().is_err());
        assert_eq!(opts.read(true).flags().unwrap(), libc::O_RDONLY);
        assert!(opts.create(true).flags().is_err());
        let flags = opts.write(true).truncate(true).flags().unwrap();
        assert_eq!(flags, libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC);
        let flags = opts.create_new(true).flags().unwrap();
        assert_eq!(flags, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL);
        let mut append = OpenOptions::new();
        append
            .append(true)
            .custom_flags(libc::O_NOATIME | libc::O_RDWR);
        assert_eq!(
            append.flags().unwrap(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_NOATIME
        );
    }
}
