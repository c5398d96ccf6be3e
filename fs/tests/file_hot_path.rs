//! `read_at` on a warm file is one SQE and allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use percore_fs::File;

/// Counts the allocations made by the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers every call to the system allocator; the counter is a
// thread-local `Cell` that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's promises, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's promises, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn a_warm_read_is_one_sqe_and_no_allocation() {
    let dir = std::env::temp_dir().join(format!("percore-fs-hot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("data");
    std::fs::write(&path, vec![5u8; 1 << 16]).unwrap();
    // No stall detector: on a busy machine a slow poll is reported, and the
    // report allocates.
    // No faults either (`PERCORE_FAULTS`): this counts SQEs and allocations,
    // and a short read or a held completion adds its own.
    let builder = percore_runtime::Builder::new()
        .stall_threshold(None)
        .faults("none")
        .unwrap();
    builder
        .block_on(async {
            let file = File::open(&path).await.unwrap();
            let mut buf = Vec::with_capacity(4096);
            // Warm up: the op table and the core's buffers reach their size.
            for _ in 0..100 {
                let (res, back) = file.read_at(buf, 0).await;
                res.unwrap();
                buf = back;
                buf.clear();
            }
            let (sqes, allocs) = (percore_runtime::stats().sqes, allocations());
            for i in 0..1000u64 {
                let (res, back) = file.read_at(buf, i % 16 * 4096).await;
                assert_eq!(res.unwrap(), 4096);
                buf = back;
                buf.clear();
            }
            assert_eq!(
                percore_runtime::stats().sqes - sqes,
                1000,
                "one SQE per read"
            );
            assert_eq!(allocations() - allocs, 0, "no allocation per read");
        })
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
