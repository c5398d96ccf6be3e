//! An async mutex for tasks on one core.

use std::cell::{RefCell, RefMut};
use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::waiters::{WaitState, WaiterList, WakeList};

/// An async mutual-exclusion lock for tasks running on one core.
///
/// The guard may be held across `.await`. Waiting tasks get the lock in the
/// order they started waiting: on unlock the lock is handed straight to the
/// first waiter, so a task calling [`try_lock`](Self::try_lock) or
/// [`lock`](Self::lock) later cannot barge in ahead of it.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::Mutex;
/// use std::rc::Rc;
///
/// # percore_runtime::run(async {
/// let count = Rc::new(Mutex::new(0));
/// *count.lock().await += 1;
/// assert_eq!(*count.lock().await, 1);
/// # }).unwrap();
/// ```
pub struct Mutex<T: ?Sized> {
    state: RefCell<State>,
    /// `RefCell` stands in for `UnsafeCell`: the lock protocol guarantees
    /// that at most one guard borrows it, so its borrow checks never fail.
    value: RefCell<T>,
}

struct State {
    locked: bool,
    waiters: WaiterList<()>,
}

impl<T> Mutex<T> {
    /// Creates an unlocked mutex holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Mutex;
    ///
    /// let mutex = Mutex::new(5);
    /// assert_eq!(mutex.into_inner(), 5);
    /// ```
    pub const fn new(value: T) -> Self {
        Self {
            state: RefCell::new(State {
                locked: false,
                waiters: WaiterList::new(),
            }),
            value: RefCell::new(value),
        }
    }

    /// Consumes the mutex and returns the value.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Mutex;
    ///
    /// assert_eq!(Mutex::new("hi").into_inner(), "hi");
    /// ```
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Waits until the lock is free, then locks it.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe. A dropped `lock` future loses its place in the queue; if
    /// the lock had already been handed to it, it passes the lock on to the
    /// next waiter (or unlocks), so nothing deadlocks.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Mutex;
    ///
    /// # percore_runtime::run(async {
    /// let mutex = Mutex::new(vec![1]);
    /// mutex.lock().await.push(2);
    /// assert_eq!(*mutex.lock().await, [1, 2]);
    /// # }).unwrap();
    /// ```
    pub fn lock(&self) -> Lock<'_, T> {
        Lock {
            mutex: self,
            state: WaitState::Idle,
        }
    }

    /// Locks the mutex if it is free right now.
    ///
    /// Returns `None` if it is locked, or was just handed to a waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Mutex;
    ///
    /// let mutex = Mutex::new(1);
    /// let guard = mutex.try_lock().expect("nobody holds it");
    /// assert!(mutex.try_lock().is_none());
    /// drop(guard);
    /// assert!(mutex.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let mut state = self.state.borrow_mut();
        if state.locked {
            return None;
        }
        state.locked = true;
        drop(state);
        Some(self.guard())
    }

    /// Returns `true` if a guard is held or the lock was handed to a waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Mutex;
    ///
    /// let mutex = Mutex::new(());
    /// let _guard = mutex.try_lock();
    /// assert!(mutex.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.borrow().locked
    }

    /// Returns a mutable reference to the value; `&mut self` proves no guard exists.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Mutex;
    ///
    /// let mut mutex = Mutex::new(1);
    /// *mutex.get_mut() = 2;
    /// assert_eq!(mutex.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// Builds the guard once the caller owns the lock.
    fn guard(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            // Cannot panic: we own the lock, and the previous guard dropped
            // its `RefMut` before releasing the lock (field order below).
            value: self.value.borrow_mut(),
            _release: Release(&self.state),
        }
    }
}

/// Hands the lock to the first waiter, or unlocks if nobody waits.
fn unlock(state: &RefCell<State>) {
    let mut wakes = WakeList::new();
    {
        let mut state = state.borrow_mut();
        if state.waiters.notify_front(&mut wakes).is_none() {
            state.locked = false;
        }
    }
    wakes.wake_all();
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.value.try_borrow() {
            Ok(value) if !self.is_locked() => d.field("data", &&*value),
            _ => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Future returned by [`Mutex::lock`].
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::{Lock, Mutex, MutexGuard};
///
/// # percore_runtime::run(async {
/// let mutex = Mutex::new(1);
/// let fut: Lock<'_, i32> = mutex.lock();
/// let guard: MutexGuard<'_, i32> = fut.await;
/// assert_eq!(*guard, 1);
/// # }).unwrap();
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Lock<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    state: WaitState,
}

impl<'a, T: ?Sized> Future for Lock<'a, T> {
    type Output = MutexGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        crate::coop::budgeted(cx, |cx| {
            let mut state = this.mutex.state.borrow_mut();
            match this.state {
                WaitState::Idle if !state.locked => state.locked = true,
                WaitState::Idle => {
                    this.state = WaitState::Waiting(state.waiters.push_back((), cx.waker()));
                    return Poll::Pending;
                }
                // Notified means the unlocker left `locked` set for us.
                WaitState::Waiting(key) if state.waiters.is_notified(key) => {
                    state.waiters.remove(key);
                }
                WaitState::Waiting(key) => {
                    state.waiters.update_waker(key, cx.waker());
                    return Poll::Pending;
                }
                WaitState::Done => panic!("`Lock` polled after completion"),
            }
            this.state = WaitState::Done;
            drop(state);
            Poll::Ready(this.mutex.guard())
        })
    }
}

