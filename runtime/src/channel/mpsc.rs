//! A bounded channel from any number of senders to one receiver, each on any
//! thread.
//!
//! Values go through a lock-free bounded queue (`crossbeam-queue`'s
//! `ArrayQueue`), which keeps each sender's values in the order it sent them.
//! A receiver that finds the queue empty parks its waker in an
//! `AtomicWaker` that every send wakes. A sender that finds it full joins a
//! mutex-protected FIFO list of waiters, and the receiver wakes the oldest
//! one per value it takes; the list is touched only when someone waits. Both
//! sides re-check the queue after parking, so no wakeup is lost.
//!
//! # Examples
//!
//! Two plain threads produce, a percore core consumes:
//!
//! ```
//! use percore_runtime::channel::mpsc;
//!
//! let (tx, mut rx) = mpsc::channel(16);
//! let producers: Vec<_> = (0..2u64)
//!     .map(|id| {
//!         let tx = tx.clone();
//!         std::thread::spawn(move || {
//!             for i in 0..100 {
//!                 futures_executor::block_on(tx.send((id, i))).expect("receiver is alive");
//!             }
//!         })
//!     })
//!     .collect();
//! drop(tx);
//! let count = percore_runtime::run(async move {
//!     let mut next = [0; 2];
//!     while let Some((id, i)) = rx.recv().await {
//!         assert_eq!(next[id as usize], i, "each sender's values arrive in order");
//!         next[id as usize] += 1;
//!     }
//!     next.iter().sum::<u64>()
//! })
//! .unwrap();
//! for producer in producers {
//!     producer.join().unwrap();
//! }
//! assert_eq!(count, 200);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crossbeam_queue::ArrayQueue;
use futures_core::Stream;

use super::atomic_waker::AtomicWaker;
use super::waiters::Waiters;
use super::{SendError, TryRecvError, TrySendError};
use crate::loom::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, SeqCst};
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize};
use crate::loom::sync::Arc;

/// What the senders and the receiver share.
struct Chan<T> {
    queue: ArrayQueue<T>,
    /// The receiver's waker while it waits for a value; every push wakes it.
    rx_waker: AtomicWaker,
    /// Live `Sender`s; the last one dropped wakes the receiver.
    senders: AtomicUsize,
    /// Set once, by `Receiver::close` or its drop; pushes are refused after.
    closed: AtomicBool,
    /// Senders waiting for a free slot.
    waiters: Waiters,
}

