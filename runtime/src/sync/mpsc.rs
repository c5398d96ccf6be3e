//! Multi-producer, single-consumer FIFO channels between tasks on one core.
//!
//! [`channel`] is bounded: [`Sender::send`] waits while the queue is full
//! (backpressure), and waiting senders get free slots in FIFO order.
//! [`unbounded_channel`] never makes senders wait.
//!
//! # Examples
//!
//! ```
//! use percore_runtime::sync::mpsc;
//!
//! # percore_runtime::run(async {
//! let (tx, mut rx) = mpsc::channel(8);
//! for i in 0..3 {
//!     tx.send(i).await.expect("receiver is alive");
//! }
//! drop(tx);
//! let mut got = Vec::new();
//! while let Some(i) = rx.recv().await {
//!     got.push(i);
//! }
//! assert_eq!(got, [0, 1, 2]);
//! # }).unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::mpsc_chan::{Chan, Shared, Tx};
use super::waiters::{WaiterKey, WakeList};

pub use super::mpsc_chan::{Recv, SendError, TryRecvError, TrySendError};
pub use super::mpsc_recv::Receiver;
pub use super::mpsc_unbounded::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Creates a bounded channel holding at most `capacity` queued values.
///
/// # Panics
///
/// If `capacity` is 0: a rendezvous channel is not supported.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::mpsc;
///
/// let (tx, mut rx) = mpsc::channel(1);
/// tx.try_send(1).expect("room for one");
/// assert!(tx.try_send(2).is_err());
/// assert_eq!(rx.try_recv(), Ok(1));
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "mpsc::channel capacity must be at least 1");
    let (tx, rx) = Chan::open(Some(capacity));
    (Sender { tx }, Receiver { rx })
}

/// Sending half of a bounded [`channel`]; clone it for more producers.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::mpsc;
///
/// # percore_runtime::run(async {
/// let (tx, mut rx) = mpsc::channel(4);
/// let tx2 = tx.clone();
/// tx.send('a').await.expect("receiver is alive");
/// tx2.send('b').await.expect("receiver is alive");
/// assert_eq!(rx.recv().await, Some('a'));
/// assert_eq!(rx.recv().await, Some('b'));
/// # }).unwrap();
/// ```
pub struct Sender<T> {
    tx: Tx<T>,
}

impl<T> Sender<T> {
    /// Sends `value`, waiting for a free slot while the channel is full.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is closed or dropped,
    /// before or while waiting.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before completing, the value
    /// was not sent (it is dropped with the future), and a slot that had
    /// been reserved for it passes to the next waiting sender.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::mpsc;
    ///
    /// # percore_runtime::run(async {
    /// let (tx, mut rx) = mpsc::channel(1);
    /// tx.send(1).await.expect("receiver is alive");
    /// assert_eq!(rx.recv().await, Some(1));
    /// # }).unwrap();
    /// ```
    pub fn send(&self, value: T) -> SendFuture<'_, T> {
        SendFuture {
            chan: &self.tx.chan,
            state: SendState::Idle(value),
        }
    }

    /// Sends `value` if a slot is free right now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if it would have to wait (full, or other
    /// senders are already waiting), [`TrySendError::Closed`] if the
    /// receiver is gone; both give the value back.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::mpsc::{self, TrySendError};
    ///
    /// let (tx, _rx) = mpsc::channel(1);
    /// tx.try_send(1).expect("room for one");
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let waker = self.tx.chan.borrow_mut().try_push(value)?;
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Returns `true` if the receiver was closed or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel::<()>(1);
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Future returned by [`Sender::send`].
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::mpsc::{self, SendError, SendFuture};
///
/// # percore_runtime::run(async {
/// let (tx, rx) = mpsc::channel(1);
/// drop(rx);
/// let fut: SendFuture<'_, u8> = tx.send(1);
/// assert_eq!(fut.await, Err(SendError(1)));
/// # }).unwrap();
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct SendFuture<'a, T> {
    chan: &'a Shared<T>,
    state: SendState<T>,
}

enum SendState<T> {
    Idle(T),
    Waiting(WaiterKey, T),
    Done,
}

