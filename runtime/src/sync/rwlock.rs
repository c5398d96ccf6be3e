//! An async reader-writer lock for tasks on one core.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::rwlock_guard::{Release, RwLockReadGuard, RwLockWriteGuard};
use super::waiters::{WaitState, WaiterList, WakeList};

/// An async reader-writer lock for tasks running on one core.
///
/// Any number of readers or one writer. Fair: requests are served in FIFO
/// order, so a waiting writer blocks readers that arrive after it, and the
/// readers queued behind a writer all get in together once it is done.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::RwLock;
///
/// # percore_runtime::run(async {
/// let lock = RwLock::new(1);
/// {
///     let (a, b) = (lock.read().await, lock.read().await);
///     assert_eq!(*a + *b, 2);
/// }
/// *lock.write().await += 1;
/// assert_eq!(*lock.read().await, 2);
/// # }).unwrap();
/// ```
pub struct RwLock<T: ?Sized> {
    state: RefCell<State>,
    /// Guarded by the lock protocol, so its borrow checks never fail.
    value: RefCell<T>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
}

pub(super) struct State {
    readers: usize,
    writer: bool,
    waiters: WaiterList<Access>,
}

impl State {
    fn can_grant(&self, access: Access) -> bool {
        match access {
            Access::Read => !self.writer,
            Access::Write => !self.writer && self.readers == 0,
        }
    }

    fn grant(&mut self, access: Access) {
        match access {
            Access::Read => self.readers += 1,
            Access::Write => self.writer = true,
        }
    }

    /// Grants immediately only if nobody queues ahead (fairness).
    fn try_grant(&mut self, access: Access) -> bool {
        let ok = self.waiters.is_empty() && self.can_grant(access);
        if ok {
            self.grant(access);
        }
        ok
    }

    /// Gives up `access` and grants the longest run of queued requests
    /// that now fit.
    fn release(&mut self, access: Access, wakes: &mut WakeList) {
        match access {
            Access::Read => self.readers -= 1,
            Access::Write => self.writer = false,
        }
        while let Some(&next) = self.waiters.front() {
            if !self.can_grant(next) {
                break;
            }
            self.grant(next);
            self.waiters.notify_front(wakes);
        }
    }
}

pub(super) fn release(state: &RefCell<State>, access: Access) {
    let mut wakes = WakeList::new();
    state.borrow_mut().release(access, &mut wakes);
    wakes.wake_all();
}

impl<T> RwLock<T> {
    /// Creates an unlocked lock holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::RwLock;
    ///
    /// let lock = RwLock::new(3);
    /// assert_eq!(lock.into_inner(), 3);
    /// ```
    pub const fn new(value: T) -> Self {
        Self {
            state: RefCell::new(State {
                readers: 0,
                writer: false,
                waiters: WaiterList::new(),
            }),
            value: RefCell::new(value),
        }
    }