/// Creates a channel holding at most `capacity` values.
///
/// # Panics
///
/// If `capacity` is 0: a rendezvous channel is not supported.
///
/// # Examples
///
/// ```
/// use percore_runtime::channel::{mpsc, TrySendError};
///
/// let (tx, mut rx) = mpsc::channel(1);
/// tx.try_send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// assert_eq!(rx.try_recv(), Ok(1));
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "mpsc::channel capacity must be at least 1");
    let chan = Arc::new(Chan {
        queue: ArrayQueue::new(capacity),
        rx_waker: AtomicWaker::new(),
        senders: AtomicUsize::new(1),
        closed: AtomicBool::new(false),
        waiters: Waiters::new(),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// A sending half of an [`mpsc::channel`](channel); `Send`, `Sync`, and
/// cloned for more senders.
///
/// When the last sender is dropped the receiver gets what was sent, then
/// `None`.
///
/// # Examples
///
/// ```
/// use percore_runtime::channel::mpsc;
///
/// let (tx, mut rx) = mpsc::channel(4);
/// let tx2 = tx.clone();
/// std::thread::spawn(move || futures_executor::block_on(tx2.send(2)).unwrap())
///     .join()
///     .unwrap();
/// tx.try_send(1).unwrap();
/// drop(tx);
/// let got = percore_runtime::run(async move {
///     let mut got = Vec::new();
///     while let Some(v) = rx.recv().await {
///         got.push(v);
///     }
///     got
/// })
/// .unwrap();
/// assert_eq!(got, [2, 1]);
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full.
    ///
    /// Waiting senders are woken oldest first, one per value received, but a
    /// sender arriving while there is room may go first.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is closed or dropped,
    /// before or while waiting. A value sent just as the receiver is dropped
    /// may be accepted and then dropped with the channel.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: the future owns `value` until it is sent, so dropping
    /// it before it completes drops the value unsent (and returns nothing);
    /// a wakeup it had received passes to the next waiting sender. Use
    /// [`try_send`](Self::try_send) to keep the value when there is no room.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::channel::mpsc;
    ///
    /// let (tx, mut rx) = mpsc::channel(1);
    /// percore_runtime::run(async {
    ///     tx.send(1).await.unwrap();
    ///     assert_eq!(rx.recv().await, Some(1));
    /// })
    /// .unwrap();
    /// ```
    pub fn send(&self, value: T) -> SendFuture<'_, T> {
        SendFuture {
            sender: self,
            value: Some(value),
            waiter: None,
        }
    }

    /// Sends `value` if there is room right now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if the channel is full, [`TrySendError::Closed`]
    /// if the receiver is closed or dropped; both give the value back.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::channel::{mpsc, TrySendError};
    ///
    /// let (tx, rx) = mpsc::channel(1);
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        if self.chan.closed.load(Acquire) {
            return Err(TrySendError::Closed(value));
        }
        self.chan.queue.push(value).map_err(TrySendError::Full)?;
        self.chan.rx_waker.wake();
        Ok(())
    }

    /// Whether the receiver was closed or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::channel::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel::<()>(1);
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.closed.load(Acquire)
    }

    /// How many values the channel holds at most.
    pub fn capacity(&self) -> usize {
        self.chan.queue.capacity()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // AcqRel: every sender's pushes happen before the receiver's Acquire
        // load that sees 0.
        if self.chan.senders.fetch_sub(1, AcqRel) == 1 {
            self.chan.rx_waker.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Future returned by [`Sender::send`].
///
/// # Cancel safety
///
/// Dropping it before it completes drops the value unsent.
///
/// # Examples
///
/// ```
/// use percore_runtime::channel::{mpsc, SendError};
///
/// let (tx, rx) = mpsc::channel(1);
/// drop(rx);
/// let send: mpsc::SendFuture<'_, u8> = tx.send(1);
/// assert_eq!(percore_runtime::run(send).unwrap(), Err(SendError(1)));
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct SendFuture<'a, T> {
    sender: &'a Sender<T>,
    /// `None` once sent or given back.
    value: Option<T>,
    /// Our id in `chan.waiters`, once we parked.
    waiter: Option<u64>,
}

impl<T> SendFuture<'_, T> {
    /// Turns the outcome of a `try_send` into the future's, keeping the
    /// value on `Full`.
    fn settle(&mut self, sent: Result<(), TrySendError<T>>) -> Poll<Result<(), SendError<T>>> {
        let done = match sent {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(value)) => Err(SendError(value)),
            Err(TrySendError::Full(value)) => {
                self.value = Some(value);
                return Poll::Pending;
            }
        };
        if let Some(id) = self.waiter.take() {
            let chan = &self.sender.chan;
            // Woken, but maybe for the slot our own value (pushed while we
            // were still listed) left when it was received: if there is room,
            // the next waiter may be sleeping beside it. `forget` took the
            // lock the waking receiver held after its pop, so we see that pop.
            if chan.waiters.forget(id) && !chan.queue.is_full() {
                chan.waiters.wake_one();
            }
        }
        Poll::Ready(done)
    }
}

// The value is only ever moved, never pinned.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        crate::coop::budgeted(cx, |cx| {
            let value = this
                .value
                .take()
                .expect("SendFuture polled after completion");
            let value = match this.sender.try_send(value) {
                Err(TrySendError::Full(value)) => value,
                sent => return this.settle(sent),
            };
            this.sender
                .chan
                .waiters
                .register(&mut this.waiter, cx.waker());
            // A receive between the first `try_send` and `register` did not see
            // us: look again before sleeping.
            let sent = this.sender.try_send(value);
            this.settle(sent)
        })
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(id) = self.waiter.take() {
            // Woken but never sending: the slot we were woken for is unused.
            if self.sender.chan.waiters.forget(id) {
                self.sender.chan.waiters.wake_one();
            }
        }
    }
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture")
            .field("sent", &self.value.is_none())
            .field("waiting", &self.waiter.is_some())
            .finish_non_exhaustive()
    }
}

