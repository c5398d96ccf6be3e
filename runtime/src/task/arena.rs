//! A per-core allocator for task cells.
//!
//! Every task cell is allocated and freed on its own core (see `raw.rs`), so a
//! core can keep its own free lists with no locks and no atomics: size classes of
//! 16 bytes up to 1 KiB, carved from chunks the core maps itself (advised to use
//! transparent huge pages, so spawning a million tasks faults in a few dozen 2 MiB
//! pages instead of twenty thousand 4 KiB ones). Freed cells go back to their
//! class's list and are reused by the next spawn; memory returns to the system
//! when the core stops. Cells that do not fit a class, or any cell when mapping
//! fails, come from the global allocator — as do all cells when built with
//! `RUSTFLAGS="--cfg percore_no_arena"`, so valgrind or a sanitizer can see every
//! task allocation.

use std::alloc::Layout;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::ptr::{self, NonNull};

const CLASS_SIZE: usize = 16;
const MAX_CELL: usize = 1024;
const CLASSES: usize = MAX_CELL / CLASS_SIZE;
/// The first chunk is small, so a core that spawns little maps little.
const FIRST_CHUNK: usize = 256 * 1024;
/// Chunks double up to this size (a multiple of the 2 MiB huge page).
const MAX_CHUNK: usize = 8 * 1024 * 1024;

/// A free cell: its first word links to the next free cell of its class.
struct Free {
    next: *mut Free,
}

pub(crate) struct Arena {
    free: [Cell<*mut Free>; CLASSES],
    /// The unused rest of the newest chunk.
    bump: Cell<*mut u8>,
    end: Cell<*mut u8>,
    next_chunk: Cell<usize>,
    chunks: RefCell<Vec<(NonNull<u8>, usize)>>,
}

impl Arena {
    pub(crate) fn new() -> Arena {
        Arena {
            free: std::array::from_fn(|_| Cell::new(ptr::null_mut())),
            bump: Cell::new(ptr::null_mut()),
            end: Cell::new(ptr::null_mut()),
            next_chunk: Cell::new(FIRST_CHUNK),
            chunks: RefCell::new(Vec::new()),
        }
    }

    fn class(layout: Layout) -> Option<usize> {
        if cfg!(percore_no_arena) {
            return None;
        }
        (layout.size() <= MAX_CELL && layout.align() <= CLASS_SIZE && layout.size() > 0)
            .then(|| layout.size().div_ceil(CLASS_SIZE) - 1)
    }

    /// A cell for `layout`, or `None` if the arena does not serve it (then use
    /// the global allocator).
    pub(crate) fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        let class = Self::class(layout)?;
        let head = self.free[class].get();
        if !head.is_null() {
            // SAFETY: `head` is a cell of this class that `free` linked in; its
            // first word holds the next link.
            self.free[class].set(unsafe { (*head).next });
            return NonNull::new(head.cast());
        }
        let size = (class + 1) * CLASS_SIZE;
        if (self.end.get() as usize) - (self.bump.get() as usize) < size {
            self.grow()?;
        }
        let cell = self.bump.get();
        // SAFETY: `grow` left at least `size` bytes between `bump` and `end`.
        self.bump.set(unsafe { cell.add(size) });
        NonNull::new(cell)
    }

    /// Gives a cell back to its class.
    ///
    /// # Safety
    ///
    /// `cell` came from `self.alloc(layout)` and is not used any more.
    pub(crate) unsafe fn free(&self, cell: NonNull<u8>, layout: Layout) {
        let Some(class) = Self::class(layout) else {
            return;
        };
        let cell = cell.cast::<Free>().as_ptr();
        // SAFETY: the cell is at least 16 bytes, 16-aligned, and ours again.
        unsafe {
            cell.write(Free {
                next: self.free[class].get(),
            })
        };
        self.free[class].set(cell);
    }

    fn grow(&self) -> Option<()> {
        let size = self.next_chunk.get();
        // SAFETY: an anonymous private mapping with no address hint has no
        // memory preconditions; the result is checked.
        let chunk = unsafe {
            libc::mmap(
                ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if chunk == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: advice on a mapping we own; failure (no THP) is harmless.
        unsafe { libc::madvise(chunk, size, libc::MADV_HUGEPAGE) };
        let chunk = NonNull::new(chunk.cast::<u8>())?;
        self.chunks.borrow_mut().push((chunk, size));
        self.bump.set(chunk.as_ptr());
        // SAFETY: `size` bytes were mapped at `chunk`.
        self.end.set(unsafe { chunk.as_ptr().add(size) });
        self.next_chunk.set((size * 2).min(MAX_CHUNK));
        Some(())
    }

    /// Keeps the chunks mapped forever: cells in them are still in use.
    pub(crate) fn leak(self) {
        self.chunks.borrow_mut().clear();
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        for (chunk, size) in self.chunks.get_mut().drain(..) {
            // SAFETY: we mapped `size` bytes at `chunk`, and no cell in it is in
            // use (the core leaks the arena instead when tasks outlive it).
            unsafe { libc::munmap(chunk.as_ptr().cast(), size) };
        }
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("chunks", &self.chunks.borrow().len())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(percore_no_arena)))]
mod tests {
    use super::*;

    #[test]
    fn cells_are_reused_per_class_and_never_overlap() {
        let arena = Arena::new();
        let small = Layout::from_size_align(72, 8).unwrap();
        let a = arena.alloc(small).unwrap();
        let b = arena.alloc(small).unwrap();
        assert!((b.as_ptr() as usize).abs_diff(a.as_ptr() as usize) >= 80);
        // SAFETY: `a` came from this arena with this layout and is unused.
        unsafe { arena.free(a, small) };
        assert_eq!(arena.alloc(small), Some(a), "a freed cell is reused first");
        let other = Layout::from_size_align(200, 16).unwrap();
        assert_ne!(arena.alloc(other), Some(a), "classes do not mix");
    }

    #[test]
    fn big_or_overaligned_cells_are_refused() {
        let arena = Arena::new();
        assert!(arena
            .alloc(Layout::from_size_align(4096, 8).unwrap())
            .is_none());
        assert!(arena
            .alloc(Layout::from_size_align(64, 64).unwrap())
            .is_none());
    }

    #[test]
    fn many_cells_span_chunks() {
        let arena = Arena::new();
        let layout = Layout::from_size_align(1024, 16).unwrap();
        let cells: Vec<_> = (0..2000).map(|_| arena.alloc(layout).unwrap()).collect();
        for cell in &cells {
            // SAFETY: each cell is 1024 writable bytes of ours.
            unsafe { cell.as_ptr().write_bytes(0xAB, 1024) };
        }
        let mut addrs: Vec<_> = cells.iter().map(|c| c.as_ptr() as usize).collect();
        addrs.sort_unstable();
        assert!(addrs.windows(2).all(|w| w[1] - w[0] >= 1024), "no overlap");
        assert!(arena.chunks.borrow().len() > 1);
    }
}
