//! Registered (fixed) buffers and files of this core's ring, and registered
//! memory.
//!
//! Files: the ring's file table is shared the same way; a [`FileSlot`]
//! installs one file in it (what `percore_fs` does by itself for a file that
//! has become hot, and what `percore_fs::FixedFiles` does on request).
//!
//! A read or write into a registered buffer (`IORING_OP_READ_FIXED` /
//! `WRITE_FIXED`) skips the per-op work of pinning the user pages, which for
//! `O_DIRECT` is a large part of the CPU a small read costs. The kernel has one
//! buffer table per ring; this module shares it:
//!
//! - [`register_buffers`] puts caller-owned memory in a run of free slots (what
//!   `percore_fs::FixedBuffers` does), and [`unregister_buffers`] frees them;
//! - [`alloc()`] hands out chunks of a per-core *registered memory* pool, which the
//!   core registers itself, a 2 MiB region at a time, up to
//!   [`REGISTERED_MEMORY`] bytes; [`index_of`] tells an op whether its buffer
//!   lies in that pool and under which slot, so `O_DIRECT` files can issue
//!   fixed reads for buffers that came from it without the caller doing anything.
//!
//! Registered memory is pinned and counted against `RLIMIT_MEMLOCK` (unless the
//! process has `CAP_IPC_LOCK`). If the kernel refuses the table or a region
//! (an old kernel without sparse tables, a low memlock limit, or a table the
//! application registered itself through [`with_submitter`](crate::with_submitter)),
//! [`alloc()`] returns `None` from then on for this core, and callers use plain
//! heap memory: slower, never wrong.

use std::alloc::{self, Layout};
use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError};

use crate::driver::Registrar;
use crate::executor;

mod files;

use files::FileTable;
pub use files::{FileSlot, FILE_SLOTS};

/// Slots in each core's sparse buffer table.
pub const TABLE_SLOTS: u32 = 4096;

/// Bytes of registered memory [`alloc()`] may take per core, at most.
pub const REGISTERED_MEMORY: usize = 16 << 20;

/// One region of the pool: registered in one slot, split into chunks.
const REGION: usize = 2 << 20;
/// The smallest chunk; chunks are powers of two from here to [`MAX_CHUNK`].
const MIN_CHUNK: usize = 4096;
/// The largest chunk [`alloc()`] serves; larger buffers use the heap.
const MAX_CHUNK: usize = 1 << 20;
/// Size classes: 4 KiB, 8 KiB, ... 1 MiB.
const CLASSES: usize = (MAX_CHUNK.trailing_zeros() - MIN_CHUNK.trailing_zeros() + 1) as usize;

/// The core's registered buffer and file tables; owned by the core, which
/// drops them after the driver, so registered memory outlives the ring.
#[derive(Default)]
pub(crate) struct Tables {
    pub(crate) buffers: BufTable,
    pub(crate) files: FileTable,
}

/// This core's use of its ring's buffer table.
#[derive(Default)]
pub(crate) struct BufTable {
    state: TableState<usize>,
    pool: Option<Arc<Pool>>,
    /// The pool's regions (start address, slot), for [`index_of`] without the lock.
    regions: Vec<(usize, u16)>,
    /// Set once the pool could not grow (the kernel refused, or it is full).
    pool_closed: bool,
}

/// A sparse kernel table (buffers or files), registered on first use; per
/// slot, what the core keeps about its entry (`None`: free).
#[derive(Default)]
pub(crate) enum TableState<T> {
    /// Not registered yet.
    #[default]
    Untried,
    /// Registered.
    Ready(Vec<Option<T>>),
    /// The kernel refused the table; the error, with what to do.
    Refused(io::ErrorKind, String),
}

impl<T> TableState<T> {
    /// The slots, calling `register(slots)` the first time; a refusal is kept
    /// (as `explain` words it) and returned from then on.
    pub(crate) fn slots(
        &mut self,
        slots: u32,
        register: impl FnOnce(u32) -> io::Result<()>,
        explain: fn(&io::Error) -> String,
    ) -> io::Result<&mut Vec<Option<T>>> {
        if let TableState::Untried = self {
            *self = match register(slots) {
                Ok(()) => TableState::Ready((0..slots).map(|_| None).collect()),
                Err(err) => TableState::Refused(err.kind(), explain(&err)),
            };
        }
        match self {
            TableState::Ready(slots) => Ok(slots),
            TableState::Refused(kind, msg) => Err(io::Error::new(*kind, msg.clone())),
            TableState::Untried => unreachable!("the table was just tried"),
        }
    }

