//! A slot for one waker, registered by one side and taken by the other.
//!
//! The algorithm is `futures-util`'s `AtomicWaker`, written over
//! [`crate::loom`] so the loom models see every access it makes.

use std::fmt;
use std::task::Waker;

use crate::loom::cell::UnsafeCell;
use crate::loom::hint;
use crate::loom::sync::atomic::AtomicUsize;
use crate::loom::sync::atomic::Ordering::{AcqRel, Acquire, Release};

/// Idle: nobody holds the slot; it may or may not hold a waker.
const WAITING: usize = 0;
/// `register` holds the slot and is writing `waker`.
const REGISTERING: usize = 0b01;
/// `wake` holds the slot (or, with `REGISTERING`, asked the registrar to wake).
const WAKING: usize = 0b10;

/// One waker, swapped in by [`AtomicWaker::register`] and woken by
/// [`AtomicWaker::wake`] from any thread.
///
/// `state` is a lock over `waker`: only the thread that moved `state` from
/// `WAITING` to `REGISTERING` (or to `WAKING`) touches `waker`, until it
/// moves `state` back. A `wake` that finds the slot held by `register` only
/// sets `WAKING`, and `register` then wakes the new waker itself, so a wake
/// is never lost: after `register(w)` returns, any later `wake` wakes `w`.
pub(crate) struct AtomicWaker {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: `waker` is only accessed by the thread holding the `state` lock
// (see the type's docs), and `Waker` is `Send + Sync`.
unsafe impl Send for AtomicWaker {}
// SAFETY: as for `Send`: `state` serialises every access to `waker`.
unsafe impl Sync for AtomicWaker {}

impl AtomicWaker {
    pub(crate) fn new() -> AtomicWaker {
        AtomicWaker {
            state: AtomicUsize::new(WAITING),
            waker: UnsafeCell::new(None),
        }
    }

    /// Makes `waker` the one the next [`wake`](Self::wake) wakes.
    ///
    /// The caller must re-check its condition afterwards: a `wake` that ran
    /// before this call woke the previous waker, not this one.
    pub(crate) fn register(&self, waker: &Waker) {
        match self
            .state
            .compare_exchange(WAITING, REGISTERING, Acquire, Acquire)
            .unwrap_or_else(|state| state)
        {
            WAITING => self.store(waker),
            // A `wake` is taking the old waker right now: it may have read
            // the condition before our caller changed it, so wake this one.
            // The caller polls again at once, as if spinning on the lock.
            WAKING => {
                waker.wake_by_ref();
                hint::spin_loop();
            }
            // Another `register` runs concurrently: only one side of a
            // channel registers, so this cannot happen; dropping the
            // registration keeps memory safe regardless.
            _ => {}
        }
    }

    /// Second half of `register`, holding the `REGISTERING` lock.
    fn store(&self, waker: &Waker) {
        // SAFETY: we moved `state` from WAITING to REGISTERING, so we hold
        // the lock over `waker` until we move it back below.
        self.waker.with_mut(|slot| unsafe {
            match &*slot {
                Some(old) if old.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        });
        if let Err(actual) = self
            .state
            .compare_exchange(REGISTERING, WAITING, AcqRel, Acquire)
        {
            // A `wake` came while we held the lock (`actual` is
            // REGISTERING | WAKING) and left the waking to us.
            debug_assert_eq!(actual, REGISTERING | WAKING);
            // SAFETY: still REGISTERING: we hold the lock.
            let waker = self.waker.with_mut(|slot| unsafe { (*slot).take() });
            // `swap`, not `store`: acquire the concurrent wakers' releases.
            self.state.swap(WAITING, AcqRel);
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// Wakes the registered waker, if any, and clears the slot.
    pub(crate) fn wake(&self) {
        if let Some(waker) = self.take() {
            waker.wake();
        }
    }

    /// Takes the registered waker out without waking it (`None` if a
    /// concurrent [`wake`](Self::wake) holds it: that wake drops it).
    pub(crate) fn take(&self) -> Option<Waker> {
        match self.state.fetch_or(WAKING, AcqRel) {
            WAITING => {
                // SAFETY: we moved `state` from WAITING to WAKING: we hold
                // the lock until the `fetch_and` below.
                let waker = self.waker.with_mut(|slot| unsafe { (*slot).take() });
                self.state.fetch_and(!WAKING, Release);
                waker
            }
            // Held by `register` (which will wake for us, seeing WAKING) or
            // by another `wake`.
            _ => None,
        }
    }
}

impl fmt::Debug for AtomicWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AtomicWaker").finish_non_exhaustive()
    }
}
