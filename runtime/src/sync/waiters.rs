//! FIFO list of parked tasks, shared by every primitive in this module.
//!
//! # Design
//!
//! A doubly linked list whose nodes live in a [`Slab`]: push, pop-front and
//! removing an arbitrary node (a future dropped while queued) are all O(1),
//! and nodes are recycled without a heap allocation per wait once the slab
//! has grown. A `VecDeque` of ids would make removal O(n) or need tombstones
//! plus generations; the linked slab needs neither.
//!
//! Ownership rule that keeps keys valid: the list never frees a node on its
//! own. "Notifying" a waiter only unlinks it and marks it notified; the
//! future that pushed the node is the only one that frees it (when it
//! completes or is dropped). So a key can never be reused under the future
//! that holds it, and a notified future that is dropped can see that it was
//! handed something (a lock, permits, a slot) and pass it on.
//!
//! Wakers are not woken while the primitive's `RefCell` is borrowed: they are
//! collected in a [`WakeList`] and woken after the borrow ends, so a waker
//! that re-enters the primitive cannot hit a `BorrowMutError`.

use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::task::Waker;

use slab::Slab;

/// Handle to one queued waiter, owned by the future that pushed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaiterKey(usize);

struct Node<T> {
    data: T,
    waker: Option<Waker>,
    prev: Option<usize>,
    next: Option<usize>,
    /// `false` once notified: the node is then out of the list but still
    /// allocated, waiting for its future to collect or drop it.
    linked: bool,
}

/// Progress of a future that may queue in a [`WaiterList`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitState {
    /// Not polled yet, so not queued.
    Idle,
    /// Queued (or notified but not yet polled) under this key.
    Waiting(WaiterKey),
    /// Completed; polling again is a caller bug.
    Done,
}

/// What a future gets back when it frees its node.
pub(crate) struct Removed<T> {
    /// Per-waiter data, possibly updated by whoever notified it.
    pub(crate) data: T,
    /// Whether the waiter had been notified (so it may own something).
    pub(crate) notified: bool,
}

/// FIFO list of waiters carrying per-waiter data `T`.
pub(crate) struct WaiterList<T> {
    nodes: Slab<Node<T>>,
    head: Option<usize>,
    tail: Option<usize>,
    /// Every primitive embeds this list; the marker makes them all `!Send`
    /// even when their other fields (`RefCell<T: Send>`) would be `Send`.
    _not_send: PhantomData<Rc<()>>,
}

impl<T> WaiterList<T> {
    /// Creates an empty list without allocating.
    pub(crate) const fn new() -> Self {
        Self {
            nodes: Slab::new(),
            head: None,
            tail: None,
            _not_send: PhantomData,
        }
    }

    /// Returns `true` if no waiter is queued (notified ones don't count).
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Number of queued, not yet notified waiters. O(n); for `Debug` only.
    pub(crate) fn len(&self) -> usize {
        self.nodes.iter().filter(|(_, n)| n.linked).count()
    }

    /// Queues a waiter at the back.
    pub(crate) fn push_back(&mut self, data: T, waker: &Waker) -> WaiterKey {
        let key = self.nodes.insert(Node {
            data,
            waker: Some(waker.clone()),
            prev: self.tail,
            next: None,
            linked: true,
        });
        match self.tail {
            Some(tail) => self.nodes[tail].next = Some(key),
            None => self.head = Some(key),
        }
        self.tail = Some(key);
        WaiterKey(key)
    }

    /// Data of the waiter at the head of the queue.
    pub(crate) fn front(&self) -> Option<&T> {
        self.head.map(|key| &self.nodes[key].data)
    }

    /// Unlinks the head, marks it notified and schedules its wake-up.
    ///
    /// Returns the head's data so the caller can record what it was handed.
    pub(crate) fn notify_front(&mut self, wakes: &mut WakeList) -> Option<&mut T> {
        let key = self.head?;
        self.unlink(key);
        let node = &mut self.nodes[key];
        wakes.push(node.waker.take());
        Some(&mut node.data)
    }

    /// Notifies every queued waiter, letting `f` update each one's data.
    pub(crate) fn notify_all(&mut self, wakes: &mut WakeList, mut f: impl FnMut(&mut T)) {
        while let Some(data) = self.notify_front(wakes) {
            f(data);
        }
    }

    /// Whether the waiter has been notified.
    ///
    /// # Panics
    ///
    /// If `key` was already removed: keys are owned by one future, which
    /// never uses its key after removing it.
    pub(crate) fn is_notified(&self, key: WaiterKey) -> bool {
        !self.nodes[key.0].linked
    }