    /// The slots, if the table is registered.
    pub(crate) fn ready(&mut self) -> Option<&mut Vec<Option<T>>> {
        match self {
            TableState::Ready(slots) => Some(slots),
            _ => None,
        }
    }
}

impl BufTable {
    /// Per slot, the address of the memory in it; the table is registered on
    /// first use.
    fn slots(&mut self, registrar: &mut Registrar<'_>) -> io::Result<&mut Vec<Option<usize>>> {
        self.state.slots(
            TABLE_SLOTS,
            |n| registrar.register_buffers_sparse(n),
            refusal,
        )
    }

    /// Registers `iovecs` in a run of free slots; the first slot's index.
    ///
    /// # Safety
    ///
    /// As [`register_buffers`].
    pub(crate) unsafe fn register(
        &mut self,
        registrar: &mut Registrar<'_>,
        iovecs: &[libc::iovec],
    ) -> io::Result<u16> {
        let slots = self.slots(registrar)?;
        let count = iovecs.len();
        let Some(first) = free_run(slots, count) else {
            let free = slots.iter().filter(|slot| slot.is_none()).count();
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "register {count} buffers: no run of {count} free slots in this core's \
                     buffer table ({free} of {TABLE_SLOTS} slots free); free some \
                     registered buffers or register fewer"
                ),
            ));
        };
        // SAFETY: the caller keeps the memory valid while it is registered.
        unsafe { registrar.register_buffers_update(first as u32, iovecs) }.map_err(|err| {
            io::Error::new(err.kind(), format!("register buffers: {}", refusal(&err)))
        })?;
        for (slot, iovec) in slots[first..].iter_mut().zip(iovecs) {
            *slot = Some(iovec.iov_base as usize);
        }
        Ok(first as u16)
    }

    /// Empties `count` slots from `first` if the first holds memory at `base`
    /// (best effort: the memory stays the caller's either way, and ops in flight
    /// keep their own reference).
    pub(crate) fn unregister(
        &mut self,
        registrar: &mut Registrar<'_>,
        first: u16,
        count: usize,
        base: *const u8,
    ) {
        let Some(slots) = self.state.ready() else {
            return;
        };
        let first = usize::from(first);
        let Some(taken) = slots.get_mut(first..first + count) else {
            return;
        };
        if taken.first() != Some(&Some(base as usize)) {
            // Another ring's registration (a runtime that ended on this thread).
            return;
        }
        let empty = vec![
            libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0
            };
            count
        ];
        // SAFETY: empty iovecs register no memory.
        if unsafe { registrar.register_buffers_update(first as u32, &empty) }.is_ok() {
            taken.fill(None);
        }
    }

    /// A chunk of registered memory, or `None` (too big, or no pool here).
    fn alloc(
        &mut self,
        registrar: &mut Registrar<'_>,
        size: usize,
        align: usize,
    ) -> Option<RegisteredMem> {
        if !registrar.pins_memory() {
            // Nothing to gain without io_uring: plain memory does as well.
            return None;
        }
        let class = class_of(size, align)?;
        if let Some(mem) = self.pool.as_ref().and_then(|pool| pool.take(class)) {
            return Some(mem);
        }
        if self.pool_closed || !self.grow(registrar) {
            self.pool_closed = true;
            return None;
        }
        self.pool.as_ref().and_then(|pool| pool.take(class))
    }

    /// Adds a registered region to the pool; false if it cannot.
    fn grow(&mut self, registrar: &mut Registrar<'_>) -> bool {
        let pool = Arc::clone(self.pool.get_or_insert_with(|| Arc::new(Pool::default())));
        if self.regions.len() * REGION >= REGISTERED_MEMORY {
            return false;
        }
        let Some(region) = Region::new() else {
            return false;
        };
        let iovec = [libc::iovec {
            iov_base: region.base.as_ptr().cast(),
            iov_len: REGION,
        }];
        // SAFETY: the region's memory is owned by the pool, which the table holds
        // until the ring is gone, and every chunk holds until it is dropped.
        let Ok(index) = (unsafe { self.register(registrar, &iovec) }) else {
            return false;
        };
        self.regions.push((region.base.as_ptr() as usize, index));
        pool.add(region);
        true
    }

    fn index_of(&self, addr: usize, len: usize) -> Option<u16> {
        let end = addr.checked_add(len)?;
        self.regions
            .iter()
            .find(|&&(base, _)| addr >= base && end <= base + REGION)
            .map(|&(_, index)| index)
    }
}

