//! A per-core allocator for task cells.
//!
//! Every task cell is allocated and freed on its own core (see `raw.rs`), so a
//! core can keep its own free lists with no locks and no atomics: size classes of
//! 16 bytes up to 1 KiB, carved from chunks the core maps itself (advised to use
//! transparent huge pages where the kernel has them). Freed cells go back to
//! their class's list and are reused by the next spawn.
//!
//! When the core stops, its chunks go to a cache of the thread it ran on (up
//! to `CACHE_CAP`, 128 MiB), and the next core built on that thread takes them
//! before it maps anything. Their pages are already faulted in, so a runtime
//! built again and again on a thread (tests, benches, a runtime per batch of
//! work) does not pay the kernel for fresh zeroed pages each time: without
//! transparent huge pages that was a fault per 4 KiB, twenty thousand for a
//! million tasks, and what a fault costs swings with the machine's load. The
//! price is that the memory stays resident while the thread lives. Chunks
//! beyond the cap, and the cache when its thread exits, are unmapped. (Marking
//! cached chunks `MADV_FREE`, so the kernel could take them back under
//! pressure, was measured and left out: it cost ~5 ms per 80 MiB at every stop
//! and doubled the time to write the pages again.)
//!
//! Cells that do not fit a class, or any cell when mapping fails, come from the
//! global allocator — as do all cells when built with
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
    chunks: RefCell<Vec<Chunk>>,
    /// Bytes of the cells handed out and not given back.
    in_use: Cell<usize>,
}

impl Arena {
    pub(crate) fn new() -> Arena {
        Arena {
            free: std::array::from_fn(|_| Cell::new(ptr::null_mut())),
            bump: Cell::new(ptr::null_mut()),
            end: Cell::new(ptr::null_mut()),
            next_chunk: Cell::new(FIRST_CHUNK),
            chunks: RefCell::new(Vec::new()),
            in_use: Cell::new(0),
        }
    }

    /// Bytes of the cells handed out and not given back (each a class's
    /// size: the cell's own rounded up to 16).
    pub(crate) fn in_use(&self) -> usize {
        self.in_use.get()
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
        let size = (class + 1) * CLASS_SIZE;
        let head = self.free[class].get();
        if !head.is_null() {
            // SAFETY: `head` is a cell of this class that `free` linked in; its
            // first word holds the next link.
            self.free[class].set(unsafe { (*head).next });
            self.in_use.set(self.in_use.get() + size);
            return NonNull::new(head.cast());
        }
        if (self.end.get() as usize) - (self.bump.get() as usize) < size {
            self.grow()?;
        }
        let cell = self.bump.get();
        // SAFETY: `grow` left at least `size` bytes between `bump` and `end`.
        self.bump.set(unsafe { cell.add(size) });
        self.in_use.set(self.in_use.get() + size);
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
        self.in_use
            .set(self.in_use.get() - (class + 1) * CLASS_SIZE);
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
        let chunk = match take_cached() {
            Some(chunk) => chunk,
            None => {
                let size = self.next_chunk.get();
                self.next_chunk.set((size * 2).min(MAX_CHUNK));
                Chunk::map(size)?
            }
        };
        self.bump.set(chunk.start.as_ptr());
        self.end.set(chunk.end());
        self.chunks.borrow_mut().push(chunk);
        Some(())
    }

