//! Channel state shared by the bounded and unbounded `mpsc` flavours.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::waiters::{WaiterKey, WaiterList, WakeList};

/// State shared by every handle of one channel, bounded or not.
pub(super) struct Chan<T> {
    queue: VecDeque<T>,
    /// `None` for unbounded channels.
    capacity: Option<usize>,
    /// Slots promised to woken senders that have not pushed yet; they count
    /// as taken so nobody else can steal them.
    reserved: usize,
    senders: usize,
    /// Set by the receiver's `close` or drop.
    closed: bool,
    rx_waker: Option<Waker>,
    /// Senders waiting for a slot; the data is "a slot was reserved for it".
    send_waiters: WaiterList<bool>,
}

pub(super) type Shared<T> = Rc<RefCell<Chan<T>>>;

impl<T> Chan<T> {
    pub(super) fn open(capacity: Option<usize>) -> (Tx<T>, Rx<T>) {
        let chan = Rc::new(RefCell::new(Chan {
            queue: VecDeque::new(),
            capacity,
            reserved: 0,
            senders: 1,
            closed: false,
            rx_waker: None,
            send_waiters: WaiterList::new(),
        }));
        (Tx { chan: chan.clone() }, Rx { chan })
    }

    fn has_room(&self) -> bool {
        self.capacity
            .is_none_or(|cap| self.queue.len() + self.reserved < cap)
    }

    /// Queues `value` regardless of capacity; the caller checked it.
    pub(super) fn push(&mut self, value: T) -> Result<Option<Waker>, T> {
        if self.closed {
            return Err(value);
        }
        self.queue.push_back(value);
        Ok(self.rx_waker.take())
    }

    /// Queues `value` if a slot is free and no earlier sender is waiting.
    pub(super) fn try_push(&mut self, value: T) -> Result<Option<Waker>, TrySendError<T>> {
        if self.closed {
            Err(TrySendError::Closed(value))
        } else if !self.send_waiters.is_empty() || !self.has_room() {
            Err(TrySendError::Full(value))
        } else {
            self.push(value).map_err(TrySendError::Closed)
        }
    }

    /// Queues a sender that found no room.
    pub(super) fn wait_for_slot(&mut self, waker: &Waker) -> WaiterKey {
        self.send_waiters.push_back(false, waker)
    }

    /// Returns `true`, freeing the waiter and its reservation, once a
    /// waiting sender may push: it was given a slot or the channel closed.
    pub(super) fn poll_slot(&mut self, key: WaiterKey, waker: &Waker) -> bool {
        if !self.send_waiters.is_notified(key) {
            self.send_waiters.update_waker(key, waker);
            return false;
        }
        if self.send_waiters.remove(key).data {
            self.reserved -= 1;
        }
        true
    }

    /// Removes a sender that gave up waiting, passing its slot on.
    pub(super) fn cancel_wait(&mut self, key: WaiterKey, wakes: &mut WakeList) {
        if self.send_waiters.remove(key).data {
            self.reserved -= 1;
            self.grant_slots(wakes);
        }
    }

    /// Hands free slots to waiting senders, first come first served.
    fn grant_slots(&mut self, wakes: &mut WakeList) {
        while self.has_room() {
            let Some(reserved) = self.send_waiters.notify_front(wakes) else {
                break;
            };
            *reserved = true;
            self.reserved += 1;
        }
    }

    fn pop(&mut self, wakes: &mut WakeList) -> Option<T> {
        let value = self.queue.pop_front()?;
        self.grant_slots(wakes);
        Some(value)
    }

    /// Whether no value is queued and none can arrive any more.
    fn is_finished(&self) -> bool {
        self.queue.is_empty() && (self.closed || self.senders == 0)
    }
}

/// Sender bookkeeping shared by both sender types.
pub(super) struct Tx<T> {
    pub(super) chan: Shared<T>,
}

impl<T> Tx<T> {
    pub(super) fn is_closed(&self) -> bool {
        self.chan.borrow().closed
    }
}