/// The first run of `count` free slots.
fn free_run(slots: &[Option<usize>], count: usize) -> Option<usize> {
    if count == 0 {
        return None;
    }
    let mut run = 0;
    for (i, slot) in slots.iter().enumerate() {
        run = if slot.is_some() { 0 } else { run + 1 };
        if run == count {
            return Some(i + 1 - count);
        }
    }
    None
}

/// The kernel's refusal, with what to do about it.
fn refusal(err: &io::Error) -> String {
    let hint = match err.raw_os_error() {
        Some(libc::EBUSY) => {
            " (this ring already has a buffer table registered outside percore; \
             use percore_runtime::registered instead)"
        }
        Some(libc::EINVAL) => " (sparse buffer tables need Linux 5.19 or later)",
        Some(libc::ENOMEM) => " (raise RLIMIT_MEMLOCK: registered memory is pinned)",
        _ => "",
    };
    format!("{err}{hint}")
}

/// The size class for `size` bytes aligned to `align`, if the pool serves it.
fn class_of(size: usize, align: usize) -> Option<usize> {
    let chunk = size.max(align).max(MIN_CHUNK).checked_next_power_of_two()?;
    // A chunk's address is a multiple of its size, so any `align` up to it holds.
    if chunk > MAX_CHUNK || !align.is_power_of_two() {
        return None;
    }
    Some((chunk.trailing_zeros() - MIN_CHUNK.trailing_zeros()) as usize)
}

fn chunk_size(class: usize) -> usize {
    MIN_CHUNK << class
}

/// One 2 MiB-aligned region, zeroed at allocation.
struct Region {
    base: NonNull<u8>,
}

impl Region {
    fn layout() -> Layout {
        match Layout::from_size_align(REGION, REGION) {
            Ok(layout) => layout,
            Err(_) => unreachable!("2 MiB is a valid size and alignment"),
        }
    }

    fn new() -> Option<Region> {
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(Region::layout()) };
        NonNull::new(raw).map(|base| Region { base })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `base` came from `alloc_zeroed` with this layout, once.
        unsafe { alloc::dealloc(self.base.as_ptr(), Region::layout()) };
    }
}

/// The pool's regions and free chunks. Shared by the core (which allocates) and
/// every chunk (which may be dropped on any thread); the regions are freed when
/// the last of them lets go.
#[derive(Default)]
struct Pool {
    inner: Mutex<PoolInner>,
}

#[derive(Default)]
struct PoolInner {
    /// The regions, oldest first; chunks are carved from the last.
    regions: Vec<Region>,
    /// Bytes of the last region handed out so far.
    bump: usize,
    /// Returned chunks, by class.
    free: [Vec<NonNull<u8>>; CLASSES],
}

// SAFETY: the pointers are into regions the pool owns; every access to them and to
// the lists goes through the mutex.
unsafe impl Send for PoolInner {}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, PoolInner> {
        // A panic while holding the lock cannot leave the lists half-updated
        // (each update is one push or pop), so a poisoned lock is still sound.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, region: Region) {
        let mut inner = self.lock();
        inner.regions.push(region);
        inner.bump = 0;
    }

    /// A chunk of `class`, from the free list or the last region, zeroed.
    fn take(self: &Arc<Pool>, class: usize) -> Option<RegisteredMem> {
        let size = chunk_size(class);
        let mut inner = self.lock();
        let ptr = match inner.free[class].pop() {
            Some(ptr) => {
                // SAFETY: a free chunk is `size` bytes of a live region that no
                // `RegisteredMem` refers to any more.
                unsafe { ptr.as_ptr().write_bytes(0, size) };
                ptr
            }
            None => {
                let start = inner.bump.next_multiple_of(size);
                let region = inner.regions.last()?;
                if start + size > REGION {
                    return None;
                }
                // SAFETY: `start + size <= REGION`, inside the region; never handed
                // out before, so still zero.
                let ptr = unsafe { region.base.add(start) };
                inner.bump = start + size;
                ptr
            }
        };
        Some(RegisteredMem {
            ptr,
            class: class as u8,
            pool: Arc::clone(self),
        })
    }
}

/// A chunk of this core's registered memory, from [`alloc()`]: zeroed at
/// allocation, aligned to its size (a power of two, at least 4 KiB), and given
/// back to the pool when dropped, on any thread.
pub struct RegisteredMem {
    ptr: NonNull<u8>,
    class: u8,
    pool: Arc<Pool>,
}

