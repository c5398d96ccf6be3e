//! Tasks: spawning, join handles, panics.
//!
//! A task is one allocation (`raw.rs`) holding a header and the future, then its
//! output; wakers are `Send + Sync` and route a wake from another thread through
//! the owning core's remote queue.

pub(crate) mod arena;
mod join_set;
pub(crate) mod raw;
pub(crate) mod result_slot;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use join_set::{JoinSet, TryJoinError};

use crate::executor;
use raw::{Join, Output};

/// What to do with a panic in a task whose `JoinHandle` was dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnhandledPanic {
    /// Print it on stderr (with the task's spawn location) and go on.
    #[default]
    Report,
    /// Print it, then abort the process.
    Abort,
}

/// A panic nobody has looked at yet. If it is dropped unobserved (its task was
/// detached), it is reported as the core's [`UnhandledPanic`] policy says.
pub(crate) struct Panicked {
    payload: Option<Box<dyn Any + Send>>,
    location: &'static Location<'static>,
    core: usize,
    policy: UnhandledPanic,
}

impl Drop for Panicked {
    fn drop(&mut self) {
        let Some(payload) = self.payload.take() else {
            return;
        };
        eprintln!(
            "percore: a task spawned at {} on core {} panicked and nobody awaited it: {}",
            self.location,
            self.core,
            panic_message(&*payload)
        );
        if self.policy == UnhandledPanic::Abort {
            std::process::abort();
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

/// Why a task did not produce its output.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panic(Box<dyn Any + Send>),
}

impl JoinError {
    /// A cancelled-task error (also: a blocking job that could not be started).
    pub(crate) fn cancelled() -> JoinError {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    /// A panicked-task error carrying `payload`.
    pub(crate) fn panic(payload: Box<dyn Any + Send>) -> JoinError {
        JoinError {
            repr: Repr::Panic(payload),
        }
    }

    /// The task was aborted, or dropped when its runtime shut down.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload, to re-raise with [`std::panic::resume_unwind`].
    ///
    /// # Errors
    ///
    /// Gives the error back if the task was cancelled instead.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send>, JoinError> {
        match self.repr {
            Repr::Panic(payload) => Ok(payload),
            Repr::Cancelled => Err(self),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("task was cancelled"),
            Repr::Panic(payload) => write!(f, "task panicked: {}", panic_message(&**payload)),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Panic(payload) => write!(f, "JoinError::Panic({:?})", panic_message(&**payload)),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(err: JoinError) -> std::io::Error {
        std::io::Error::other(err.to_string())
    }
}

/// An owned permission to await a task's output.
///
/// Await it for `Result<T, JoinError>`; [`abort`](JoinHandle::abort) it to cancel
/// the task; drop it to let the task run on, detached.
///
/// # Examples
///
/// ```
/// percore_runtime::run(async {
///     let handle = percore_runtime::spawn(async { 6 * 7 });
///     assert_eq!(handle.await.unwrap(), 42);
/// })
/// .unwrap();
/// ```
#[must_use = "dropping a JoinHandle detaches the task; `let _ = spawn(..)` says so"]
pub struct JoinHandle<T> {
    join: Join,
    output: PhantomData<fn() -> T>,
    /// `!Send`: the task's state lives on its core, so does its handle.
    not_send: PhantomData<*const ()>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn from_join(join: Join) -> JoinHandle<T> {
        JoinHandle {
            join,
            output: PhantomData,
            not_send: PhantomData,
        }
    }

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Cancels the task. Its future is dropped right away if it is idle, else as
    /// soon as its current poll (or its turn in the run queue) ends; awaiting this
    /// handle then gives a cancelled [`JoinError`]. A task that already finished
    /// keeps its output.
    pub fn abort(&self) {
        self.join.abort();
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let output: Option<Output<T>> = match this.join.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(output) => output,
        };
        Poll::Ready(match output {
            Some(Ok(value)) => Ok(value),
            Some(Err(mut panicked)) => match panicked.payload.take() {
                Some(payload) => Err(JoinError {
                    repr: Repr::Panic(payload),
                }),
                None => Err(JoinError {
                    repr: Repr::Cancelled,
                }),
            },
            None => Err(JoinError {
                repr: Repr::Cancelled,
            }),
        })
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Spawns a task on the current core. The future need not be `Send`.
///
/// # Panics
///
/// Outside a percore runtime.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
///
/// percore_runtime::run(async {
///     let local = Rc::new(5); // not Send: fine, the task stays on this core
///     let handle = percore_runtime::spawn(async move { *local + 1 });
///     assert_eq!(handle.await.unwrap(), 6);
/// })
/// .unwrap();
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    spawn_at(future, Location::caller())
}

/// [`spawn`] with an explicit spawn site (for callers that are themselves
/// `#[track_caller]` or forward one).
pub(crate) fn spawn_at<F>(future: F, location: &'static Location<'static>) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    executor::with_core(|core| {
        // SAFETY: `F: 'static`, so nothing it borrows can die first.
        unsafe { core.spawn_unchecked(future, location) }
    })
}

/// Yields to the other tasks of this core once: every task ready to run now
/// is polled before this one continues.
///
/// On a core with a seed ([`Builder::seed`](crate::Builder::seed)), where
/// ready tasks are polled in a shuffled order, that holds too: the task
/// waits until no other task is ready (or, if the core never runs out of
/// ready tasks, for at most 1,024 batches of polls).
///
/// # Examples
///
/// ```
/// percore_runtime::run(async {
///     percore_runtime::yield_now().await;
/// })
/// .unwrap();
/// ```
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            crate::executor::yield_task(cx.waker());
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_error_says_what_happened() {
        let cancelled = JoinError {
            repr: Repr::Cancelled,
        };
        assert!(cancelled.is_cancelled() && !cancelled.is_panic());
        assert_eq!(cancelled.to_string(), "task was cancelled");
        let panicked = JoinError {
            repr: Repr::Panic(Box::new("boom")),
        };
        assert!(panicked.is_panic());
        assert_eq!(panicked.to_string(), "task panicked: boom");
        assert!(panicked.try_into_panic().is_ok());
    }
}
