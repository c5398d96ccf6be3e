//! A single-value channel between tasks on one core.
//!
//! # Examples
//!
//! ```
//! use percore_runtime::sync::oneshot;
//!
//! # percore_runtime::run(async {
//! let (tx, rx) = oneshot::channel();
//! tx.send("done").expect("receiver is alive");
//! assert_eq!(rx.await, Ok("done"));
//! # }).unwrap();
//! ```

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Creates a connected sender and receiver for a single value.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::oneshot;
///
/// # percore_runtime::run(async {
/// let (tx, rx) = oneshot::channel::<u32>();
/// drop(tx);
/// assert!(rx.await.is_err());
/// # }).unwrap();
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Rc::new(RefCell::new(Inner {
        value: None,
        sender_alive: true,
        receiver_closed: false,
        rx_waker: None,
        tx_waker: None,
    }));
    (
        Sender {
            inner: inner.clone(),
        },
        Receiver { inner },
    )
}

struct Inner<T> {
    value: Option<T>,
    sender_alive: bool,
    /// Set by [`Receiver::close`] or dropping the receiver.
    receiver_closed: bool,
    rx_waker: Option<Waker>,
    tx_waker: Option<Waker>,
}

/// Sending half of a [`channel`]; consumed by [`send`](Self::send).
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::oneshot;
///
/// let (tx, mut rx) = oneshot::channel();
/// tx.send(1).expect("receiver is alive");
/// assert_eq!(rx.try_recv(), Ok(1));
/// ```
pub struct Sender<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

impl<T> Sender<T> {
    /// Sends the value, waking the receiver.
    ///
    /// # Errors
    ///
    /// Gives `value` back if the receiver was closed or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::oneshot;
    ///
    /// let (tx, rx) = oneshot::channel();
    /// drop(rx);
    /// assert_eq!(tx.send(5), Err(5));
    /// ```
    pub fn send(self, value: T) -> Result<(), T> {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            if inner.receiver_closed {
                return Err(value);
            }
            inner.value = Some(value);
            inner.rx_waker.take()
        };
        // `self` drops here too; its `Drop` sees the value and stays quiet.
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
    /// use percore_runtime::sync::oneshot;
    ///
    /// let (tx, mut rx) = oneshot::channel::<()>();
    /// rx.close();
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.borrow().receiver_closed
    }

    /// Waits until the receiver is closed or dropped.
    ///
    /// Useful to abandon work whose result nobody wants any more.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes state.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::oneshot;
    ///
    /// # percore_runtime::run(async {
    /// let (mut tx, rx) = oneshot::channel::<()>();
    /// drop(rx);
    /// tx.closed().await;
    /// # }).unwrap();
    /// ```
    pub fn closed(&mut self) -> Closed<'_, T> {
        Closed { sender: self }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            inner.sender_alive = false;
            inner.rx_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
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

/// Future returned by [`Sender::closed`].
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::oneshot::{self, Closed};
///
/// # percore_runtime::run(async {
/// let (mut tx, rx) = oneshot::channel::<()>();
/// drop(rx);
/// let fut: Closed<'_, ()> = tx.closed();
/// fut.await;
/// # }).unwrap();
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Closed<'a, T> {
    sender: &'a mut Sender<T>,
}

impl<T> Future for Closed<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.sender.inner.borrow_mut();
        if inner.receiver_closed {
            return Poll::Ready(());
        }
        inner.tx_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> fmt::Debug for Closed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closed").finish_non_exhaustive()
    }
}

/// Receiving half of a [`channel`]; a future of the sent value.
///
/// Resolves to `Err(RecvError)` if the sender is dropped without sending.
///
/// # Cancel safety
///
/// Cancel safe: polling only takes the value when returning it, so a
/// receiver that is polled and then put aside can be awaited again later.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::oneshot;
///
/// # percore_runtime::run(async {
/// let (tx, rx) = oneshot::channel();
/// let send = async move { tx.send(7).expect("receiver is alive") };
/// let (got, ()) = futures_util::future::join(rx, send).await;
/// assert_eq!(got, Ok(7));
/// # }).unwrap();
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Receiver<T> {
    inner: Rc<RefCell<Inner<T>>>,
}

