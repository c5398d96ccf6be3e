//! The unbounded `mpsc` flavour: senders never wait.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::mpsc_chan::{Chan, Recv, Rx, SendError, TryRecvError, Tx};

/// Creates a channel with no capacity limit.
///
/// Sending never waits, so nothing slows down a producer that outpaces the
/// consumer: prefer [`channel`](super::mpsc::channel) unless producers are
/// bounded some other way.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::mpsc;
///
/// # percore_runtime::run(async {
/// let (tx, mut rx) = mpsc::unbounded_channel();
/// for i in 0..1000 {
///     tx.send(i).expect("receiver is alive");
/// }
/// assert_eq!(rx.len(), 1000);
/// assert_eq!(rx.recv().await, Some(0));
/// # }).unwrap();
/// ```
pub fn unbounded_channel<T>() -> (UnboundedSender<T>, UnboundedReceiver<T>) {
    let (tx, rx) = Chan::open(None);
    (UnboundedSender { tx }, UnboundedReceiver { rx })
}

/// Sending half of an [`unbounded_channel`]; clone it for more producers.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::mpsc;
///
/// let (tx, mut rx) = mpsc::unbounded_channel();
/// tx.clone().send(1).expect("receiver is alive");
/// assert_eq!(rx.try_recv(), Ok(1));
/// ```
pub struct UnboundedSender<T> {
    tx: Tx<T>,
}

impl<T> UnboundedSender<T> {
    /// Queues `value` at once; unlike the bounded sender this is not a future.
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the receiver is closed or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::unbounded_channel();
    /// tx.send(1).expect("receiver is alive");
    /// drop(rx);
    /// assert!(tx.send(2).is_err());
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let waker = self.tx.chan.borrow_mut().push(value).map_err(SendError)?;
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
    /// let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    /// rx.close();
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl<T> Clone for UnboundedSender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<T> fmt::Debug for UnboundedSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedSender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Receiving half of an [`unbounded_channel`].
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::mpsc;
/// use futures_util::StreamExt;
///
/// # percore_runtime::run(async {
/// let (tx, rx) = mpsc::unbounded_channel();
/// tx.send('x').expect("receiver is alive");
/// drop(tx);
/// assert_eq!(rx.collect::<String>().await, "x");
/// # }).unwrap();
/// ```
pub struct UnboundedReceiver<T> {
    rx: Rx<T>,
}

impl<T> UnboundedReceiver<T> {
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
    /// let (tx, mut rx) = mpsc::unbounded_channel();
    /// tx.send(5).expect("receiver is alive");
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
    /// use percore_runtime::sync::mpsc;
    ///
    /// let (tx, mut rx) = mpsc::unbounded_channel();
    /// tx.send(1).expect("receiver is alive");
    /// assert_eq!(rx.try_recv(), Ok(1));
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
    /// let (tx, mut rx) = mpsc::unbounded_channel();
    /// tx.send(1).expect("receiver is alive");
    /// rx.close();
    /// assert!(tx.send(2).is_err());
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
    /// let (tx, rx) = mpsc::unbounded_channel();
    /// tx.send(()).expect("receiver is alive");
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
    /// let (_tx, rx) = mpsc::unbounded_channel::<()>();
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Stream for UnboundedReceiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

impl<T> fmt::Debug for UnboundedReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnboundedReceiver")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::waiters::testing::{counting_waker, poll_once};
    use super::*;

    #[test]
    fn send_wakes_waiting_receiver() {
        let (tx, mut rx) = unbounded_channel();
        let (wakes, waker) = counting_waker();
        let mut recv = rx.recv();
        assert!(poll_once(&mut recv, &waker).is_pending());
        tx.send(1).expect("receiver is alive");
        assert_eq!(wakes.count(), 1);
        assert_eq!(poll_once(&mut recv, &waker), Poll::Ready(Some(1)));
    }

    #[test]
    fn last_sender_drop_ends_stream() {
        let (tx, mut rx) = unbounded_channel::<u8>();
        let (wakes, waker) = counting_waker();
        let tx2 = tx.clone();
        assert!(poll_once(&mut rx.recv(), &waker).is_pending());
        drop(tx);
        assert_eq!(wakes.count(), 0, "one sender is still alive");
        drop(tx2);
        assert_eq!(wakes.count(), 1);
        assert_eq!(poll_once(&mut rx.recv(), &waker), Poll::Ready(None));
    }

    #[test]
    fn many_messages_arrive_in_order() {
        let (tx, mut rx) = unbounded_channel();
        for i in 0..100_000u32 {
            tx.send(i).expect("receiver is alive");
        }
        drop(tx);
        let received: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert!(received.iter().copied().eq(0..100_000));
    }
}