    /// Keeps the chunks mapped forever: cells in them are still in use.
    pub(crate) fn leak(self) {
        for chunk in self.chunks.borrow_mut().drain(..) {
            std::mem::forget(chunk);
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // No cell in these chunks is in use (the core leaks the arena instead
        // when tasks outlive it), so the next arena on this thread may have them.
        for chunk in self.chunks.get_mut().drain(..) {
            put_cached(chunk);
        }
    }
}

/// One anonymous private mapping, unmapped when dropped.
///
/// Holding a `Chunk` means no cell in it is in use by anyone else: an arena
/// hands out cells only from chunks it holds, drops them only when none of
/// its cells is in use, and forgets them (never unmapping) otherwise.
struct Chunk {
    start: NonNull<u8>,
    size: usize,
}

impl Chunk {
    /// Maps `size` fresh bytes, or `None` if the kernel refuses.
    fn map(size: usize) -> Option<Chunk> {
        // SAFETY: an anonymous private mapping with no address hint has no
        // memory preconditions; the result is checked.
        let start = unsafe {
            libc::mmap(
                ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: advice on a mapping we own; failure (no THP) is harmless.
        unsafe { libc::madvise(start, size, libc::MADV_HUGEPAGE) };
        #[cfg(test)]
        MAPPED.with(|n| n.set(n.get() + 1));
        Some(Chunk {
            start: NonNull::new(start.cast())?,
            size,
        })
    }

    /// One past the last byte.
    fn end(&self) -> *mut u8 {
        // SAFETY: `size` bytes are mapped at `start`.
        unsafe { self.start.as_ptr().add(self.size) }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: we mapped `size` bytes at `start`, and no cell in them is in
        // use (the type's invariant).
        unsafe { libc::munmap(self.start.as_ptr().cast(), self.size) };
        #[cfg(test)]
        UNMAPPED.with(|n| n.set(n.get() + 1));
    }
}

/// The most bytes of chunks a thread keeps for its next arena: enough for a
/// million small tasks (about 80 MiB of cells), so a bench or test building a
/// runtime per round faults nothing in after the first.
const CACHE_CAP: usize = 128 * 1024 * 1024;

/// Chunks no arena holds, kept for the next arena on this thread.
struct ChunkCache {
    chunks: Vec<Chunk>,
    bytes: usize,
    cap: usize,
}

impl ChunkCache {
    const fn new(cap: usize) -> ChunkCache {
        ChunkCache {
            chunks: Vec::new(),
            bytes: 0,
            cap,
        }
    }

    /// Keeps `chunk` if it fits under the cap; else drops (unmaps) it.
    fn put(&mut self, chunk: Chunk) {
        if self.bytes + chunk.size <= self.cap {
            self.bytes += chunk.size;
            self.chunks.push(chunk);
        }
    }

    /// The largest kept chunk, so a new arena starts on big, warm chunks.
    fn take(&mut self) -> Option<Chunk> {
        let (i, _) = self.chunks.iter().enumerate().max_by_key(|(_, c)| c.size)?;
        let chunk = self.chunks.swap_remove(i);
        self.bytes -= chunk.size;
        Some(chunk)
    }
}

thread_local! {
    static CACHE: RefCell<ChunkCache> = const { RefCell::new(ChunkCache::new(CACHE_CAP)) };
}

// What tests check the cache by: chunks mapped and unmapped on this thread.
#[cfg(test)]
thread_local! {
    static MAPPED: Cell<usize> = const { Cell::new(0) };
    static UNMAPPED: Cell<usize> = const { Cell::new(0) };
}

fn take_cached() -> Option<Chunk> {
    CACHE
        .try_with(|cache| cache.borrow_mut().take())
        .ok()
        .flatten()
}

fn put_cached(chunk: Chunk) {
    // While the thread exits its cache may be gone already: then the closure,
    // and the chunk in it, are dropped unrun, which unmaps the chunk.
    let _ = CACHE.try_with(move |cache| cache.borrow_mut().put(chunk));
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
    fn the_bytes_in_use_follow_the_cells_handed_out() {
        let arena = Arena::new();
        let small = Layout::from_size_align(72, 8).unwrap();
        let other = Layout::from_size_align(200, 16).unwrap();
        let a = arena.alloc(small).unwrap();
        let b = arena.alloc(other).unwrap();
        assert_eq!(
            arena.in_use(),
            80 + 208,
            "each cell counts its class's size"
        );
        // SAFETY: `a` came from this arena with this layout and is unused.
        unsafe { arena.free(a, small) };
        assert_eq!(arena.in_use(), 208);
        let again = arena.alloc(small).unwrap();
        assert_eq!(again, a, "reused from the free list, counted again");
        assert_eq!(arena.in_use(), 80 + 208);
        // SAFETY: both came from this arena with these layouts, unused now.
        unsafe {
            arena.free(again, small);
            arena.free(b, other);
        }
        assert_eq!(arena.in_use(), 0);
        // A cell the arena refuses is not counted.
        assert!(arena
            .alloc(Layout::from_size_align(4096, 8).unwrap())
            .is_none());
        assert_eq!(arena.in_use(), 0);
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

    fn mapped() -> usize {
        MAPPED.with(Cell::get)
    }

    fn unmapped() -> usize {
        UNMAPPED.with(Cell::get)
    }

    #[test]
    fn the_cache_keeps_chunks_up_to_its_cap_and_unmaps_the_rest() {
        let mut cache = ChunkCache::new(2 * FIRST_CHUNK);
        let before = (mapped(), unmapped());
        for _ in 0..3 {
            cache.put(Chunk::map(FIRST_CHUNK).unwrap());
        }
        assert_eq!(cache.chunks.len(), 2, "a third chunk would pass the cap");
        assert_eq!(cache.bytes, 2 * FIRST_CHUNK);
        assert_eq!(
            unmapped() - before.1,
            1,
            "the chunk over the cap is unmapped"
        );
        let taken = cache.take().unwrap();
        assert_eq!((cache.chunks.len(), cache.bytes), (1, FIRST_CHUNK));
        drop(taken);
        drop(cache);
        assert_eq!(
            mapped() - before.0,
            unmapped() - before.1,
            "every chunk is unmapped once the cache and its taker drop them"
        );
    }

    #[test]
    fn the_cache_hands_out_its_largest_chunk_first() {
        let mut cache = ChunkCache::new(CACHE_CAP);
        for size in [FIRST_CHUNK, 4 * FIRST_CHUNK, 2 * FIRST_CHUNK] {
            cache.put(Chunk::map(size).unwrap());
        }
        let sizes: Vec<_> = std::iter::from_fn(|| cache.take())
            .map(|c| c.size)
            .collect();
        assert_eq!(sizes, [4 * FIRST_CHUNK, 2 * FIRST_CHUNK, FIRST_CHUNK]);
        assert_eq!(cache.bytes, 0);
    }

    /// What a thread's cache holds: (chunks, bytes).
    fn cached() -> (usize, usize) {
        CACHE.with(|cache| {
            let cache = cache.borrow();
            (cache.chunks.len(), cache.bytes)
        })
    }

    #[test]
    fn runtimes_in_a_row_on_a_thread_reuse_the_chunks_and_the_cache_stays_bounded() {
        const TASKS: u64 = 20_000;
        std::thread::spawn(|| {
            let mut after = Vec::new();
            for _ in 0..4 {
                let sum = crate::Builder::new()
                    .block_on(async {
                        // All alive at once, so the arena grows over several chunks.
                        let handles: Vec<_> =
                            (0..TASKS).map(|i| crate::spawn(async move { i })).collect();
                        let mut sum = 0;
                        for handle in handles {
                            sum += handle.await.unwrap();
                        }
                        sum
                    })
                    .unwrap();
                assert_eq!(sum, TASKS * (TASKS - 1) / 2);
                after.push((mapped(), unmapped(), cached()));
            }
            let (mapped_first, _, (chunks, bytes)) = after[0];
            assert!(chunks > 1, "the first runtime's chunks are kept: {after:?}");
            assert!(bytes <= CACHE_CAP);
            for &(mapped, unmapped, cached) in &after[1..] {
                assert_eq!(
                    mapped, mapped_first,
                    "later runtimes map nothing: {after:?}"
                );
                assert_eq!(
                    cached,
                    (chunks, bytes),
                    "the cache neither grows nor shrinks"
                );
                assert_eq!(
                    mapped - unmapped,
                    chunks,
                    "every chunk still mapped is in the cache"
                );
            }
        })
        .join()
        .unwrap();
    }
}