impl<T> Clone for Tx<T> {
    fn clone(&self) -> Self {
        self.chan.borrow_mut().senders += 1;
        Self {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Tx<T> {
    fn drop(&mut self) {
        let waker = {
            let mut chan = self.chan.borrow_mut();
            chan.senders -= 1;
            // The receiver must learn that the channel has ended.
            if chan.senders == 0 {
                chan.rx_waker.take()
            } else {
                None
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Receiver logic shared by both receiver types.
pub(super) struct Rx<T> {
    chan: Shared<T>,
}

impl<T> Rx<T> {
    pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        crate::coop::budgeted(cx, |cx| self.poll_recv_unbudgeted(cx))
    }

    fn poll_recv_unbudgeted(&mut self, cx: &Context<'_>) -> Poll<Option<T>> {
        let mut wakes = WakeList::new();
        let poll = {
            let mut chan = self.chan.borrow_mut();
            match chan.pop(&mut wakes) {
                Some(value) => Poll::Ready(Some(value)),
                None if chan.is_finished() => Poll::Ready(None),
                None => {
                    chan.rx_waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        };
        wakes.wake_all();
        poll
    }

    pub(super) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut wakes = WakeList::new();
        let result = {
            let mut chan = self.chan.borrow_mut();
            match chan.pop(&mut wakes) {
                Some(value) => Ok(value),
                None if chan.is_finished() => Err(TryRecvError::Disconnected),
                None => Err(TryRecvError::Empty),
            }
        };
        wakes.wake_all();
        result
    }

    pub(super) fn close(&mut self) {
        let mut wakes = WakeList::new();
        {
            let mut chan = self.chan.borrow_mut();
            chan.closed = true;
            // Woken senders see `closed` and fail; the flag stays as it was
            // so those holding a reserved slot give it back.
            chan.send_waiters.notify_all(&mut wakes, |_| ());
        }
        wakes.wake_all();
    }

    pub(super) fn len(&self) -> usize {
        self.chan.borrow().queue.len()
    }
}

impl<T> Drop for Rx<T> {
    fn drop(&mut self) {
        self.close();
        // Values are dropped outside the borrow: their destructors may use
        // a sender of this very channel.
        let queued = mem::take(&mut self.chan.borrow_mut().queue);
        drop(queued);
    }
}

/// Future returned by [`Receiver::recv`](super::mpsc::Receiver::recv) and
/// [`UnboundedReceiver::recv`](super::mpsc::UnboundedReceiver::recv).
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::mpsc::{self, Recv};
///
/// # percore_runtime::run(async {
/// let (tx, mut rx) = mpsc::channel(1);
/// tx.try_send(3).expect("room");
/// let fut: Recv<'_, i32> = rx.recv();
/// assert_eq!(fut.await, Some(3));
/// # }).unwrap();
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Recv<'a, T> {
    pub(super) rx: &'a mut Rx<T>,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").finish_non_exhaustive()
    }
}

/// Error from sending on a channel whose receiver is closed or dropped;
/// holds the value that could not be sent.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::mpsc::{self, SendError};
///
/// let (tx, rx) = mpsc::unbounded_channel();
/// drop(rx);
/// let SendError(value) = tx.send("lost").unwrap_err();
/// assert_eq!(value, "lost");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SendError").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel closed")
    }
}

impl<T> Error for SendError<T> {}

/// Error from [`Sender::try_send`](super::mpsc::Sender::try_send); gives the
/// value back.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::mpsc::{self, TrySendError};
///
/// let (tx, mut rx) = mpsc::channel(1);
/// tx.try_send(1).expect("room");
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// rx.close();
/// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full, or other senders are waiting for room first.
    Full(T),
    /// The receiver is closed or dropped.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// Takes back the value that was not sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::sync::mpsc::TrySendError;
    ///
    /// assert_eq!(TrySendError::Full(4).into_inner(), 4);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(value) | Self::Closed(value) => value,
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Full(_) => "Full",
            Self::Closed(_) => "Closed",
        };
        f.debug_tuple(name).finish_non_exhaustive()
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full(_) => "channel full",
            Self::Closed(_) => "channel closed",
        })
    }
}

impl<T> Error for TrySendError<T> {}

/// Error from `try_recv` on an `mpsc` receiver.
///
/// # Examples
///
/// ```
/// use percore_runtime::sync::mpsc::{self, TryRecvError};
///
/// let (tx, mut rx) = mpsc::unbounded_channel::<()>();
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing queued, but more may come.
    Empty,
    /// Nothing queued, and nothing more can come: the channel is closed or
    /// every sender is gone.
    Disconnected,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "channel empty",
            Self::Disconnected => "channel disconnected",
        })
    }
}

impl Error for TryRecvError {}
