//! `Incoming`: the stream of accepted connections, on multishot accept.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use percore_runtime::time::{sleep, Sleep};
use percore_runtime::MultiOp;

use crate::op::{AcceptMulti, SharedFd};
use crate::socket::Socket;

/// The first pause after an accept error that more accepts would only repeat.
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
/// The longest pause between accepts while fds or memory are exhausted.
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// A stream of accepted connections of a listener, on one multishot accept.
///
/// Made by [`TcpListener::incoming`](crate::TcpListener::incoming) or
/// [`UnixListener::incoming`](crate::UnixListener::incoming). One SQE serves
/// every connection until the kernel ends the multishot (then it is re-armed).
/// Accept errors are yielded and the stream goes on, but an error ends the
/// kernel's multishot, and the stream waits before re-arming it: 1 ms, doubling
/// up to 100 ms while errors repeat, back to 1 ms after a success. `EMFILE`,
/// `ENFILE`, `ENOBUFS` and `ENOMEM` leave the connection in the backlog, so an
/// immediate retry would fail again and spin the core at 100%; other errors
/// (a listener that was shut down) would too. It never ends by itself.
///
/// # Cancel safety
///
/// Awaiting `next()` and dropping that future loses nothing: connections stay
/// in the stream. Dropping the stream cancels the accept; a connection the
/// kernel accepted meanwhile is closed, never leaked.
#[must_use = "streams do nothing unless polled"]
pub struct Incoming<T> {
    fd: SharedFd,
    state: State,
    backoff: Duration,
    /// Makes the public stream type from an accepted socket.
    make: fn(Socket) -> T,
}

enum State {
    /// Nothing submitted: arm on the next poll.
    Idle,
    Armed(MultiOp<AcceptMulti>),
    /// Waiting out a resource shortage before re-arming.
    Backoff(Sleep),
}

impl<T> Incoming<T> {
    pub(crate) fn new(fd: SharedFd, make: fn(Socket) -> T) -> Incoming<T> {
        Incoming {
            fd,
            state: State::Idle,
            backoff: FIRST_BACKOFF,
            make,
        }
    }

    /// Handles one accept result: a connection, or an error after which the
    /// stream waits before re-arming.
    fn on_accept(&mut self, res: io::Result<std::os::fd::OwnedFd>) -> io::Result<Socket> {
        match res {
            Ok(fd) => {
                self.backoff = FIRST_BACKOFF;
                Ok(Socket::from_fd(fd))
            }
            Err(err) => {
                percore_runtime::__event!(
                    WARN,
                    error = %err,
                    backoff_ms = self.backoff.as_millis() as u64,
                    "accept failed; backing off before accepting again"
                );
                // The error CQE ended the multishot; dropping it frees its slot.
                self.state = State::Backoff(sleep(self.backoff));
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                Err(err)
            }
        }
    }
}

impl<T> Stream for Incoming<T> {
    type Item = io::Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<T>>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Idle => {
                    this.state = State::Armed(MultiOp::new(AcceptMulti::new(this.fd.clone())));
                }
                State::Armed(accept) => match Pin::new(accept).poll_next(cx) {
                    Poll::Ready(Some(res)) => {
                        return Poll::Ready(Some(this.on_accept(res).map(this.make)));
                    }
                    // The kernel ended the multishot (after an error, or on its
                    // own): arm a new one.
                    Poll::Ready(None) => this.state = State::Idle,
                    Poll::Pending => return Poll::Pending,
                },
                State::Backoff(pause) => match Pin::new(pause).poll(cx) {
                    Poll::Ready(()) => this.state = State::Idle,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }
}

impl<T> fmt::Debug for Incoming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle => "idle",
            State::Armed(_) => "armed",
            State::Backoff(_) => "backing off",
        };
        f.debug_struct("Incoming")
            .field("state", &state)
            .field("backoff", &self.backoff)
            .finish()
    }
}
