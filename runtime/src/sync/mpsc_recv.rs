//! Receiving half of the bounded `mpsc` channel.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::mpsc_chan::{Recv, Rx, TryRecvError};

/// Receiving half of a bounded [`channel`](super::mpsc::channel).
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::mpsc;
/// use futures_util::StreamExt;
///
/// # percore_runtime::run(async {
/// let (tx, rx) = mpsc::channel(4);
/// tx.try_send(1).expect("room");
/// tx.try_send(2).expect("room");
/// drop(tx);
/// assert_eq!(rx.collect::<Vec<_>>().await, [1, 2]);
/// # }).unwrap();
/// ```
pub struct Receiver<T> {
    pub(super) rx: Rx<T>,
}

impl<T> Receiver<T> {
    /// Receives the next value; `None` once the channel is closed or all
    /// senders are gone, and the queue is empty.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a value is only taken out of the queue when it is
    /// returned, so dropping the future never loses one.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::mpsc;
    ///
    /// # percore_runtime::run(async {
    /// let (tx, mut rx) = mpsc::channel(1);
    /// tx.send(5).await.expect("receiver is alive");
    /// drop(tx);
    /// assert_eq!(rx.recv().await, Some(5));
    /// assert_eq!(rx.recv().await, None);
    /// # }).unwrap();
    /// ```
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { rx: &mut self.rx }
    }

    /// Receives a value if one is queued, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing is queued yet,
    /// [`TryRecvError::Disconnected`] if nothing ever will be.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::mpsc::{self, TryRecvError};
    ///
    /// let (tx, mut rx) = mpsc::channel::<u8>(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.rx.try_recv()
    }

    /// Closes the channel: sends fail from now on, queued values can still
    /// be received.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::mpsc;
    ///
    /// let (tx, mut rx) = mpsc::channel(2);
    /// tx.try_send(1).expect("room");
    /// rx.close();
    /// assert!(tx.try_send(2).is_err());
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn close(&mut self) {
        self.rx.close();
    }

    /// Number of values queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel(2);
    /// tx.try_send(()).expect("room");
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Returns `true` if no value is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::mpsc;
    ///
    /// let (_tx, rx) = mpsc::channel::<()>(2);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::mpsc::{channel, SendError, TrySendError};
    use super::super::waiters::testing::{counting_waker, poll_once};
    use super::*;
    use futures_executor::block_on;
    use futures_util::StreamExt;

    #[test]
    fn recv_returns_none_after_senders_dropped() {
        let (tx, mut rx) = channel(4);
        let (wakes, waker) = counting_waker();
        tx.try_send(1).expect("room");
        let tx2 = tx.clone();
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(1));
        assert!(poll_once(&mut rx.recv(), &waker).is_pending());
        drop(tx2);
        assert_eq!(wakes.count(), 1);
        assert_eq!(block_on(rx.recv()), None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn close_fails_senders_but_keeps_queued_values() {
        let (tx, mut rx) = channel(1);
        let (wakes, waker) = counting_waker();
        tx.try_send(1).expect("room");
        let mut waiting = tx.send(2);
        assert!(poll_once(&mut waiting, &waker).is_pending());
        rx.close();
        assert_eq!(wakes.count(), 1);
        assert!(tx.is_closed());
        assert_eq!(
            poll_once(&mut waiting, &waker),
            Poll::Ready(Err(SendError(2)))
        );
        assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
        assert_eq!(block_on(tx.send(4)), Err(SendError(4)));
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(
            block_on(rx.recv()),
            None,
            "closed and drained, senders alive"
        );
    }

    #[test]
    fn stream_yields_all_items_then_ends() {
        let (tx, rx) = channel(2);
        let producer = async move {
            for i in 0..10 {
                tx.send(i).await.expect("receiver is alive");
            }
        };
        let (items, ()) = block_on(futures_util::future::join(rx.collect::<Vec<_>>(), producer));
        assert_eq!(items, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn dropping_recv_future_loses_nothing() {
        let (tx, mut rx) = channel(1);
        let (_, waker) = counting_waker();
        assert!(poll_once(&mut rx.recv(), &waker).is_pending());
        tx.try_send(7).expect("room");
        drop(rx.recv());
        assert_eq!(rx.try_recv(), Ok(7));
    }

    #[test]
    fn hundred_thousand_messages_arrive_in_order() {
        let (tx, mut rx) = channel(64);
        let producer = async move {
            for i in 0..100_000u32 {
                tx.send(i).await.expect("receiver is alive");
            }
        };
        let consumer = async move {
            let mut expected = 0u32;
            while let Some(i) = rx.recv().await {
                assert_eq!(i, expected);
                expected += 1;
            }
            expected
        };
        let ((), count) = block_on(futures_util::future::join(producer, consumer));
        assert_eq!(count, 100_000);
    }
}