impl<T: ?Sized> Drop for Lock<'_, T> {
    fn drop(&mut self) {
        if let WaitState::Waiting(key) = self.state {
            let handed_over = self.mutex.state.borrow_mut().waiters.remove(key).notified;
            if handed_over {
                unlock(&self.mutex.state);
            }
        }
    }
}

impl<T: ?Sized> fmt::Debug for Lock<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock").field("state", &self.state).finish()
    }
}

/// Proof of holding a [`Mutex`]; unlocks (or hands the lock on) when dropped.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::Mutex;
///
/// let mutex = Mutex::new(String::from("a"));
/// let mut guard = mutex.try_lock().expect("unlocked");
/// guard.push('b');
/// assert_eq!(&*guard, "ab");
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    // Declared first so it is dropped first: the value must be released
    // before `_release` hands the lock to the next owner.
    value: RefMut<'a, T>,
    _release: Release<'a>,
}

/// Unlocks on drop; split out so it runs after the guard's `RefMut` is gone.
struct Release<'a>(&'a RefCell<State>);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        unlock(self.0);
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::super::waiters::testing::{counting_waker, poll_once, yield_now};
    use super::*;
    use futures_executor::LocalPool;
    use futures_util::task::LocalSpawnExt;
    use std::rc::Rc;

    #[test]
    fn waiters_acquire_in_fifo_order() {
        let mut pool = LocalPool::new();
        let mutex = Rc::new(Mutex::new(Vec::new()));
        let holder = mutex.try_lock().expect("fresh mutex is unlocked");
        for id in 0..5 {
            let mutex = mutex.clone();
            let task = async move { mutex.lock().await.push(id) };
            pool.spawner().spawn_local(task).expect("pool is alive");
            // Park each task before spawning the next to fix queue order.
            pool.run_until_stalled();
        }
        drop(holder);
        pool.run_until_stalled();
        assert_eq!(*mutex.try_lock().expect("all tasks done"), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn dropped_waiter_passes_handed_lock_on() {
        let mutex = Mutex::new(0);
        let (second_wakes, second_waker) = counting_waker();
        let (third_wakes, third_waker) = counting_waker();
        let holder = mutex.try_lock().expect("fresh mutex is unlocked");
        let mut second = mutex.lock();
        let mut third = mutex.lock();
        assert!(poll_once(&mut second, &second_waker).is_pending());
        assert!(poll_once(&mut third, &third_waker).is_pending());

        drop(holder);
        assert_eq!(second_wakes.count(), 1);
        assert_eq!(third_wakes.count(), 0);
        assert!(mutex.try_lock().is_none(), "lock is reserved for `second`");

        drop(second);
        assert_eq!(third_wakes.count(), 1);
        let Poll::Ready(mut guard) = poll_once(&mut third, &third_waker) else {
            panic!("third waiter should own the lock");
        };
        *guard += 1;
        drop(guard);
        drop(third);
        assert_eq!(mutex.into_inner(), 1);
    }

    #[test]
    fn dropped_last_waiter_unlocks() {
        let mutex = Mutex::new(());
        let (_, waker) = counting_waker();
        let holder = mutex.try_lock().expect("fresh mutex is unlocked");
        let mut waiter = mutex.lock();
        assert!(poll_once(&mut waiter, &waker).is_pending());
        drop(holder);
        drop(waiter);
        assert!(!mutex.is_locked());
        assert!(mutex.try_lock().is_some());
    }

    #[test]
    fn cancelled_queued_waiter_is_skipped() {
        let mutex = Mutex::new(());
        let (_, waker) = counting_waker();
        let holder = mutex.try_lock().expect("fresh mutex is unlocked");
        let mut first = mutex.lock();
        let mut second = mutex.lock();
        assert!(poll_once(&mut first, &waker).is_pending());
        assert!(poll_once(&mut second, &waker).is_pending());
        drop(first);
        drop(holder);
        assert!(poll_once(&mut second, &waker).is_ready());
    }

    #[test]
    fn guard_held_across_await_excludes_others() {
        let mut pool = LocalPool::new();
        let mutex = Rc::new(Mutex::new(0));
        let log = Rc::new(RefCell::new(Vec::new()));
        for id in 0..3 {
            let (mutex, log) = (mutex.clone(), log.clone());
            let task = async move {
                let mut guard = mutex.lock().await;
                log.borrow_mut().push((id, "in"));
                yield_now().await;
                *guard += 1;
                log.borrow_mut().push((id, "out"));
            };
            pool.spawner().spawn_local(task).expect("pool is alive");
        }
        pool.run();
        let log = log.borrow();
        for pair in log.chunks(2) {
            assert_eq!(
                pair[0].0, pair[1].0,
                "critical sections interleaved: {log:?}"
            );
        }
        assert_eq!(*mutex.try_lock().expect("tasks done"), 3);
    }

    #[test]
    fn works_with_unsized_values() {
        let mutex: Box<Mutex<[i32]>> = Box::new(Mutex::new([1, 2, 3]));
        mutex.try_lock().expect("unlocked")[1] = 5;
        assert_eq!(&*mutex.try_lock().expect("unlocked"), &[1, 5, 3]);
    }

    #[test]
    fn debug_hides_locked_value() {
        let mutex = Mutex::new(7);
        assert_eq!(format!("{mutex:?}"), "Mutex { data: 7 }");
        let guard = mutex.try_lock();
        assert_eq!(format!("{mutex:?}"), "Mutex { data: <locked> }");
        assert_eq!(format!("{guard:?}"), "Some(7)");
    }
}
