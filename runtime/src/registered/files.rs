//! The ring's registered (fixed) file table: `IORING_REGISTER_FILES`, sparse,
//! one per core, shared by everything that installs files in it.
//!
//! An op that names a file by its slot (`IOSQE_FIXED_FILE`) spares the kernel
//! looking the fd up and taking and dropping a reference to the file on every
//! call. A [`FileSlot`] is one installed file; it is removed from the table when
//! the slot is dropped, on whatever thread that happens.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::{Arc, Weak};

use super::TableState;
use crate::driver::Registrar;
use crate::executor::{self, Remote, Shared};

/// Slots in each core's registered file table.
pub const FILE_SLOTS: u32 = 1024;

/// This core's use of its ring's file table; owned by the core.
#[derive(Default)]
pub(crate) struct FileTable {
    /// Per slot, whether a file is in it.
    state: TableState<()>,
}

impl FileTable {
    fn slots(&mut self, registrar: &mut Registrar<'_>) -> io::Result<&mut Vec<Option<()>>> {
        self.state
            .slots(FILE_SLOTS, |n| registrar.register_files_sparse(n), refusal)
    }

    /// Installs `fd` in a free slot; the kernel's table then holds its own
    /// reference to the file.
    fn install(&mut self, registrar: &mut Registrar<'_>, fd: i32) -> io::Result<u32> {
        let slots = self.slots(registrar)?;
        let Some(index) = slots.iter().position(Option::is_none) else {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "register a file: all {FILE_SLOTS} slots of this core's file table \
                     are taken; drop registered files first"
                ),
            ));
        };
        registrar
            .register_files_update(index as u32, fd)
            .map_err(|err| {
                io::Error::new(err.kind(), format!("register a file: {}", refusal(&err)))
            })?;
        slots[index] = Some(());
        Ok(index as u32)
    }

    /// Empties slot `index` (ops in flight keep their own reference).
    pub(crate) fn remove(&mut self, registrar: &mut Registrar<'_>, index: u32) {
        let Some(slots) = self.state.ready() else {
            return;
        };
        let Some(taken) = slots.get_mut(index as usize) else {
            return;
        };
        if registrar.register_files_update(index, -1).is_ok() {
            *taken = None;
        }
    }
}

/// The kernel's refusal, with what to do about it.
fn refusal(err: &io::Error) -> String {
    let hint = match err.raw_os_error() {
        Some(libc::EBUSY) => {
            " (this ring already has a file table registered outside percore; \
             use percore_runtime::registered::FileSlot instead)"
        }
        Some(libc::EMFILE) => " (the fd limit, RLIMIT_NOFILE, is below the table size)",
        _ => "",
    };
    format!("{err}{hint}")
}

/// A file installed in a slot of one core's registered file table.
///
/// Ops on that core can name the file by [`index`](FileSlot::index) with
/// `io_uring::types::Fixed`; ops on other cores must keep using the fd. The
/// table holds its own reference to the file, so closing the fd does not
/// close the file until the slot is dropped. Dropping the slot on its core
/// empties it at once; on another thread, that core empties it on its next
/// turn.
pub struct FileSlot {
    index: u32,
    /// The uid of the core whose table holds the file (unique per core, never
    /// reused, unlike an address).
    core_uid: u64,
    /// That core's inbox, for emptying the slot from another thread. Weak, so
    /// a slot that outlives its runtime does not keep the core's ring alive.
    core: Weak<Shared>,
}

impl FileSlot {
    /// Installs `fd` in a free slot of this core's file table.
    ///
    /// # Errors
    ///
    /// Outside a percore runtime; when the table is full ([`FILE_SLOTS`]);
    /// the kernel's (`EBUSY` if the ring's file table was registered outside
    /// this module, `EBADF` for a bad fd).
    pub fn new(fd: BorrowedFd<'_>) -> io::Result<FileSlot> {
        if !executor::has_core() {
            return Err(io::Error::other(
                "register a file: this thread runs no percore core",
            ));
        }
        executor::with_core(|core| {
            let index = executor::with_tables(|registrar, tables| {
                tables.files.install(registrar, fd.as_raw_fd())
            })?;
            Ok(FileSlot {
                index,
                core_uid: core.uid,
                core: Arc::downgrade(&core.shared),
            })
        })
    }

    /// The slot: what `io_uring::types::Fixed` takes.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Whether this thread runs the core whose table holds the file, so an op
    /// submitted here may name it by index.
    pub fn is_local(&self) -> bool {
        executor::core_uid() == Some(self.core_uid)
    }
}

impl Drop for FileSlot {
    fn drop(&mut self) {
        let index = self.index;
        if self.is_local() {
            // A drop from inside a driver borrow (none is known) leaves the slot
            // taken until the ring ends, rather than panicking in `drop`.
            executor::try_with_tables(|registrar, tables| tables.files.remove(registrar, index));
            return;
        }
        // The job runs on the slot's core. If that core is gone, so is its ring
        // and the table with it: nothing to do.
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let job = move || {
            executor::try_with_tables(|registrar, tables| tables.files.remove(registrar, index));
        };
        let _ = core.push(Remote::Job(Box::new(job)));
    }
}

impl fmt::Debug for FileSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSlot")
            .field("index", &self.index)
            .field("core_uid", &self.core_uid)
            .finish()
    }
}
