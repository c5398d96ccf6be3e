//! A bounded channel from exactly one sender to exactly one receiver, each
//! on any thread.
//!
//! The values live in a lock-free ring buffer whose capacity is rounded up to
//! a power of two. The sender owns the tail index and the receiver the head
//! index, each on its own cache line, and each side keeps a cached copy of
//! the other's index, so while the ring is neither full nor empty a send or a
//! receive touches no cache line the other core is writing. A receiver that
//! finds the ring empty parks its waker in an `AtomicWaker` that every send
//! wakes, and a sender that finds it full does the same on the other side;
//! each re-checks the ring after parking, so no wakeup is lost.
//!
//! # Examples
//!
//! A plain thread produces, a percore core consumes:
//!
//! ```
//! use percore_runtime::channel::spsc;
//!
//! let (mut tx, mut rx) = spsc::channel(64);
//! let producer = std::thread::spawn(move || {
//!     for i in 0..1000u64 {
//!         futures_executor::block_on(tx.send(i)).expect("receiver is alive");
//!     }
//! });
//! let sum = percore_runtime::run(async move {
//!     let mut sum = 0;
//!     while let Some(i) = rx.recv().await {
//!         sum += i;
//!     }
//!     sum
//! })
//! .unwrap();
//! producer.join().unwrap();
//! assert_eq!(sum, 999 * 1000 / 2);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::ring::{self, Consumer, Producer, RX_CLOSED, TX_GONE};
use super::{SendError, TryRecvError, TrySendError};

/// Creates a channel holding at least `capacity` values (rounded up to a
/// power of two).
///
/// # Panics
///
/// If `capacity` is 0 (a rendezvous channel is not supported), or if
/// rounding it up overflows `usize`.
///
/// # Examples
///
/// ```
/// use percore_runtime::channel::spsc;
///
/// let (mut tx, mut rx) = spsc::channel(3);
/// assert_eq!(tx.capacity(), 4);
/// tx.try_send('a').unwrap();
/// assert_eq!(rx.try_recv(), Ok('a'));
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "spsc::channel capacity must be at least 1");
    let (producer, consumer) = ring::ring(capacity);
    (Sender { producer }, Receiver { consumer })
}

/// The sending half of an [`spsc::channel`](channel); `Send`, not `Clone`.
///
/// Dropping it disconnects the channel: the receiver gets what was sent, then
/// `None`.
///
/// # Examples
///
/// ```
/// use percore_runtime::channel::spsc;
///
/// let (mut tx, mut rx) = spsc::channel(1);
/// std::thread::spawn(move || futures_executor::block_on(tx.send(5)))
///     .join()
///     .unwrap()
///     .unwrap();
/// assert_eq!(percore_runtime::run(rx.recv()).unwrap(), Some(5));
/// ```
pub struct Sender<T> {
    producer: Producer<T>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full.
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
    /// it before it completes drops the value unsent (and returns nothing).
    /// Use [`try_send`](Self::try_send) to keep the value when there is no
    /// room.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::channel::spsc;
    ///
    /// let (mut tx, mut rx) = spsc::channel(1);
    /// percore_runtime::run(async {
    ///     tx.send(1).await.unwrap();
    ///     assert_eq!(rx.recv().await, Some(1));
    /// })
    /// .unwrap();
    /// ```
    pub fn send(&mut self, value: T) -> SendFuture<'_, T> {
        SendFuture {
            sender: self,
            value: Some(value),
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
    /// use percore_runtime::channel::{spsc, TrySendError};
    ///
    /// let (mut tx, _rx) = spsc::channel(1);
    /// tx.try_send(1).unwrap();
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// ```
    pub fn try_send(&mut self, value: T) -> Result<(), TrySendError<T>> {
        if self.producer.ring.is(RX_CLOSED) {
            return Err(TrySendError::Closed(value));
        }
        self.producer.push(value).map_err(TrySendError::Full)?;
        self.producer.ring.rx_waker.wake();
        Ok(())
    }

    /// Whether the receiver was closed or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::channel::spsc;
    ///
    /// let (tx, rx) = spsc::channel::<()>(1);
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.producer.ring.is(RX_CLOSED)
    }

    /// How many values the channel holds at most (`capacity` given to
    /// [`channel`], rounded up to a power of two).
    pub fn capacity(&self) -> usize {
        self.producer.ring.capacity()
    }

