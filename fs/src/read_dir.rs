//! `read_dir`: a directory's entries as a `Stream`, read in batches on the
//! blocking pool (io_uring has no `getdents`).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::FileType;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use percore_runtime::{spawn_blocking, BlockingHandle};

use crate::error::with_path;
use crate::metadata::Metadata;

/// Entries one trip to the blocking pool reads.
const BATCH: usize = 128;

/// Streams the entries of the directory `path` (not `.` and `..`, in the order
/// the filesystem gives them).
///
/// # Errors
///
/// Those of `opendir(2)` (`NotFound`, `NotADirectory`…), naming the path; each
/// item may carry an error of `readdir(2)`.
///
/// # Examples
///
/// ```
/// use futures_util::StreamExt;
///
/// # percore_runtime::run(async {
/// let mut entries = percore_fs::read_dir("src").await?;
/// let mut names = Vec::new();
/// while let Some(entry) = entries.next().await {
///     names.push(entry?.file_name());
/// }
/// assert!(names.iter().any(|name| name == "lib.rs"));
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_path_buf();
    let dir = path.clone();
    let (iter, first) = crate::blocking(move || {
        let mut iter = std::fs::read_dir(&path).map_err(|err| with_path(err, "opendir", &path))?;
        let first = batch(&mut iter);
        Ok((iter, first))
    })
    .await?;
    Ok(ReadDir {
        path: dir,
        ready: first,
        state: State::Idle(Some(Box::new(iter))),
    })
}

/// The stream of a directory's entries; see [`read_dir`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct ReadDir {
    /// The directory, for errors.
    path: PathBuf,
    /// Entries read and not yet yielded.
    ready: VecDeque<io::Result<DirEntry>>,
    state: State,
}

type Batch = (Box<std::fs::ReadDir>, VecDeque<io::Result<DirEntry>>);

#[derive(Debug)]
enum State {
    /// Holding the directory; `None` once it has no more entries.
    Idle(Option<Box<std::fs::ReadDir>>),
    /// A batch is being read on the blocking pool.
    Reading(BlockingHandle<Batch>),
}

/// Up to `BATCH` entries; fewer means the directory is exhausted.
fn batch(iter: &mut std::fs::ReadDir) -> VecDeque<io::Result<DirEntry>> {
    iter.by_ref()
        .take(BATCH)
        .map(|entry| entry.and_then(DirEntry::from_std))
        .collect()
}

impl Stream for ReadDir {
    type Item = io::Result<DirEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(entry) = this.ready.pop_front() {
                return Poll::Ready(Some(entry));
            }
            match &mut this.state {
                State::Idle(None) => return Poll::Ready(None),
                State::Idle(iter) => {
                    let Some(mut iter) = iter.take() else {
                        return Poll::Ready(None);
                    };
                    let handle = spawn_blocking(move || {
                        let entries = batch(&mut iter);
                        (iter, entries)
                    });
                    this.state = State::Reading(handle);
                }
                State::Reading(handle) => {
                    let (iter, entries) = match Pin::new(handle).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(batch)) => batch,
                        Poll::Ready(Err(err)) => {
                            this.state = State::Idle(None);
                            let err = io::Error::other(format!("blocking pool: {err}"));
                            return Poll::Ready(Some(Err(with_path(err, "readdir", &this.path))));
                        }
                    };
                    let more = entries.len() == BATCH;
                    this.ready = entries;
                    this.state = State::Idle(more.then_some(iter));
                }
            }
        }
    }
}

/// One entry of a directory: its name, full path and type, as `readdir(2)`
/// reported them.
#[derive(Debug)]
pub struct DirEntry {
    path: PathBuf,
    file_type: FileType,
    ino: u64,
}

impl DirEntry {
    fn from_std(entry: std::fs::DirEntry) -> io::Result<DirEntry> {
        use std::os::unix::fs::DirEntryExt;
        Ok(DirEntry {
            file_type: entry.file_type()?,
            ino: entry.ino(),
            path: entry.path(),
        })
    }

    /// The directory's path joined with the entry's name.
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The entry's name.
    pub fn file_name(&self) -> OsString {
        self.path
            .file_name()
            .map(OsString::from)
            .unwrap_or_default()
    }

    /// The entry's type (a symlink is a symlink, not what it points to).
    pub fn file_type(&self) -> FileType {
        self.file_type
    }

    /// The entry's inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The entry's metadata, not following a symlink (one `IORING_OP_STATX`).
    ///
    /// # Errors
    ///
    /// Those of `statx(2)` (`NotFound` if the entry went away), naming the path.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        crate::symlink_metadata(&self.path).await
    }
}
