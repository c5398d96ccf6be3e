//! The core's buffer table and registered memory (`percore_runtime::registered`),
//! which only io_uring has: on the epoll backend `registered::alloc` gives none.

use percore_runtime::registered::{self, REGISTERED_MEMORY};

mod util;

/// Chunks are aligned, zeroed (also when reused), found by `index_of` under the
/// slot of their region, and come back to the pool when dropped, even on
/// another thread.
#[test]
fn chunks_are_aligned_zeroed_and_found() {
    if !util::io_uring_or_skip("chunks_are_aligned_zeroed_and_found") {
        return;
    }
    percore_runtime::run(async {
        let a = registered::alloc(4096, 4096).expect("registered memory");
        let b = registered::alloc(10_000, 512).expect("registered memory");
        assert_eq!(a.as_ptr() as usize % 4096, 0);
        assert_eq!(b.size(), 16384, "10,000 bytes take the 16 KiB class");
        assert_eq!(b.as_ptr() as usize % 16384, 0);
        let slot = registered::index_of(a.as_ptr(), 4096).expect("a is registered");
        assert_eq!(registered::index_of(b.as_ptr(), b.size()), Some(slot));
        // A range that runs past the region, and heap memory, are not.
        let heap = vec![0u8; 4096];
        assert_eq!(registered::index_of(heap.as_ptr(), heap.len()), None);
        assert_eq!(registered::index_of(a.as_ptr(), 4 << 20), None);

        // Dirty a chunk, free it on another thread, take it again: zeroed.
        // SAFETY: `a` owns its 4096 bytes.
        unsafe { a.as_ptr().write_bytes(0xAB, 4096) };
        let addr = a.as_ptr() as usize;
        std::thread::spawn(move || drop(a)).join().unwrap();
        let again = registered::alloc(4096, 4096).expect("registered memory");
        assert_eq!(again.as_ptr() as usize, addr, "the freed chunk is reused");
        // SAFETY: `again` owns its 4096 bytes, initialised (zeroed) memory.
        let bytes = unsafe { std::slice::from_raw_parts(again.as_ptr(), 4096) };
        assert!(bytes.iter().all(|&x| x == 0), "a reused chunk is zeroed");
    })
    .unwrap();
}

/// Past `REGISTERED_MEMORY`, and above 1 MiB, `alloc` says no (callers use the
/// heap); outside a runtime too.
#[test]
fn the_pool_is_bounded() {
    if !util::io_uring_or_skip("the_pool_is_bounded") {
        return;
    }
    assert!(registered::alloc(4096, 4096).is_none(), "no core here");
    percore_runtime::run(async {
        assert!(registered::alloc((1 << 20) + 1, 4096).is_none());
        let held: Vec<_> = std::iter::from_fn(|| registered::alloc(1 << 20, 4096))
            .take(REGISTERED_MEMORY)
            .collect();
        assert_eq!(held.len(), REGISTERED_MEMORY >> 20);
        assert!(registered::alloc(4096, 4096).is_none(), "the pool is full");
    })
    .unwrap();
}

/// Memory registered by the caller takes a run of slots; unregistering frees
/// them for the next caller, and a chunk outlives the runtime it came from
/// without being taken for the next runtime's memory.
#[test]
fn slots_are_shared_and_freed() {
    if !util::io_uring_or_skip("slots_are_shared_and_freed") {
        return;
    }
    let kept = percore_runtime::run(async {
        let mut a = vec![0u8; 4096];
        let mut b = vec![0u8; 4096];
        let iov = |v: &mut Vec<u8>| libc::iovec {
            iov_base: v.as_mut_ptr().cast(),
            iov_len: v.len(),
        };
        // SAFETY: both vectors outlive their registration (unregistered below).
        let first = unsafe { registered::register_buffers(&[iov(&mut a), iov(&mut b)]) }.unwrap();
        // SAFETY: as above.
        let next = unsafe { registered::register_buffers(&[iov(&mut a)]) }.unwrap();
        assert_eq!(next, first + 2, "runs do not overlap");
        // A base that is not what the slot holds leaves it registered.
        registered::unregister_buffers(first, 2, b.as_ptr());
        // SAFETY: as above.
        let third = unsafe { registered::register_buffers(&[iov(&mut b)]) }.unwrap();
        assert_eq!(third, next + 1, "slot {first} is still taken");
        registered::unregister_buffers(third, 1, b.as_ptr());
        registered::unregister_buffers(first, 2, a.as_ptr());
        // SAFETY: as above.
        let reused = unsafe { registered::register_buffers(&[iov(&mut b)]) }.unwrap();
        assert_eq!(reused, first, "freed slots are reused");
        registered::unregister_buffers(reused, 1, b.as_ptr());
        registered::unregister_buffers(next, 1, a.as_ptr());
        registered::alloc(4096, 4096).expect("registered memory")
    })
    .unwrap();
    percore_runtime::run(async move {
        assert_eq!(
            registered::index_of(kept.as_ptr(), 4096),
            None,
            "memory of another ring is not this ring's"
        );
        assert!(registered::alloc(4096, 4096).is_some());
        drop(kept);
    })
    .unwrap();
}
