//! Tasks: spawning, join handles, panics.
//!
//! A task is one allocation (the `async-task` cell) holding the future, its
//! output and a header; wakers are `Send + Sync` and route a wake from another
//! thread through the owning core's remote queue.

mod join_set;

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_task::{Builder, FallibleTask, Runnable, ScheduleInfo, WithInfo};

pub use join_set::{JoinSet, TryJoinError};

use crate::executor::{self, Shared};

/// What a task carries besides its future: where it belongs and where it came from.
#[derive(Debug)]
pub(crate) struct TaskMeta {
    pub(crate) shared: Arc<Shared>,
    pub(crate) location: &'static Location<'static>,
}

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

type Output<T> = Result<T, Box<Panicked>>;

/// Why a task did not produce its output.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panic(Box<dyn Any + Send>),
}

impl JoinError {
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
    state: Cell<Handle<T>>,
}

type Cancelling<T> = Pin<Box<dyn Future<Output = Option<Output<T>>>>>;

#[derive(Default)]
enum Handle<T> {
    Running(FallibleTask<Output<T>, TaskMeta>),
    /// Aborted: waits until the task's future is really dropped (or hands back
    /// the output of a task that finished first).
    Cancelling(Cancelling<T>),
    #[default]
    Joined,
}

impl<T> JoinHandle<T> {
    pub(crate) fn from_task(task: FallibleTask<Output<T>, TaskMeta>) -> JoinHandle<T> {
        JoinHandle {
            state: Cell::new(Handle::Running(task)),
        }
    }

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        let state = self.state.take();
        let finished = match &state {
            Handle::Running(task) => task.is_finished(),
            Handle::Cancelling(_) | Handle::Joined => true,
        };
        self.state.set(state);
        finished
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Cancels the task: its future is dropped at the next chance, and awaiting
    /// this handle then gives a cancelled [`JoinError`]. A task that already
    /// finished keeps its output.
    pub fn abort(&self) {
        let state = self.state.take();
        self.state.set(match state {
            Handle::Running(task) => Handle::Cancelling(Box::pin(task.cancel())),
            other => other,
        });
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let state = self.get_mut().state.get_mut();
        let polled = match state {
            Handle::Running(task) => Pin::new(task).poll(cx),
            Handle::Cancelling(cancel) => cancel.as_mut().poll(cx),
            Handle::Joined => {
                return Poll::Ready(Err(JoinError {
                    repr: Repr::Cancelled,
                }))
            }
        };
        let Poll::Ready(output) = polled else {
            return Poll::Pending;
        };
        *state = Handle::Joined;
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

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Handle::Running(task) = self.state.take() {
            task.detach();
        }
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
    let location = Location::caller();
    executor::with_core(|core| {
        // SAFETY: `F: 'static`, so nothing it borrows can die first.
        unsafe { core.spawn_unchecked(future, location) }
    })
}

/// The future a task runs: the user's future, with panics caught, registered in
/// its core's registry while it waits (so shutdown can reach it).
///
/// Kept small on purpose — it is part of every task's allocation: the spawn site
/// and core are read from the task's metadata, which the cell stores anyway.
pub(crate) struct TaskFuture<'a, F> {
    future: F,
    meta: &'a TaskMeta,
    /// The task's key in its core's registry, or `UNREGISTERED`.
    key: usize,
}

const UNREGISTERED: usize = usize::MAX;

impl<F: Future> Future for TaskFuture<'_, F> {
    type Output = Output<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of `self`,
        // and `TaskFuture` has no `Unpin` impl of its own nor a `Drop` that moves it.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this` itself stays pinned.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        let result = panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx)));
        let output = match result {
            Ok(Poll::Pending) => {
                // Only a task that waits needs to be found at shutdown; one that
                // finishes in its first poll never touches the registry.
                if this.key == UNREGISTERED {
                    this.key = executor::register(cx.waker());
                }
                return Poll::Pending;
            }
            Ok(Poll::Ready(value)) => Ok(value),
            Err(payload) => Err(Box::new(Panicked {
                payload: Some(payload),
                location: this.meta.location,
                core: this.meta.shared.id,
                policy: executor::unhandled_panic_policy(),
            })),
        };
        this.deregister();
        Poll::Ready(output)
    }
}

impl<F> TaskFuture<'_, F> {
    fn deregister(&mut self) {
        if self.key != UNREGISTERED {
            executor::deregister(std::mem::replace(&mut self.key, UNREGISTERED));
        }
    }
}

impl<F> Drop for TaskFuture<'_, F> {
    fn drop(&mut self) {
        self.deregister();
    }
}

/// Builds the task cell for `future`, scheduled through `meta.shared`'s core.
///
/// # Safety
///
/// - The returned runnable and waker must only be *run* on the core of
///   `meta.shared` (the schedule function guarantees that for wakes).
/// - If `F` is not `'static`, everything it borrows must outlive the task's
///   future, i.e. the future must be completed or dropped first.
pub(crate) unsafe fn build<F: Future>(
    future: F,
    meta: TaskMeta,
) -> (
    Runnable<TaskMeta>,
    FallibleTask<Output<F::Output>, TaskMeta>,
) {
    // SAFETY: the schedule function is `Send + Sync` (it only touches the thread
    // local and the `Arc<Shared>` in the metadata), so wakers may cross threads;
    // the future is only polled on its core (caller's obligation); lifetimes are
    // the caller's obligation too. The future borrows the metadata, which the
    // cell drops only after the future.
    let (runnable, task) = unsafe {
        Builder::new().metadata(meta).spawn_unchecked(
            move |meta| TaskFuture {
                future,
                meta,
                key: UNREGISTERED,
            },
            WithInfo(schedule),
        )
    };
    (runnable, task.fallible())
}

fn schedule(runnable: Runnable<TaskMeta>, info: ScheduleInfo) {
    executor::schedule(runnable, info.woken_while_running);
}

/// Yields to the other tasks of this core once.
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
            cx.waker().wake_by_ref();
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