    /// Consumes the lock and returns the value.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::RwLock;
    ///
    /// assert_eq!(RwLock::new('x').into_inner(), 'x');
    /// ```
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Waits for shared read access.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe. A dropped future loses its place in the queue; if access
    /// had already been granted to it, it is released again, letting the
    /// next waiters in.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::RwLock;
    ///
    /// # percore_runtime::run(async {
    /// let lock = RwLock::new(5);
    /// assert_eq!(*lock.read().await, 5);
    /// # }).unwrap();
    /// ```
    pub fn read(&self) -> ReadLock<'_, T> {
        ReadLock {
            lock: self,
            state: WaitState::Idle,
        }
    }

    /// Waits for exclusive write access.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, in the same way as [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::RwLock;
    ///
    /// # percore_runtime::run(async {
    /// let lock = RwLock::new(5);
    /// *lock.write().await = 6;
    /// assert_eq!(*lock.read().await, 6);
    /// # }).unwrap();
    /// ```
    pub fn write(&self) -> WriteLock<'_, T> {
        WriteLock {
            lock: self,
            state: WaitState::Idle,
        }
    }

    /// Takes read access if that is possible without waiting.
    ///
    /// Fails while a writer holds the lock or any request is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::RwLock;
    ///
    /// let lock = RwLock::new(0);
    /// let reader = lock.try_read().expect("unlocked");
    /// assert!(lock.try_read().is_some());
    /// assert!(lock.try_write().is_none());
    /// drop(reader);
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let granted = self.state.borrow_mut().try_grant(Access::Read);
        granted.then(|| self.read_guard())
    }

    /// Takes write access if that is possible without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::RwLock;
    ///
    /// let lock = RwLock::new(0);
    /// let writer = lock.try_write().expect("unlocked");
    /// assert!(lock.try_read().is_none());
    /// drop(writer);
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let granted = self.state.borrow_mut().try_grant(Access::Write);
        granted.then(|| self.write_guard())
    }

    /// Returns a mutable reference to the value; `&mut self` proves no guard exists.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::RwLock;
    ///
    /// let mut lock = RwLock::new(1);
    /// *lock.get_mut() += 1;
    /// assert_eq!(lock.into_inner(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            // Cannot panic: read access excludes writers, whose `RefMut`
            // is dropped before they release (guard field order).
            value: self.value.borrow(),
            _release: Release(&self.state, Access::Read),
        }
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard {
            // Cannot panic: write access excludes every other guard.
            value: self.value.borrow_mut(),
            _release: Release(&self.state, Access::Write),
        }
    }

    /// Shared poll logic of both futures; `Ready` means access is granted.
    fn poll_access(&self, wait: &mut WaitState, access: Access, cx: &Context<'_>) -> Poll<()> {
        let mut state = self.state.borrow_mut();
        match *wait {
            WaitState::Idle if state.try_grant(access) => {}
            WaitState::Idle => {
                *wait = WaitState::Waiting(state.waiters.push_back(access, cx.waker()));
                return Poll::Pending;
            }
            // Notified means access was already granted on our behalf.
            WaitState::Waiting(key) if state.waiters.is_notified(key) => {
                state.waiters.remove(key);
            }
            WaitState::Waiting(key) => {
                state.waiters.update_waker(key, cx.waker());
                return Poll::Pending;
            }
            WaitState::Done => panic!("`RwLock` future polled after completion"),
        }
        *wait = WaitState::Done;
        Poll::Ready(())
    }

    /// Drop logic of both futures: leave the queue, releasing granted access.
    fn cancel(&self, wait: WaitState) {
        if let WaitState::Waiting(key) = wait {
            let removed = self.state.borrow_mut().waiters.remove(key);
            if removed.notified {
                release(&self.state, removed.data);
            }
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.value.try_borrow() {
            Ok(value) if !self.state.borrow().writer => d.field("data", &&*value),
            _ => d.field("data", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Future returned by [`RwLock::read`].
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::{ReadLock, RwLock};
///
/// # percore_runtime::run(async {
/// let lock = RwLock::new(1);
/// let fut: ReadLock<'_, i32> = lock.read();
/// assert_eq!(*fut.await, 1);
/// # }).unwrap();
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ReadLock<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    state: WaitState,
}

impl<'a, T: ?Sized> Future for ReadLock<'a, T> {
    type Output = RwLockReadGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let lock = this.lock;
        crate::coop::budgeted(cx, |cx| lock.poll_access(&mut this.state, Access::Read, cx))
            .map(|()| lock.read_guard())
    }
}

impl<T: ?Sized> Drop for ReadLock<'_, T> {
    fn drop(&mut self) {
        self.lock.cancel(self.state);
    }
}

/// Future returned by [`RwLock::write`].
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::{RwLock, WriteLock};
///
/// # percore_runtime::run(async {
/// let lock = RwLock::new(1);
/// let fut: WriteLock<'_, i32> = lock.write();
/// *fut.await = 2;
/// # }).unwrap();
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct WriteLock<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    state: WaitState,
}

impl<'a, T: ?Sized> Future for WriteLock<'a, T> {
    type Output = RwLockWriteGuard<'a, T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let lock = this.lock;
        crate::coop::budgeted(cx, |cx| {
            lock.poll_access(&mut this.state, Access::Write, cx)
        })
        .map(|()| lock.write_guard())
    }
}

impl<T: ?Sized> Drop for WriteLock<'_, T> {
    fn drop(&mut self) {
        self.lock.cancel(self.state);
    }
}

