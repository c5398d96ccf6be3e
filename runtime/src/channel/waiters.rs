//! Senders of an [`mpsc`](super::mpsc) channel waiting for a free slot.
//!
//! Touched only on the slow path: a sender that found the queue full, and a
//! receiver that freed a slot while someone waits (one fence and one load
//! tell it whether anyone does).

use std::collections::VecDeque;
use std::fmt;
use std::task::Waker;

use crate::loom::sync::atomic::Ordering::{Relaxed, SeqCst};
use crate::loom::sync::atomic::{fence, AtomicUsize};
use crate::loom::sync::Mutex;

/// A FIFO list of parked senders.
///
/// Invariants:
///
/// - `count == list.queue.len()` whenever the lock is free; it is stored
///   under the lock and read without it.
/// - Waiters and wakers meet through a `SeqCst` fence on each side: a sender
///   stores `count`, fences, then retries its push; the receiver pops, fences,
///   then loads `count`. So either the retry sees the free slot or the
///   receiver sees the waiter.
/// - An id leaves the list only by being woken or by its future forgetting
///   it; a future whose id is missing was woken, and passes the wakeup on
///   unless it used the freed slot (see [`Waiters::forget`]).
pub(super) struct Waiters {
    count: AtomicUsize,
    list: Mutex<List>,
}

#[derive(Default)]
struct List {
    next_id: u64,
    queue: VecDeque<(u64, Waker)>,
}

impl Waiters {
    pub(super) fn new() -> Waiters {
        Waiters {
            count: AtomicUsize::new(0),
            list: Mutex::new(List::default()),
        }
    }

    /// Parks `waker` as waiter `*id` (a new one if `None` or already woken).
    ///
    /// The caller must retry its push afterwards, and call [`forget`](Self::forget)
    /// with `*id` when its future completes or is dropped.
    pub(super) fn register(&self, id: &mut Option<u64>, waker: &Waker) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        let listed = id.and_then(|id| list.queue.iter_mut().find(|(i, _)| *i == id));
        match listed {
            Some((_, old)) => {
                if !old.will_wake(waker) {
                    old.clone_from(waker);
                }
            }
            None => {
                let new = list.next_id;
                list.next_id += 1;
                list.queue.push_back((new, waker.clone()));
                *id = Some(new);
                self.count.store(list.queue.len(), Relaxed);
            }
        }
        drop(list);
        fence(SeqCst);
    }

    /// Wakes the oldest waiter, if any: one slot was just freed.
    pub(super) fn wake_one(&self) {
        fence(SeqCst);
        if self.count.load(Relaxed) == 0 {
            return;
        }
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        let first = list.queue.pop_front();
        self.count.store(list.queue.len(), Relaxed);
        drop(list);
        if let Some((_, waker)) = first {
            waker.wake();
        }
    }

    /// Wakes every waiter: the channel was closed.
    pub(super) fn wake_all(&self) {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        let all = std::mem::take(&mut list.queue);
        self.count.store(0, Relaxed);
        drop(list);
        for (_, waker) in all {
            waker.wake();
        }
    }

    /// Removes waiter `id`, whose future completed or was dropped; returns
    /// whether it was already gone, i.e. woken.
    ///
    /// A woken waiter that does not use the slot it was woken for must pass
    /// the wakeup on with [`wake_one`](Self::wake_one), or the next waiter
    /// sleeps beside a free slot. That includes a waiter whose push succeeded
    /// while it was still listed: the receiver may then pop that very value
    /// and wake it, the oldest waiter, for the slot its own value just freed.
    pub(super) fn forget(&self, id: u64) -> bool {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        match list.queue.iter().position(|(i, _)| *i == id) {
            Some(at) => {
                list.queue.remove(at);
                self.count.store(list.queue.len(), Relaxed);
                false
            }
            None => true,
        }
    }
}

impl fmt::Debug for Waiters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiters")
            .field("count", &self.count.load(Relaxed))
            .finish()
    }
}