    /// Replaces the stored waker unless it would wake the same task.
    pub(crate) fn update_waker(&mut self, key: WaiterKey, waker: &Waker) {
        let slot = &mut self.nodes[key.0].waker;
        match slot {
            Some(old) if old.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// Frees the waiter's node, unlinking it first if still queued.
    pub(crate) fn remove(&mut self, key: WaiterKey) -> Removed<T> {
        let notified = self.is_notified(key);
        if !notified {
            self.unlink(key.0);
        }
        let node = self.nodes.remove(key.0);
        Removed {
            data: node.data,
            notified,
        }
    }

    fn unlink(&mut self, key: usize) {
        let node = &mut self.nodes[key];
        let (prev, next) = (node.prev.take(), node.next.take());
        node.linked = false;
        match prev {
            Some(prev) => self.nodes[prev].next = next,
            None => self.head = next,
        }
        match next {
            Some(next) => self.nodes[next].prev = prev,
            None => self.tail = prev,
        }
    }
}

impl<T> fmt::Debug for WaiterList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaiterList")
            .field("waiting", &self.len())
            .finish()
    }
}

/// Wakers collected under a borrow, woken after it ends.
///
/// Holds the first waker inline: most operations wake at most one task, and
/// that case then needs no allocation.
#[derive(Debug, Default)]
pub(crate) struct WakeList {
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl WakeList {
    /// Creates an empty list.
    pub(crate) const fn new() -> Self {
        Self {
            first: None,
            rest: Vec::new(),
        }
    }

    /// Adds a waker, if there is one.
    pub(crate) fn push(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else { return };
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.rest.push(waker);
        }
    }

    /// Wakes everything collected, in the order it was pushed.
    pub(crate) fn wake_all(self) {
        self.first
            .into_iter()
            .chain(self.rest)
            .for_each(Waker::wake);
    }
}

/// Helpers shared by the unit tests of every primitive.
#[cfg(test)]
pub(crate) mod testing {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    /// Counts how many times its waker was woken. Atomics only because
    /// `Waker` demands `Send + Sync`; the primitives themselves use none.
    #[derive(Debug, Default)]
    pub(crate) struct WakeCounter(AtomicUsize);

    impl WakeCounter {
        pub(crate) fn count(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl Wake for WakeCounter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn counting_waker() -> (Arc<WakeCounter>, Waker) {
        let counter = Arc::new(WakeCounter::default());
        (counter.clone(), Waker::from(counter))
    }

    /// Returns `Pending` once (waking itself) so other tasks get to run.
    pub(crate) async fn yield_now() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                return Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
    }

    /// Polls a future once with `waker`.
    pub(crate) fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
        Pin::new(fut).poll(&mut Context::from_waker(waker))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::counting_waker;
    use super::*;

    #[test]
    fn notifies_in_fifo_order() {
        let (_, waker) = counting_waker();
        let mut list = WaiterList::new();
        let keys: Vec<_> = (0..3).map(|i| list.push_back(i, &waker)).collect();
        let mut wakes = WakeList::new();
        assert_eq!(list.notify_front(&mut wakes).copied(), Some(0));
        assert_eq!(list.notify_front(&mut wakes).copied(), Some(1));
        assert!(list.is_notified(keys[0]) && list.is_notified(keys[1]));
        assert!(!list.is_notified(keys[2]));
        assert_eq!(list.front(), Some(&2));
    }

    #[test]
    fn removing_middle_keeps_order() {
        let (_, waker) = counting_waker();
        let mut list = WaiterList::new();
        let keys: Vec<_> = (0..3).map(|i| list.push_back(i, &waker)).collect();
        let removed = list.remove(keys[1]);
        assert!(!removed.notified);
        assert_eq!(removed.data, 1);
        let mut seen = Vec::new();
        list.notify_all(&mut WakeList::new(), |d| seen.push(*d));
        assert_eq!(seen, [0, 2]);
        assert!(list.is_empty());
    }

    #[test]
    fn removing_tail_then_pushing_relinks() {
        let (_, waker) = counting_waker();
        let mut list = WaiterList::new();
        let a = list.push_back('a', &waker);
        let b = list.push_back('b', &waker);
        list.remove(b);
        list.push_back('c', &waker);
        list.remove(a);
        assert_eq!(list.front(), Some(&'c'));
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn wakes_are_deferred_until_wake_all() {
        let (counter, waker) = counting_waker();
        let mut list = WaiterList::new();
        let key = list.push_back((), &waker);
        let mut wakes = WakeList::new();
        list.notify_front(&mut wakes);
        assert_eq!(counter.count(), 0);
        wakes.wake_all();
        assert_eq!(counter.count(), 1);
        assert!(list.remove(key).notified);
    }

    #[test]
    fn update_waker_replaces_a_different_task() {
        let (first, waker1) = counting_waker();
        let (second, waker2) = counting_waker();
        let mut list = WaiterList::new();
        let _key = list.push_back((), &waker1);
        list.update_waker(_key, &waker2);
        let mut wakes = WakeList::new();
        list.notify_front(&mut wakes);
        wakes.wake_all();
        assert_eq!(first.count(), 0);
        assert_eq!(second.count(), 1);
    }
}