/// The receiving half of an [`mpsc::channel`](channel); `Send`, and a
/// [`Stream`] of the values.
///
/// Dropping it closes the channel, drops the values still queued (on the
/// dropping thread) and wakes the waiting senders, whose `send` then fails.
///
/// # Examples
///
/// ```
/// use futures_util::StreamExt;
/// use percore_runtime::channel::mpsc;
///
/// let (tx, rx) = mpsc::channel(8);
/// let producer = std::thread::spawn(move || {
///     for i in 0..20 {
///         futures_executor::block_on(tx.send(i)).unwrap();
///     }
/// });
/// let all: Vec<u32> = percore_runtime::run(rx.collect()).unwrap();
/// producer.join().unwrap();
/// assert_eq!(all, (0..20).collect::<Vec<_>>());
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives the next value, waiting while the channel is empty.
    ///
    /// Returns `None` once the channel is empty and every sender is gone (or
    /// this receiver was [closed](Self::close)).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a value is taken from the channel only in the poll that
    /// returns it, so dropping the future loses nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::channel::mpsc;
    ///
    /// let (tx, mut rx) = mpsc::channel(2);
    /// tx.try_send(1).unwrap();
    /// drop(tx);
    /// percore_runtime::run(async {
    ///     assert_eq!(rx.recv().await, Some(1));
    ///     assert_eq!(rx.recv().await, None);
    /// })
    /// .unwrap();
    /// ```
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { receiver: self }
    }

    /// Receives the next value if one is queued right now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing is queued but a sender may still
    /// send; [`TryRecvError::Disconnected`] if nothing is queued and every
    /// sender is gone or this receiver was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::channel::{mpsc, TryRecvError};
    ///
    /// let (tx, mut rx) = mpsc::channel(2);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.try_send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if let Some(value) = self.pop() {
            return Ok(value);
        }
        if self.chan.senders.load(Acquire) != 0 && !self.chan.closed.load(Acquire) {
            return Err(TryRecvError::Empty);
        }
        // Every push happens before the last sender's decrement, which we
        // just saw: one more look finds them all.
        self.pop().ok_or(TryRecvError::Disconnected)
    }

    /// Polls for the next value: the body of [`Recv`] and of the [`Stream`]
    /// impl, for hand-written futures.
    ///
    /// Registers `cx`'s waker when it returns `Pending` (replacing the waker
    /// of an earlier poll).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use percore_runtime::channel::mpsc;
    ///
    /// let (tx, mut rx) = mpsc::channel(1);
    /// tx.try_send(3).unwrap();
    /// let got = percore_runtime::run(poll_fn(|cx| rx.poll_recv(cx))).unwrap();
    /// assert_eq!(got, Some(3));
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        crate::coop::budgeted(cx, |cx| self.poll_recv_unbudgeted(cx))
    }

    fn poll_recv_unbudgeted(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.try_recv() {
            Ok(value) => return Poll::Ready(Some(value)),
            Err(TryRecvError::Disconnected) => return Poll::Ready(None),
            Err(TryRecvError::Empty) => {}
        }
        self.chan.rx_waker.register(cx.waker());
        // A send between `try_recv` and `register` woke the previous waker,
        // not this one: look again before sleeping.
        match self.try_recv() {
            Ok(value) => Poll::Ready(Some(value)),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => Poll::Pending,
        }
    }

    /// Closes the channel: sends fail from now on, and waiting senders are
    /// woken to fail, while the values already queued can still be received.
    ///
    /// A send racing with `close` may still be accepted; [`recv`](Self::recv)
    /// returns `None` at the first empty look after closing, and dropping the
    /// receiver drops anything that arrived later.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::channel::{mpsc, TrySendError};
    ///
    /// let (tx, mut rx) = mpsc::channel(2);
    /// tx.try_send(1).unwrap();
    /// rx.close();
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn close(&mut self) {
        // SeqCst: a sender that parks after `wake_all` took the list sees
        // `closed` in its re-check (the list's lock orders them).
        if !self.chan.closed.swap(true, SeqCst) {
            self.chan.waiters.wake_all();
        }
    }

    /// How many values are queued right now.
    pub fn len(&self) -> usize {
        self.chan.queue.len()
    }

    /// Whether nothing is queued right now.
    pub fn is_empty(&self) -> bool {
        self.chan.queue.is_empty()
    }

    /// How many values the channel holds at most.
    pub fn capacity(&self) -> usize {
        self.chan.queue.capacity()
    }

    /// Pops a value and wakes a waiting sender, if any, for the freed slot.
    fn pop(&mut self) -> Option<T> {
        let value = self.chan.queue.pop()?;
        self.chan.waiters.wake_one();
        Some(value)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
        // Drop what is queued here, not on whichever thread drops last.
        while self.chan.queue.pop().is_some() {}
        // And our task's waker: senders may live on, and a waker kept in the
        // channel keeps the task's memory (and, once its core is gone, the
        // core's shared part) alive with them.
        drop(self.chan.rx_waker.take());
    }
}

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_recv(cx)
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

/// Future returned by [`Receiver::recv`].
///
/// # Cancel safety
///
/// Cancel safe: dropping it loses no value.
///
/// # Examples
///
/// ```
/// use percore_runtime::channel::mpsc;
///
/// let (tx, mut rx) = mpsc::channel::<u8>(1);
/// drop(tx);
/// let recv: mpsc::Recv<'_, u8> = rx.recv();
/// assert_eq!(percore_runtime::run(recv).unwrap(), None);
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Recv<'a, T> {
    receiver: &'a mut Receiver<T>,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().receiver.poll_recv(cx)
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").finish_non_exhaustive()
    }
}
