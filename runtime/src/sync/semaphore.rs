//! An async counting semaphore for tasks on one core.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::semaphore_permit::{AcquireError, Permit, TryAcquireError};
use super::waiters::{WaitState, WaiterList, WakeList};

/// An async counting semaphore for tasks running on one core.
///
/// Strictly FIFO: a request at the head of the queue that needs more permits
/// than are free blocks every request behind it, even smaller ones, so big
/// requests are never starved. (A request for more permits than will ever
/// be available therefore blocks the queue until it is dropped.)
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::Semaphore;
///
/// # percore_runtime::run(async {
/// let sem = Semaphore::new(2);
/// let a = sem.acquire().await.expect("open");
/// let _b = sem.acquire().await.expect("open");
/// assert!(sem.try_acquire().is_err());
/// drop(a);
/// assert_eq!(sem.available_permits(), 1);
/// # }).unwrap();
/// ```
pub struct Semaphore {
    state: RefCell<State>,
}

struct State {
    permits: usize,
    closed: bool,
    waiters: WaiterList<Request>,
}

struct Request {
    needed: usize,
    /// Set when the permits were moved to this waiter; unset if it was
    /// woken by `close`.
    granted: bool,
}

impl State {
    /// Moves permits to queued requests, in order, while the head fits.
    fn grant_waiters(&mut self, wakes: &mut WakeList) {
        while let Some(head) = self.waiters.front() {
            let needed = head.needed;
            if needed > self.permits {
                break;
            }
            self.permits -= needed;
            if let Some(head) = self.waiters.notify_front(wakes) {
                head.granted = true;
            }
        }
    }
}

impl Semaphore {
    /// Creates a semaphore with `permits` permits.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Semaphore;
    ///
    /// assert_eq!(Semaphore::new(3).available_permits(), 3);
    /// ```
    pub const fn new(permits: usize) -> Self {
        Self {
            state: RefCell::new(State {
                permits,
                closed: false,
                waiters: WaiterList::new(),
            }),
        }
    }

    /// Waits for one permit.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is, or gets, closed while waiting.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe. A dropped future loses its place in the queue; permits
    /// already handed to it go back to the semaphore and on to the next
    /// waiters.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Semaphore;
    ///
    /// # percore_runtime::run(async {
    /// let sem = Semaphore::new(1);
    /// let permit = sem.acquire().await.expect("not closed");
    /// assert_eq!(permit.num_permits(), 1);
    /// # }).unwrap();
    /// ```
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Waits for `n` permits, taken all at once.
    ///
    /// # Errors
    ///
    /// [`AcquireError`] if the semaphore is, or gets, closed while waiting.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as for [`acquire`](Self::acquire): permits are taken
    /// all-or-nothing, so a dropped future never holds some of them.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Semaphore;
    ///
    /// # percore_runtime::run(async {
    /// let sem = Semaphore::new(5);
    /// let permit = sem.acquire_many(3).await.expect("not closed");
    /// assert_eq!(sem.available_permits(), 2);
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 5);
    /// # }).unwrap();
    /// ```
    pub fn acquire_many(&self, n: usize) -> Acquire<'_> {
        Acquire {
            semaphore: self,
            needed: n,
            state: WaitState::Idle,
        }
    }

    /// Takes one permit if one is free and nobody is queued.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Closed`] if closed, else
    /// [`TryAcquireError::NoPermits`] if it would have to wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::{Semaphore, TryAcquireError};
    ///
    /// let sem = Semaphore::new(1);
    /// let _permit = sem.try_acquire().expect("one is free");
    /// assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    /// ```
    pub fn try_acquire(&self) -> Result<Permit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody is queued.
    ///
    /// # Errors
    ///
    /// As for [`try_acquire`](Self::try_acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(3);
    /// assert!(sem.try_acquire_many(4).is_err());
    /// assert_eq!(sem.try_acquire_many(3).expect("free").num_permits(), 3);
    /// ```
    pub fn try_acquire_many(&self, n: usize) -> Result<Permit<'_>, TryAcquireError> {
        let mut state = self.state.borrow_mut();
        if state.closed {
            return Err(TryAcquireError::Closed);
        }
        // Queued requests go first: taking permits here would starve them.
        if !state.waiters.is_empty() || state.permits < n {
            return Err(TryAcquireError::NoPermits);
        }
        state.permits -= n;
        Ok(self.permit(n))
    }

    /// Adds `n` permits, waking queued requests that now fit.
    ///
    /// Works on a closed semaphore too (the permits just accumulate).
    ///
    /// # Panics
    ///
    /// If the number of available permits would overflow `usize`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        let mut wakes = WakeList::new();
        {
            let mut state = self.state.borrow_mut();
            state.permits = state
                .permits
                .checked_add(n)
                .expect("Semaphore permit count overflowed usize");
            state.grant_waiters(&mut wakes);
        }
        wakes.wake_all();
    }

    /// Number of permits free right now.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(2);
    /// let _p = sem.try_acquire();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.state.borrow().permits
    }

    /// Closes the semaphore: queued and future acquires fail.
    ///
    /// Permits already held stay valid and still return on drop.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Semaphore;
    ///
    /// # percore_runtime::run(async {
    /// let sem = Semaphore::new(1);
    /// sem.close();
    /// assert!(sem.is_closed());
    /// assert!(sem.acquire().await.is_err());
    /// # }).unwrap();
    /// ```
    pub fn close(&self) {
        let mut wakes = WakeList::new();
        {
            let mut state = self.state.borrow_mut();
            state.closed = true;
            state.waiters.notify_all(&mut wakes, |_| ());
        }
        wakes.wake_all();
    }

    /// Returns `true` once [`close`](Self::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::Semaphore;
    ///
    /// assert!(!Semaphore::new(1).is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.state.borrow().closed
    }

    fn permit(&self, permits: usize) -> Permit<'_> {
        Permit::new(self, permits)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("Semaphore")
            .field("permits", &state.permits)
            .field("closed", &state.closed)
            .field("waiters", &state.waiters.len())
            .finish()
    }
}

