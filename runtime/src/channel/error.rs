//! Errors of the cross-core channels, shared by [`spsc`](super::spsc) and
//! [`mpsc`](super::mpsc). Each gives the unsent value back.

use std::error::Error;
use std::fmt;

/// The receiver is closed or dropped; the value that could not be sent.
///
/// # Examples
///
/// ```
/// use percore_runtime::channel::{spsc, SendError};
///
/// let (mut tx, rx) = spsc::channel(1);
/// drop(rx);
/// let SendError(value) = percore_runtime::run(tx.send(7)).unwrap().unwrap_err();
/// assert_eq!(value, 7);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// Why [`try_send`](super::spsc::Sender::try_send) did not send; the value
/// is given back either way.
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
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel holds `capacity` values; `send` would wait.
    Full(T),
    /// The receiver is closed or dropped; nothing will be received again.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(value) | TrySendError::Closed(value) => value,
        }
    }
}

/// Why [`try_recv`](super::spsc::Receiver::try_recv) returned no value.
///
/// # Examples
///
/// ```
/// use percore_runtime::channel::{spsc, TryRecvError};
///
/// let (tx, mut rx) = spsc::channel::<u8>(1);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued now, but a sender may still send.
    Empty,
    /// Nothing is queued and nothing will be: every sender is gone, or the
    /// receiver was closed.
    Disconnected,
}

// Like std's channel errors: `Debug` without `T: Debug`, so `unwrap` works on
// any payload.
impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full channel"),
            TrySendError::Closed(_) => f.write_str("sending on a closed channel"),
        }
    }
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty channel"),
            TryRecvError::Disconnected => f.write_str("receiving on a disconnected channel"),
        }
    }
}

impl<T> Error for SendError<T> {}
impl<T> Error for TrySendError<T> {}
impl Error for TryRecvError {}