// The value is only ever moved, never pinned, so pinning the future does
// not need to pin it.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        crate::coop::budgeted(cx, |cx| {
            let mut chan = this.chan.borrow_mut();
            let pushed = match mem::replace(&mut this.state, SendState::Done) {
                SendState::Idle(value) => match chan.try_push(value) {
                    Ok(waker) => Ok(waker),
                    Err(TrySendError::Closed(value)) => Err(value),
                    Err(TrySendError::Full(value)) => {
                        let key = chan.wait_for_slot(cx.waker());
                        this.state = SendState::Waiting(key, value);
                        return Poll::Pending;
                    }
                },
                SendState::Waiting(key, value) => {
                    if !chan.poll_slot(key, cx.waker()) {
                        this.state = SendState::Waiting(key, value);
                        return Poll::Pending;
                    }
                    // Fails if closed since we were woken: the value comes back.
                    chan.push(value)
                }
                SendState::Done => panic!("`SendFuture` polled after completion"),
            };
            drop(chan);
            Poll::Ready(match pushed {
                Ok(waker) => {
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                    Ok(())
                }
                Err(value) => Err(SendError(value)),
            })
        })
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        if let SendState::Waiting(key, _) = self.state {
            let mut wakes = WakeList::new();
            self.chan.borrow_mut().cancel_wait(key, &mut wakes);
            wakes.wake_all();
        }
        // The unsent value, if any, drops after this, outside any borrow.
    }
}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            SendState::Idle(_) => "idle",
            SendState::Waiting(..) => "waiting",
            SendState::Done => "done",
        };
        f.debug_struct("SendFuture").field("state", &state).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::waiters::testing::{counting_waker, poll_once, yield_now};
    use super::*;
    use futures_executor::LocalPool;
    use futures_util::task::LocalSpawnExt;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn full_channel_makes_sender_wait_until_recv() {
        let (tx, mut rx) = channel(2);
        let (wakes, waker) = counting_waker();
        tx.try_send(1).expect("room");
        tx.try_send(2).expect("room");
        let mut third = tx.send(3);
        assert!(poll_once(&mut third, &waker).is_pending());
        assert_eq!(rx.len(), 2);

        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(wakes.count(), 1);
        assert_eq!(
            tx.try_send(9),
            Err(TrySendError::Full(9)),
            "slot is reserved"
        );
        assert_eq!(poll_once(&mut third, &waker), Poll::Ready(Ok(())));
        assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(2), Ok(3)));
    }

    #[test]
    fn waiting_senders_are_served_in_fifo_order() {
        let (tx, mut rx) = channel(1);
        let (_, waker) = counting_waker();
        tx.try_send(0).expect("room");
        let mut futs: Vec<_> = (1..=3).map(|i| tx.send(i)).collect();
        for fut in &mut futs {
            assert!(poll_once(fut, &waker).is_pending());
        }
        for expected in 0..3 {
            assert_eq!(rx.try_recv(), Ok(expected));
            // Poll in reverse: only the sender at the head may proceed.
            let ready: Vec<bool> = futs
                .iter_mut()
                .rev()
                .map(|f| poll_once(f, &waker).is_ready())
                .collect();
            assert_eq!(ready.iter().filter(|r| **r).count(), 1);
            drop(futs.remove(0));
        }
        assert_eq!(rx.try_recv(), Ok(3));
    }

    #[test]
    fn dropped_waiting_sender_passes_slot_on_and_sends_nothing() {
        let (tx, mut rx) = channel(1);
        let (_, waker) = counting_waker();
        let (third_wakes, third_waker) = counting_waker();
        tx.try_send(1).expect("room");
        let mut second = tx.send(2);
        let mut third = tx.send(3);
        assert!(poll_once(&mut second, &waker).is_pending());
        assert!(poll_once(&mut third, &third_waker).is_pending());
        assert_eq!(rx.try_recv(), Ok(1));
        drop(second);
        assert_eq!(third_wakes.count(), 1);
        assert_eq!(poll_once(&mut third, &third_waker), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Ok(3));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn per_sender_order_is_kept_across_tasks() {
        let mut pool = LocalPool::new();
        let (tx, mut rx) = channel(3);
        for sender in 0..4u32 {
            let tx = tx.clone();
            let task = async move {
                for i in 0..50u32 {
                    tx.send((sender, i)).await.expect("receiver is alive");
                    if i % 7 == 0 {
                        yield_now().await;
                    }
                }
            };
            pool.spawner().spawn_local(task).expect("pool is alive");
        }
        drop(tx);
        let got = Rc::new(RefCell::new(Vec::new()));
        let sink = got.clone();
        let consumer = async move {
            while let Some(item) = rx.recv().await {
                sink.borrow_mut().push(item);
            }
        };
        pool.spawner().spawn_local(consumer).expect("pool is alive");
        pool.run();
        let got = got.borrow();
        assert_eq!(got.len(), 200);
        for sender in 0..4 {
            let mine = got.iter().filter(|(s, _)| *s == sender).map(|(_, i)| *i);
            assert!(mine.eq(0..50), "sender {sender} out of order");
        }
    }

    #[test]
    fn close_after_slot_was_reserved_returns_value() {
        let (tx, mut rx) = channel(1);
        let (_, waker) = counting_waker();
        tx.try_send(1).expect("room");
        let mut waiting = tx.send(2);
        assert!(poll_once(&mut waiting, &waker).is_pending());
        assert_eq!(rx.try_recv(), Ok(1));
        rx.close();
        assert_eq!(
            poll_once(&mut waiting, &waker),
            Poll::Ready(Err(SendError(2)))
        );
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    #[should_panic(expected = "capacity must be at least 1")]
    fn zero_capacity_panics() {
        let _ = channel::<()>(0);
    }
}