/// Future returned by [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::{Acquire, Semaphore};
///
/// # percore_runtime::run(async {
/// let sem = Semaphore::new(1);
/// let fut: Acquire<'_> = sem.acquire();
/// assert!(fut.await.is_ok());
/// # }).unwrap();
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Acquire<'a> {
    semaphore: &'a Semaphore,
    needed: usize,
    state: WaitState,
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<Permit<'a>, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        crate::coop::budgeted(cx, |cx| {
            let semaphore = this.semaphore;
            let mut state = semaphore.state.borrow_mut();
            let granted = match this.state {
                WaitState::Idle if state.closed => false,
                WaitState::Idle if state.waiters.is_empty() && state.permits >= this.needed => {
                    state.permits -= this.needed;
                    true
                }
                WaitState::Idle => {
                    let request = Request {
                        needed: this.needed,
                        granted: false,
                    };
                    this.state = WaitState::Waiting(state.waiters.push_back(request, cx.waker()));
                    return Poll::Pending;
                }
                WaitState::Waiting(key) if state.waiters.is_notified(key) => {
                    state.waiters.remove(key).data.granted
                }
                WaitState::Waiting(key) => {
                    state.waiters.update_waker(key, cx.waker());
                    return Poll::Pending;
                }
                WaitState::Done => panic!("`Acquire` polled after completion"),
            };
            this.state = WaitState::Done;
            Poll::Ready(match granted {
                true => Ok(semaphore.permit(this.needed)),
                false => Err(AcquireError(())),
            })
        })
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if let WaitState::Waiting(key) = self.state {
            let removed = self.semaphore.state.borrow_mut().waiters.remove(key);
            if removed.data.granted {
                self.semaphore.add_permits(removed.data.needed);
            }
        }
    }
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("needed", &self.needed)
            .field("state", &self.state)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::waiters::testing::{counting_waker, poll_once};
    use super::*;

    #[test]
    fn big_request_at_head_is_not_starved() {
        let sem = Semaphore::new(2);
        let (_, waker) = counting_waker();
        let held = sem.try_acquire_many(2).expect("free");
        let mut big = sem.acquire_many(2);
        let mut small = sem.acquire();
        assert!(poll_once(&mut big, &waker).is_pending());
        assert!(poll_once(&mut small, &waker).is_pending());

        sem.add_permits(1);
        // One permit is free, but the head needs two: the small request waits.
        assert!(poll_once(&mut small, &waker).is_pending());
        assert!(sem.try_acquire().is_err());
        drop(held);
        let Poll::Ready(Ok(big_permit)) = poll_once(&mut big, &waker) else {
            panic!("head request should be granted first");
        };
        assert_eq!(big_permit.num_permits(), 2);
        assert!(poll_once(&mut small, &waker).is_ready());
    }

    #[test]
    fn dropped_waiter_passes_granted_permits_on() {
        let sem = Semaphore::new(1);
        let (second_wakes, second_waker) = counting_waker();
        let (third_wakes, third_waker) = counting_waker();
        let holder = sem.try_acquire().expect("free");
        let mut second = sem.acquire();
        let mut third = sem.acquire();
        assert!(poll_once(&mut second, &second_waker).is_pending());
        assert!(poll_once(&mut third, &third_waker).is_pending());

        drop(holder);
        assert_eq!((second_wakes.count(), third_wakes.count()), (1, 0));
        assert_eq!(sem.available_permits(), 0, "permit is reserved");
        drop(second);
        assert_eq!(third_wakes.count(), 1);
        assert!(matches!(
            poll_once(&mut third, &third_waker),
            Poll::Ready(Ok(_))
        ));
    }

    #[test]
    fn add_permits_wakes_every_request_that_fits_in_order() {
        let sem = Semaphore::new(0);
        let (_, waker) = counting_waker();
        let mut futs: Vec<_> = [1, 2, 3].map(|n| sem.acquire_many(n)).into();
        for fut in &mut futs {
            assert!(poll_once(fut, &waker).is_pending());
        }
        sem.add_permits(4);
        let first = poll_once(&mut futs[0], &waker);
        let second = poll_once(&mut futs[1], &waker);
        assert!(matches!(
            (&first, &second),
            (Poll::Ready(Ok(_)), Poll::Ready(Ok(_)))
        ));
        assert!(poll_once(&mut futs[2], &waker).is_pending());
        assert_eq!(sem.available_permits(), 1);
        drop(first);
        assert!(
            poll_once(&mut futs[2], &waker).is_pending(),
            "1 + 1 free < 3"
        );
        drop(second);
        assert!(poll_once(&mut futs[2], &waker).is_ready());
    }

    #[test]
    fn close_fails_waiters_but_keeps_permits() {
        let sem = Semaphore::new(1);
        let (wakes, waker) = counting_waker();
        let held = sem.try_acquire().expect("free");
        let mut waiter = sem.acquire();
        assert!(poll_once(&mut waiter, &waker).is_pending());
        sem.close();
        assert_eq!(wakes.count(), 1);
        assert!(matches!(
            poll_once(&mut waiter, &waker),
            Poll::Ready(Err(_))
        ));
        drop(held);
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
    }

    #[test]
    fn forget_keeps_permits_out() {
        let sem = Semaphore::new(3);
        sem.try_acquire_many(2).expect("free").forget();
        assert_eq!(sem.available_permits(), 1);
    }
}