impl<T: ?Sized> fmt::Debug for ReadLock<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadLock")
            .field("state", &self.state)
            .finish()
    }
}

impl<T: ?Sized> fmt::Debug for WriteLock<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteLock")
            .field("state", &self.state)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::waiters::testing::{counting_waker, poll_once};
    use super::*;

    #[test]
    fn waiting_writer_blocks_later_readers() {
        let lock = RwLock::new(0);
        let (_, waker) = counting_waker();
        let reader = lock.try_read().expect("unlocked");
        let mut writer = lock.write();
        assert!(poll_once(&mut writer, &waker).is_pending());
        assert!(lock.try_read().is_none(), "reader must not overtake writer");
        let mut late_reader = lock.read();
        assert!(poll_once(&mut late_reader, &waker).is_pending());

        drop(reader);
        let Poll::Ready(mut guard) = poll_once(&mut writer, &waker) else {
            panic!("writer should be granted once readers are gone");
        };
        *guard = 1;
        assert!(poll_once(&mut late_reader, &waker).is_pending());
        drop(guard);
        let Poll::Ready(read) = poll_once(&mut late_reader, &waker) else {
            panic!("reader should follow the writer");
        };
        assert_eq!(*read, 1);
    }

    #[test]
    fn queued_readers_enter_together_up_to_next_writer() {
        let lock = RwLock::new(());
        let (_, waker) = counting_waker();
        let writer = lock.try_write().expect("unlocked");
        let (mut r1, mut r2, mut w2, mut r3) =
            (lock.read(), lock.read(), lock.write(), lock.read());
        assert!(poll_once(&mut r1, &waker).is_pending());
        assert!(poll_once(&mut r2, &waker).is_pending());
        assert!(poll_once(&mut w2, &waker).is_pending());
        assert!(poll_once(&mut r3, &waker).is_pending());

        drop(writer);
        let g1 = poll_once(&mut r1, &waker);
        let g2 = poll_once(&mut r2, &waker);
        assert!(g1.is_ready() && g2.is_ready());
        assert!(poll_once(&mut w2, &waker).is_pending());
        assert!(poll_once(&mut r3, &waker).is_pending());
        drop((g1, g2));
        let gw = poll_once(&mut w2, &waker);
        assert!(gw.is_ready());
        assert!(poll_once(&mut r3, &waker).is_pending());
        drop(gw);
        assert!(poll_once(&mut r3, &waker).is_ready());
    }

    #[test]
    fn dropped_granted_writer_lets_readers_in() {
        let lock = RwLock::new(());
        let (reader_wakes, reader_waker) = counting_waker();
        let (_, waker) = counting_waker();
        let holder = lock.try_write().expect("unlocked");
        let mut writer = lock.write();
        let mut reader = lock.read();
        assert!(poll_once(&mut writer, &waker).is_pending());
        assert!(poll_once(&mut reader, &reader_waker).is_pending());
        drop(holder);
        assert_eq!(reader_wakes.count(), 0);
        drop(writer);
        assert_eq!(reader_wakes.count(), 1);
        assert!(poll_once(&mut reader, &reader_waker).is_ready());
    }

    #[test]
    fn dropped_granted_reader_lets_writer_in() {
        let lock = RwLock::new(());
        let (writer_wakes, writer_waker) = counting_waker();
        let (_, waker) = counting_waker();
        let holder = lock.try_write().expect("unlocked");
        let mut reader = lock.read();
        let mut writer = lock.write();
        assert!(poll_once(&mut reader, &waker).is_pending());
        assert!(poll_once(&mut writer, &writer_waker).is_pending());
        drop(holder);
        drop(reader);
        assert_eq!(writer_wakes.count(), 1);
        assert!(poll_once(&mut writer, &writer_waker).is_ready());
    }

    #[test]
    fn debug_shows_value_unless_write_locked() {
        let lock = RwLock::new(3);
        let read = lock.try_read();
        assert_eq!(format!("{lock:?}"), "RwLock { data: 3 }");
        drop(read);
        let _write = lock.try_write();
        assert_eq!(format!("{lock:?}"), "RwLock { data: <locked> }");
    }
}