// SAFETY: the chunk is memory only this value refers to (like a `Box<[u8]>`); the
// pool it returns to on drop is behind a mutex.
unsafe impl Send for RegisteredMem {}
// SAFETY: `&RegisteredMem` only exposes the pointer and size.
unsafe impl Sync for RegisteredMem {}

impl RegisteredMem {
    /// The first byte. The chunk stays valid and in place until `self` drops.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Bytes in the chunk (a power of two, at least what was asked for).
    pub fn size(&self) -> usize {
        chunk_size(usize::from(self.class))
    }
}

impl Drop for RegisteredMem {
    fn drop(&mut self) {
        self.pool.lock().free[usize::from(self.class)].push(self.ptr);
    }
}

impl fmt::Debug for RegisteredMem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredMem")
            .field("ptr", &self.ptr)
            .field("size", &self.size())
            .finish()
    }
}

/// Registers each iovec in a run of consecutive free slots of this core's
/// buffer table; returns the first slot's index (iovec `i` is slot `first + i`,
/// the index a fixed read or write names).
///
/// # Errors
///
/// The kernel's (with what to do about it): `ENOMEM` past `RLIMIT_MEMLOCK`,
/// `EINVAL` before Linux 5.19, `EBUSY` if the ring's table was registered outside
/// this module; `OutOfMemory` if there is no run of free slots that long.
///
/// # Safety
///
/// Every iovec must point at memory that stays allocated, and is not reused for
/// anything else, until [`unregister_buffers`] empties its slot or the core
/// ends: a fixed op writes into the memory the slot was registered with.
///
/// # Panics
///
/// Outside a percore runtime.
pub unsafe fn register_buffers(iovecs: &[libc::iovec]) -> io::Result<u16> {
    executor::with_tables(|registrar, tables| {
        // SAFETY: the caller's promise, passed on.
        unsafe { tables.buffers.register(registrar, iovecs) }
    })
}

/// Empties the `count` slots from `first` that [`register_buffers`] filled;
/// `base` is the first iovec's address, as registered. Ops in flight that use
/// them still complete; new ones naming them fail. Does nothing outside a
/// percore runtime, or if slot `first` does not hold memory at `base` (it was
/// registered with a runtime that has ended on this thread).
pub fn unregister_buffers(first: u16, count: usize, base: *const u8) {
    // Called from `Drop` impls: inside a driver borrow (none is known) the
    // slots stay taken until the ring ends, rather than a panic in `drop`.
    executor::try_with_tables(|registrar, tables| {
        tables.buffers.unregister(registrar, first, count, base);
    });
}

/// A zeroed chunk of this core's registered memory of at least `size` bytes at
/// an address aligned to `align` (a power of two), or `None`: larger than 1 MiB,
/// the core's [`REGISTERED_MEMORY`] is all handed out, or the kernel refused to
/// register it, or this thread runs no percore core, or its core runs the
/// epoll backend (which has no fixed reads to make faster). Callers then use ordinary
/// memory.
pub fn alloc(size: usize, align: usize) -> Option<RegisteredMem> {
    executor::try_with_tables(|registrar, tables| tables.buffers.alloc(registrar, size, align))
        .flatten()
}

/// The slot of this core's buffer table whose registered memory (from
/// [`alloc()`]) holds all `len` bytes at `ptr`: what a fixed read or write into
/// that memory names. `None` for other memory, or outside a percore runtime.
pub fn index_of(ptr: *const u8, len: usize) -> Option<u16> {
    executor::try_read_tables(|tables| tables.buffers.index_of(ptr as usize, len)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(class_of(1, 512), Some(0));
        assert_eq!(class_of(4096, 4096), Some(0));
        assert_eq!(class_of(4097, 4096), Some(1));
        assert_eq!(class_of(4096, 8192), Some(1));
        assert_eq!(class_of(MAX_CHUNK, 4096), Some(CLASSES - 1));
        assert_eq!(class_of(MAX_CHUNK + 1, 4096), None);
        assert_eq!(class_of(4096, 3000), None);
    }

    #[test]
    fn runs_of_free_slots() {
        let (x, o) = (Some(4096), None);
        assert_eq!(free_run(&[x, o, o, x, o], 2), Some(1));
        assert_eq!(free_run(&[x, o, x, o, o], 2), Some(3));
        assert_eq!(free_run(&[o; 3], 4), None);
        assert_eq!(free_run(&[o; 3], 0), None);
    }
}
