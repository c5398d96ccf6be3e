//! The lock-free ring buffer under [`spsc`](super::spsc): one producer, one
//! consumer, each with its own index on its own cache line.

use std::fmt;
use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use super::atomic_waker::AtomicWaker;
use crate::loom::cell::UnsafeCell;
use crate::loom::sync::atomic::AtomicUsize;
use crate::loom::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use crate::loom::sync::Arc;

/// `state` bit: the [`Producer`] is gone; it pushes nothing more.
pub(super) const TX_GONE: usize = 0b01;
/// `state` bit: the [`Consumer`] is closed or gone; pushes are refused.
pub(super) const RX_CLOSED: usize = 0b10;

/// A bounded queue shared by exactly one [`Producer`] and one [`Consumer`].
///
/// Invariants (every `unsafe` in this file relies on them):
///
/// - `head` and `tail` count pops and pushes since creation, wrapping at
///   `usize::MAX`; slot `i & mask` holds value number `i`.
///   `tail - head` (wrapping) is at most `slots.len()`, a power of two, so the
///   two counters never alias.
/// - Slots `head..tail` are initialised and belong to the consumer; all others
///   are uninitialised and belong to the producer.
/// - Only the producer stores `tail`, only the consumer stores `head`, and each
///   does so with `Release` after it finished with the slot, so whoever loads
///   the index with `Acquire` sees the slot's final contents (a written value
///   for the consumer, a moved-out slot for the producer).
/// - The `Producer` and the `Consumer` are unique (not `Clone`), and each
///   keeps its own index and a cached copy of the other's, refreshed only when
///   the cached copy says full (producer) or empty (consumer). That keeps each
///   side off the other's cache line in the common case.
pub(super) struct Ring<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    /// `TX_GONE | RX_CLOSED`; each bit is set once and never cleared.
    pub(super) state: CachePadded<AtomicUsize>,
    /// The consumer's waker while it waits for a value.
    pub(super) rx_waker: CachePadded<AtomicWaker>,
    /// The producer's waker while it waits for a free slot.
    pub(super) tx_waker: CachePadded<AtomicWaker>,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
}

// SAFETY: a `Ring` moves `T`s from the producer's thread to the consumer's;
// the invariants above make each slot accessed by one side at a time, with a
// Release/Acquire pair at every hand-over. `T: Send` is all that needs.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as for `Send`: shared access never hands out `&T`.
unsafe impl<T: Send> Sync for Ring<T> {}

/// Creates a ring of at least `capacity` slots (rounded up to a power of two).
pub(super) fn ring<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let slots = capacity
        .checked_next_power_of_two()
        .expect("spsc::channel capacity overflows usize when rounded up");
    let ring = Arc::new(Ring {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        state: CachePadded::new(AtomicUsize::new(0)),
        rx_waker: CachePadded::new(AtomicWaker::new()),
        tx_waker: CachePadded::new(AtomicWaker::new()),
        slots: (0..slots)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect(),
        mask: slots - 1,
    });
    let producer = Producer {
        ring: ring.clone(),
        tail: 0,
        cached_head: 0,
    };
    let consumer = Consumer {
        ring,
        head: 0,
        cached_tail: 0,
    };
    (producer, consumer)
}

impl<T> Ring<T> {
    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Sets `bit` in `state`, returning the previous state.
    pub(super) fn set(&self, bit: usize) -> usize {
        self.state.fetch_or(bit, AcqRel)
    }

    pub(super) fn is(&self, bit: usize) -> bool {
        self.state.load(Acquire) & bit != 0
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Both sides are gone (this is the last `Arc`), so `head..tail` are
        // the values pushed but never popped.
        let mut head = self.head.load(Acquire);
        let tail = self.tail.load(Acquire);
        while head != tail {
            // SAFETY: slot `head` is in `head..tail`, so it is initialised,
            // and no other side exists to read it again.
            self.slots[head & self.mask].with_mut(|slot| unsafe { (*slot).assume_init_drop() });
            head = head.wrapping_add(1);
        }
    }
}

/// The producing side of a [`Ring`].
pub(super) struct Producer<T> {
    pub(super) ring: Arc<Ring<T>>,
    /// Our `ring.tail`: the next slot we write.
    tail: usize,
    /// `ring.head` as last loaded; the real one is the same or further.
    cached_head: usize,
}

impl<T> Producer<T> {
    /// Pushes `value`, or gives it back if the ring is full.
    pub(super) fn push(&mut self, value: T) -> Result<(), T> {
        let capacity = self.ring.capacity();
        if self.tail.wrapping_sub(self.cached_head) == capacity {
            self.cached_head = self.ring.head.load(Acquire);
            if self.tail.wrapping_sub(self.cached_head) == capacity {
                return Err(value);
            }
        }
        // SAFETY: `tail - head < capacity`, so slot `tail` is outside
        // `head..tail`: uninitialised and ours until we publish `tail + 1`.
        self.ring.slots[self.tail & self.ring.mask].with_mut(|slot| unsafe {
            (*slot).write(value);
        });
        self.tail = self.tail.wrapping_add(1);
        self.ring.tail.store(self.tail, Release);
        Ok(())
    }
}

/// The consuming side of a [`Ring`].
pub(super) struct Consumer<T> {
    pub(super) ring: Arc<Ring<T>>,
    /// Our `ring.head`: the next slot we read.
    head: usize,
    /// `ring.tail` as last loaded; the real one is the same or further.
    cached_tail: usize,
}

impl<T> Consumer<T> {
    /// Pops the oldest value, if any.
    pub(super) fn pop(&mut self) -> Option<T> {
        if self.head == self.cached_tail {
            self.cached_tail = self.ring.tail.load(Acquire);
            if self.head == self.cached_tail {
                return None;
            }
        }
        // SAFETY: `head != tail`, so slot `head` is in `head..tail`:
        // initialised by the producer (its Release store of `tail` pairs with
        // our Acquire load) and ours; publishing `head + 1` below gives it back
        // uninitialised, since we moved the value out.
        let value = self.ring.slots[self.head & self.ring.mask]
            .with_mut(|slot| unsafe { (*slot).assume_init_read() });
        self.head = self.head.wrapping_add(1);
        self.ring.head.store(self.head, Release);
        Some(value)
    }

    /// Values queued right now (others may be arriving).
    pub(super) fn len(&self) -> usize {
        self.ring.tail.load(Acquire).wrapping_sub(self.head)
    }
}

impl<T> fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity())
            .field("head", &self.head.load(Acquire))
            .field("tail", &self.tail.load(Acquire))
            .field("state", &self.state.load(Acquire))
            .finish_non_exhaustive()
    }
}