impl<T> Receiver<T> {
    /// Takes the value if it has arrived, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing was sent yet,
    /// [`TryRecvError::Closed`] if nothing will be (sender gone, or value
    /// already taken).
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::oneshot::{self, TryRecvError};
    ///
    /// let (tx, mut rx) = oneshot::channel();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).expect("receiver is alive");
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut inner = self.inner.borrow_mut();
        match inner.value.take() {
            Some(value) => Ok(value),
            None if inner.sender_alive => Err(TryRecvError::Empty),
            None => Err(TryRecvError::Closed),
        }
    }

    /// Refuses further sends; a value sent before this can still be received.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::oneshot;
    ///
    /// let (tx, mut rx) = oneshot::channel();
    /// rx.close();
    /// assert_eq!(tx.send(3), Err(3));
    /// ```
    pub fn close(&mut self) {
        let waker = {
            let mut inner = self.inner.borrow_mut();
            inner.receiver_closed = true;
            inner.tx_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        crate::coop::budgeted(cx, |cx| {
            let mut inner = self.inner.borrow_mut();
            if let Some(value) = inner.value.take() {
                return Poll::Ready(Ok(value));
            }
            if !inner.sender_alive {
                return Poll::Ready(Err(RecvError(())));
            }
            inner.rx_waker = Some(cx.waker().clone());
            Poll::Pending
        })
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("Receiver")
            .field("has_value", &inner.value.is_some())
            .field("sender_alive", &inner.sender_alive)
            .finish()
    }
}

/// Error from awaiting a [`Receiver`]: the sender was dropped without sending.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::oneshot;
///
/// # percore_runtime::run(async {
/// let (_, rx) = oneshot::channel::<()>();
/// assert_eq!(rx.await.unwrap_err().to_string(), "oneshot sender dropped");
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvError(());

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("oneshot sender dropped")
    }
}

impl Error for RecvError {}

/// Error from [`Receiver::try_recv`].
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::oneshot::{self, TryRecvError};
///
/// let (tx, mut rx) = oneshot::channel::<()>();
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No value yet, but the sender may still send one.
    Empty,
    /// No value will come: the sender is gone or the value was taken.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "oneshot channel empty",
            Self::Closed => "oneshot channel closed",
        })
    }
}

impl Error for TryRecvError {}

#[cfg(test)]
mod tests {
    use super::super::waiters::testing::{counting_waker, poll_once};
    use super::*;

    #[test]
    fn sender_drop_gives_recv_error_and_wakes() {
        let (tx, mut rx) = channel::<u8>();
        let (wakes, waker) = counting_waker();
        assert!(poll_once(&mut rx, &waker).is_pending());
        drop(tx);
        assert_eq!(wakes.count(), 1);
        assert_eq!(poll_once(&mut rx, &waker), Poll::Ready(Err(RecvError(()))));
    }

    #[test]
    fn send_wakes_pending_receiver() {
        let (tx, mut rx) = channel();
        let (wakes, waker) = counting_waker();
        assert!(poll_once(&mut rx, &waker).is_pending());
        tx.send(String::from("hi")).expect("receiver is alive");
        assert_eq!(wakes.count(), 1, "sender drop must not double-wake");
        assert_eq!(poll_once(&mut rx, &waker), Poll::Ready(Ok("hi".into())));
    }

    #[test]
    fn close_keeps_already_sent_value() {
        let (tx, mut rx) = channel();
        tx.send(9).expect("receiver is alive");
        rx.close();
        assert_eq!(rx.try_recv(), Ok(9));
    }

    #[test]
    fn closed_future_wakes_on_receiver_drop() {
        let (mut tx, rx) = channel::<()>();
        let (wakes, waker) = counting_waker();
        let mut closed = tx.closed();
        assert!(poll_once(&mut closed, &waker).is_pending());
        drop(rx);
        assert_eq!(wakes.count(), 1);
        assert!(poll_once(&mut closed, &waker).is_ready());
        assert!(tx.is_closed());
    }
}
