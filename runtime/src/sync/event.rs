//! An async event flag (asyncio's `Event`) for tasks on one core.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::waiters::{WaitState, WaiterList, WakeList};

/// A flag tasks can wait on, like Python's `asyncio.Event`.
///
/// [`set`](Self::set) wakes every task currently waiting; while the flag
/// stays set, [`wait`](Self::wait) completes at once. [`clear`](Self::clear)
/// resets it. A waiter woken by `set` completes even if the flag is cleared
/// again before it runs.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::Event;
///
/// # percore_runtime::run(async {
/// let ready = Event::new();
/// ready.set();
/// ready.wait().await;
/// assert!(ready.is_set());
/// # }).unwrap();
/// ```
pub struct Event {
    state: RefCell<State>,
}

struct State {
    set: bool,
    waiters: WaiterList<()>,
}

impl Event {
    /// Creates an unset event.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Event;
    ///
    /// assert!(!Event::new().is_set());
    /// ```
    pub const fn new() -> Self {
        Self {
            state: RefCell::new(State {
                set: false,
                waiters: WaiterList::new(),
            }),
        }
    }

    /// Sets the flag and wakes every waiting task.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Event;
    ///
    /// let event = Event::new();
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn set(&self) {
        let mut wakes = WakeList::new();
        {
            let mut state = self.state.borrow_mut();
            state.set = true;
            state.waiters.notify_all(&mut wakes, |()| ());
        }
        wakes.wake_all();
    }

    /// Resets the flag; later [`wait`](Self::wait)s block until the next `set`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Event;
    ///
    /// let event = Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    pub fn clear(&self) {
        self.state.borrow_mut().set = false;
    }

    /// Returns `true` if the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Event;
    ///
    /// let event = Event::new();
    /// assert!(!event.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.state.borrow().set
    }

    /// Waits until the flag is set; completes at once if it already is.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped future just leaves the queue, and waking is
    /// broadcast, so no other waiter misses a `set`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Event;
    /// use std::rc::Rc;
    ///
    /// # percore_runtime::run(async {
    /// let event = Rc::new(Event::new());
    /// let setter = event.clone();
    /// let set_later = async move { setter.set() };
    /// futures_util::future::join(event.wait(), set_later).await;
    /// # }).unwrap();
    /// ```
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            event: self,
            state: WaitState::Idle,
        }
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("Event")
            .field("set", &state.set)
            .field("waiters", &state.waiters.len())
            .finish()
    }
}

/// Future returned by [`Event::wait`].
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::{Event, Wait};
///
/// # percore_runtime::run(async {
/// let event = Event::new();
/// event.set();
/// let fut: Wait<'_> = event.wait();
/// fut.await;
/// # }).unwrap();
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Wait<'a> {
    event: &'a Event,
    state: WaitState,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        crate::coop::budgeted(cx, |cx| {
            let mut state = this.event.state.borrow_mut();
            match this.state {
                WaitState::Idle if state.set => {}
                WaitState::Idle => {
                    this.state = WaitState::Waiting(state.waiters.push_back((), cx.waker()));
                    return Poll::Pending;
                }
                WaitState::Waiting(key) if state.waiters.is_notified(key) => {
                    state.waiters.remove(key);
                }
                WaitState::Waiting(key) => {
                    state.waiters.update_waker(key, cx.waker());
                    return Poll::Pending;
                }
                WaitState::Done => panic!("`Wait` polled after completion"),
            }
            this.state = WaitState::Done;
            Poll::Ready(())
        })
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let WaitState::Waiting(key) = self.state {
            self.event.state.borrow_mut().waiters.remove(key);
        }
    }
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait").field("state", &self.state).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::waiters::testing::{counting_waker, poll_once};
    use super::*;
    use futures_executor::LocalPool;
    use futures_util::task::LocalSpawnExt;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn set_wakes_all_waiters() {
        let mut pool = LocalPool::new();
        let event = Rc::new(Event::new());
        let woken = Rc::new(Cell::new(0));
        for _ in 0..5 {
            let (event, woken) = (event.clone(), woken.clone());
            let task = async move {
                event.wait().await;
                woken.set(woken.get() + 1);
            };
            pool.spawner().spawn_local(task).expect("pool is alive");
        }
        pool.run_until_stalled();
        assert_eq!(woken.get(), 0);
        event.set();
        pool.run_until_stalled();
        assert_eq!(woken.get(), 5);
    }

    #[test]
    fn waiter_woken_by_set_completes_even_if_cleared() {
        let event = Event::new();
        let (wakes, waker) = counting_waker();
        let mut wait = event.wait();
        assert!(poll_once(&mut wait, &waker).is_pending());
        event.set();
        event.clear();
        assert_eq!(wakes.count(), 1);
        assert!(poll_once(&mut wait, &waker).is_ready());
    }

    #[test]
    fn clear_makes_new_waiters_block() {
        let event = Event::new();
        let (_, waker) = counting_waker();
        event.set();
        assert!(poll_once(&mut event.wait(), &waker).is_ready());
        event.clear();
        let mut wait = event.wait();
        assert!(poll_once(&mut wait, &waker).is_pending());
        drop(wait);
        assert_eq!(format!("{event:?}"), "Event { set: false, waiters: 0 }");
    }
}
