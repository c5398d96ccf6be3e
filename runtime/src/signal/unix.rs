//! Any Unix signal as a stream of deliveries: [`signal`] and [`SignalKind`]
//! (tokio's `tokio::signal::unix` names).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::core::Listeners;
use super::registry;

/// Which signal to listen for: a named constructor per common signal, or
/// [`SignalKind::from_raw`] for any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(i32);

impl SignalKind {
    /// Any signal by number (`libc::SIGUSR1`, a real-time signal…).
    pub const fn from_raw(signal: i32) -> SignalKind {
        SignalKind(signal)
    }

    /// The signal's number.
    pub const fn as_raw_value(&self) -> i32 {
        self.0
    }

    /// `SIGALRM`: a timer set by `alarm(2)` or `setitimer(2)` ran out.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }

    /// `SIGCHLD`: a child process stopped or ended.
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }

    /// `SIGHUP`: the terminal went away; daemons often reload on it.
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }

    /// `SIGINT`: Ctrl-C in a terminal.
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }

    /// `SIGIO`: I/O is possible on a descriptor set up for it.
    pub const fn io() -> SignalKind {
        SignalKind(libc::SIGIO)
    }

    /// `SIGPIPE`: a write to a pipe or socket with no reader.
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }

    /// `SIGQUIT`: Ctrl-\ in a terminal.
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }

    /// `SIGTERM`: the polite request to end (`kill`, systemd, Kubernetes).
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }

    /// `SIGUSR1`: meaning defined by the program.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }

    /// `SIGUSR2`: meaning defined by the program.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }

    /// `SIGWINCH`: the terminal changed size.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
}

impl From<i32> for SignalKind {
    fn from(signal: i32) -> SignalKind {
        SignalKind(signal)
    }
}

/// A listener for one signal: [`recv`](Signal::recv) completes once per
/// delivery (several deliveries between two calls count as one).
///
/// Made by [`signal`] on a core, and polled on that core (it is not `Send`).
#[derive(Debug)]
#[must_use = "a Signal does nothing unless its `recv` is awaited"]
pub struct Signal {
    signal: i32,
    /// Deliveries seen so far (the count when made, then at each `recv`).
    seen: u64,
    /// The core's listeners, and this one's id among them.
    listeners: Rc<Listeners>,
    id: u64,
}

/// Listens for `kind`: every delivery from now on completes a
/// [`Signal::recv`].
///
/// The first listener of a signal installs percore's handler for it, for the
/// rest of the process: its default action (ending the process, for most)
/// no longer happens (see the [module docs](super)).
///
/// # Errors
///
/// `InvalidInput` for a signal that cannot be listened for (`SIGKILL`,
/// `SIGSTOP`; the faults `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`; a number out
/// of range); `Other` when called outside a percore runtime; the error of
/// `sigaction(2)` or `eventfd(2)` otherwise.
///
/// # Examples
///
/// ```
/// use percore_runtime::signal::unix::{signal, SignalKind};
///
/// # percore_runtime::run(async {
/// let mut user1 = signal(SignalKind::user_defined1())?;
/// // SAFETY: sending a signal to ourselves; its handler is installed.
/// unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
/// user1.recv().await;
/// # std::io::Result::Ok(()) }).unwrap().unwrap();
/// ```
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    if !crate::executor::has_core() {
        return Err(io::Error::other(format!(
            "signal {}: listen from inside a percore runtime (percore::run, Runtime): its \
             deliveries wake tasks of the core that listens",
            kind.0
        )));
    }
    // The count before the handler: a delivery right after the install is
    // then reported by the first `recv` (read after, it would be swallowed
    // — neither the default action nor a wake-up: a SIGTERM at start-up
    // that neither kills nor drains).
    let seen = registry::delivered(kind.0);
    registry::install(kind.0)?;
    let listeners = Listeners::of_this_core()?;
    let id = listeners.new_id();
    Ok(Signal {
        signal: kind.0,
        seen,
        listeners,
        id,
    })
}

impl Signal {
    /// Waits for the next delivery. Always `Some(())`: a `Signal` never ends
    /// (tokio's shape, for `while let` loops).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a delivery a dropped `recv` did not report is reported
    /// by the next one.
    pub async fn recv(&mut self) -> Option<()> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Signal::recv) as a poll function.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        // Waiting first, then the count: a delivery after the check rings
        // the core's eventfd, whose task wakes us.
        self.listeners.wait(self.id, cx.waker());
        let delivered = registry::delivered(self.signal);
        if delivered == self.seen {
            return Poll::Pending;
        }
        self.seen = delivered;
        self.listeners.forget(self.id);
        Poll::Ready(Some(()))
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        self.listeners.forget(self.id);
    }
}

impl futures_core::Stream for Signal {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.get_mut().poll_recv(cx)
    }
}