    /// The body of [`SendFuture::poll`]: send, or park and look again.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        slot: &mut Option<T>,
    ) -> Poll<Result<(), SendError<T>>> {
        let value = slot.take().expect("SendFuture polled after completion");
        let value = match self.try_send(value) {
            Ok(()) => return Poll::Ready(Ok(())),
            Err(TrySendError::Closed(value)) => return Poll::Ready(Err(SendError(value))),
            Err(TrySendError::Full(value)) => value,
        };
        self.producer.ring.tx_waker.register(cx.waker());
        // A receive between the first `try_send` and `register` woke the
        // previous waker, not this one: look again before sleeping.
        match self.try_send(value) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(TrySendError::Closed(value)) => Poll::Ready(Err(SendError(value))),
            Err(TrySendError::Full(value)) => {
                *slot = Some(value);
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // Release: our pushes happen before a receiver that sees TX_GONE.
        self.producer.ring.set(TX_GONE);
        self.producer.ring.rx_waker.wake();
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
/// use percore_runtime::channel::{spsc, SendError};
///
/// let (mut tx, rx) = spsc::channel(1);
/// drop(rx);
/// let send: spsc::SendFuture<'_, u8> = tx.send(1);
/// assert_eq!(percore_runtime::run(send).unwrap(), Err(SendError(1)));
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct SendFuture<'a, T> {
    sender: &'a mut Sender<T>,
    /// `None` once sent or given back.
    value: Option<T>,
}

// The value is only ever moved, never pinned.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        crate::coop::budgeted(cx, |cx| this.sender.poll_send(cx, &mut this.value))
    }
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture")
            .field("sent", &self.value.is_none())
            .finish_non_exhaustive()
    }
}

/// The receiving half of an [`spsc::channel`](channel); `Send`, and a
/// [`Stream`] of the values.
///
/// Dropping it closes the channel, drops the values still queued (on the
/// dropping thread) and wakes a waiting sender, whose `send` then fails.
///
/// # Examples
///
/// ```
/// use futures_util::StreamExt;
/// use percore_runtime::channel::spsc;
///
/// let (mut tx, rx) = spsc::channel(8);
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
    consumer: Consumer<T>,
}

impl<T> Receiver<T> {
    /// Receives the next value, waiting while the channel is empty.
    ///
    /// Returns `None` once the channel is empty and the sender is gone (or
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
    /// use percore_runtime::channel::spsc;
    ///
    /// let (mut tx, mut rx) = spsc::channel(2);
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
    /// [`TryRecvError::Empty`] if nothing is queued but the sender may still
    /// send; [`TryRecvError::Disconnected`] if nothing is queued and the
    /// sender is gone or this receiver was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::channel::{spsc, TryRecvError};
    ///
    /// let (mut tx, mut rx) = spsc::channel(2);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.try_send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if let Some(value) = self.pop() {
            return Ok(value);
        }
        if !self.consumer.ring.is(TX_GONE | RX_CLOSED) {
            return Err(TryRecvError::Empty);
        }
        // The sender's last push happens before its TX_GONE, which we just
        // saw: one more look finds it.
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
    /// use percore_runtime::channel::spsc;
    ///
    /// let (mut tx, mut rx) = spsc::channel(1);
    /// tx.try_send(3).unwrap();
    /// let got = percore_runtime::run(poll_fn(|cx| rx.poll_recv(cx))).unwrap();
    /// assert_eq!(got, Some(3));
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        crate::coop::budgeted(cx, |cx| self.poll_recv_unbudgeted(cx))
    }

    /// [`poll_recv`](Self::poll_recv) without the cooperative budget (for
    /// the mesh, which budgets its receive once for all its channels).
    pub(crate) fn poll_recv_unbudgeted(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        match self.try_recv() {
            Ok(value) => return Poll::Ready(Some(value)),
            Err(TryRecvError::Disconnected) => return Poll::Ready(None),
            Err(TryRecvError::Empty) => {}
        }
        self.consumer.ring.rx_waker.register(cx.waker());
        // A send between `try_recv` and `register` woke the previous waker,
        // not this one: look again before sleeping.
        match self.try_recv() {
            Ok(value) => Poll::Ready(Some(value)),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => Poll::Pending,
        }
    }

    /// Closes the channel: sends fail from now on, while the values already
    /// queued can still be received.
    ///
    /// A send racing with `close` may still be accepted; [`recv`](Self::recv)
    /// returns `None` at the first empty look after closing, and dropping the
    /// receiver drops anything that arrived later.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::channel::{spsc, TrySendError};
    ///
    /// let (mut tx, mut rx) = spsc::channel(2);
    /// tx.try_send(1).unwrap();
    /// rx.close();
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn close(&mut self) {
        if self.consumer.ring.set(RX_CLOSED) & RX_CLOSED == 0 {
            self.consumer.ring.tx_waker.wake();
        }
    }

    /// How many values are queued right now.
    pub fn len(&self) -> usize {
        self.consumer.len()
    }

    /// Whether nothing is queued right now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many values the channel holds at most (`capacity` given to
    /// [`channel`], rounded up to a power of two).
    pub fn capacity(&self) -> usize {
        self.consumer.ring.capacity()
    }

    /// Pops a value and wakes the sender, which may wait for room.
    fn pop(&mut self) -> Option<T> {
        let value = self.consumer.pop()?;
        self.consumer.ring.tx_waker.wake();
        Some(value)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
        // Drop what is queued here, not on whichever thread drops last.
        while self.consumer.pop().is_some() {}
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
/// use percore_runtime::channel::spsc;
///
/// let (tx, mut rx) = spsc::channel::<u8>(1);
/// drop(tx);
/// let recv: spsc::Recv<'_, u8> = rx.recv();
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
