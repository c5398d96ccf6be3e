//! What a core's connections share: one provided-buffer ring to receive into
//! and a free list of send buffers. A connection holds a buffer only while it
//! has bytes in hand, so an idle keep-alive connection holds none.

use std::cell::RefCell;

use percore_runtime::buf_ring::BufRing;

/// Buffers in each core's ring.
pub(crate) const RING_ENTRIES: u16 = 512;
/// Bytes per ring buffer: a request head of ordinary size arrives in one.
pub(crate) const RING_BUF_SIZE: u32 = 4096;

/// Send buffers kept on a core's free list at most…
const POOL_MAX: usize = 256;
/// …and only those no larger than this (a larger one goes back to the heap).
const POOL_MAX_CAPACITY: usize = 64 * 1024;

enum Ring {
    /// Not made on this thread's core yet (or that core has stopped).
    Unset,
    Ready(BufRing),
    /// The kernel has no provided-buffer rings (before Linux 5.19), or making
    /// one failed: reads go without.
    Unavailable,
}

thread_local! {
    static RING: RefCell<Ring> = const { RefCell::new(Ring::Unset) };
    static SEND_BUFS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// The calling core's ring, made on first use; `None` if this core cannot
/// have one (reads then use plain one-shot receives).
///
/// # Panics
///
/// Outside a percore runtime, as every op does.
pub(crate) fn ring() -> Option<BufRing> {
    RING.with(|slot| {
        let mut slot = slot.borrow_mut();
        match &*slot {
            Ring::Ready(ring) => return Some(ring.clone()),
            Ring::Unavailable => return None,
            Ring::Unset => {}
        }
        let (entries, size) = ring_shape();
        let made = BufRing::new(entries, size).ok();
        *slot = match &made {
            Some(ring) => Ring::Ready(ring.clone()),
            None => Ring::Unavailable,
        };
        // The slot belongs to this core: a task that never ends clears it
        // when the core stops (and drops its tasks), so a later runtime on
        // this thread makes a ring on its own ring, not on a closed one.
        drop(percore_runtime::spawn(async {
            let _clear = ClearOnDrop;
            std::future::pending::<()>().await;
        }));
        made
    })
}

#[cfg(not(test))]
fn ring_shape() -> (u16, u32) {
    (RING_ENTRIES, RING_BUF_SIZE)
}

#[cfg(test)]
thread_local! {
    /// A ring shape for the next ring this thread makes (unit tests).
    pub(crate) static TEST_SHAPE: std::cell::Cell<Option<(u16, u32)>> =
        const { std::cell::Cell::new(None) };
}

#[cfg(test)]
fn ring_shape() -> (u16, u32) {
    TEST_SHAPE
        .with(std::cell::Cell::get)
        .unwrap_or((RING_ENTRIES, RING_BUF_SIZE))
}

struct ClearOnDrop;

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        let old = RING.with(|slot| slot.replace(Ring::Unset));
        // Dropped outside the borrow: the ring unregisters itself.
        drop(old);
        SEND_BUFS.with(|bufs| bufs.borrow_mut().clear());
    }
}

/// An empty send buffer with room for at least `len` bytes.
pub(crate) fn take_send_buf(len: usize) -> Vec<u8> {
    let mut buf = SEND_BUFS
        .with(|bufs| bufs.borrow_mut().pop())
        .unwrap_or_default();
    buf.reserve(len);
    buf
}

/// Gives a send buffer back to the core's free list.
pub(crate) fn give_send_buf(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > POOL_MAX_CAPACITY {
        return;
    }
    buf.clear();
    SEND_BUFS.with(|bufs| {
        let mut bufs = bufs.borrow_mut();
        if bufs.len() < POOL_MAX {
            bufs.push(buf);
        }
    });
}
