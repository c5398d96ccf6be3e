//! Spawning on another core: [`spawn_on`], [`Runtime::spawn_on`](crate::Runtime::spawn_on)
//! and the `Send` handle they return, [`RemoteJoinHandle`].
//!
//! The closure crosses threads as a `Remote::Job`; on the target core it becomes
//! one local task that builds the future (which may be `!Send`), polls it under
//! `catch_unwind`, and puts the output — or the panic — into a `ResultSlot` shared
//! with the handle. `abort` sets a flag in the slot and wakes that task through
//! its own waker (which routes the wake to its core), so the future is dropped
//! on its core. A task that is dropped instead (its core shut down, or the job
//! never ran) fills the slot with a cancelled [`JoinError`] from
//! `Completer::drop`, so a handle never waits forever.

use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use crate::executor::{self, Remote, Shared};
use crate::task::result_slot::{Completer, ResultSlot};
use crate::task::{self, JoinError};

/// Spawns a task on core `core` of the runtime this code runs on, and returns a
/// `Send` handle to its output.
///
/// `f` is sent to that core and called there; the future it returns need not be
/// `Send` (it never leaves the core), only `f` and the output cross threads. If
/// `core` is the current core, the task is spawned here directly.
///
/// On a single-core runtime started with [`run`](crate::run) (or
/// [`Builder::block_on`](crate::Builder::block_on)), only core 0 exists.
///
/// # Errors
///
/// - [`InvalidInput`](io::ErrorKind::InvalidInput): `core` is out of range (the
///   message names it and the number of cores);
/// - the target core has stopped.
///
/// # Panics
///
/// Outside a percore runtime.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use percore_runtime::Runtime;
///
/// let runtime = Runtime::builder().cores(2).build().unwrap();
/// let (here, there) = runtime
///     .run_on(0, || async {
///         let handle = percore_runtime::spawn_on(1, || {
///             let local = Rc::new(1); // built on core 1: need not be Send
///             async move { percore_runtime::current_core() * *local }
///         })
///         .unwrap();
///         (percore_runtime::current_core(), handle.await.unwrap())
///     })
///     .unwrap();
/// assert_eq!((here, there), (0, 1));
///
/// // Core 2 does not exist.
/// let err = runtime
///     .run_on(0, || async { percore_runtime::spawn_on(2, || async {}).unwrap_err() })
///     .unwrap();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// ```
#[track_caller]
pub fn spawn_on<F, Fut>(core: usize, f: F) -> io::Result<RemoteJoinHandle<Fut::Output>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    let location = Location::caller();
    let target = executor::with_core(|this| match this.peers.get() {
        Some(peers) => peers.get(core).cloned().ok_or(peers.len()),
        None if core == this.shared.id => Ok(this.shared.clone()),
        None => Err(1),
    });
    match target {
        Ok(target) => spawn_to(&target, f, location),
        Err(cores) => Err(no_such_core(core, cores)),
    }
}

pub(crate) fn no_such_core(core: usize, cores: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("core {core} does not exist; this runtime has {cores}"),
    )
}

/// Spawns `f()` on the core of `target`: directly if that is this thread's core,
/// else through its remote queue.
pub(crate) fn spawn_to<F, Fut>(
    target: &Shared,
    f: F,
    location: &'static Location<'static>,
) -> io::Result<RemoteJoinHandle<Fut::Output>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    let (slot, completer) = Slot::new(Abort {
        aborted: AtomicBool::new(false),
        waker: AtomicWaker::new(),
    });
    let handle = RemoteJoinHandle { slot };
    if executor::is_owner(target) {
        drop(task::spawn_at(run(f, completer), location));
        return Ok(handle);
    }
    let job = Remote::Job(Box::new(move || {
        drop(task::spawn_at(run(f, completer), location));
    }));
    if let Err(job) = target.push(job) {
        // Fills the slot of a handle nobody will see.
        drop(job);
        return Err(io::Error::other(format!("core {} has stopped", target.id)));
    }
    Ok(handle)
}

/// The task on the target core: builds the future on its first poll, polls it,
/// and completes the slot. Everything that may panic (`f`, each poll, the
/// future's drop on abort) is caught here, so a panic reaches the handle.
async fn run<F, Fut>(f: F, completer: Completer<Fut::Output, Abort>)
where
    F: FnOnce() -> Fut,
    Fut: Future,
{
    let mut f = Some(f);
    let mut future = pin!(None::<Fut>);
    let mut completer = Running(Some(completer));
    std::future::poll_fn(move |cx| {
        let Some(done) = completer.0.as_ref() else {
            return Poll::Ready(());
        };
        let slot = done.slot();
        let polled = panic::catch_unwind(AssertUnwindSafe(|| {
            if slot.extra.aborted.load(Ordering::Acquire) {
                future.set(None);
                return Some(Err(JoinError::cancelled()));
            }
            if let Some(f) = f.take() {
                future.set(Some(f()));
            }
            let Some(running) = future.as_mut().as_pin_mut() else {
                return Some(Err(JoinError::cancelled()));
            };
            match running.poll(cx) {
                Poll::Ready(output) => {
                    future.set(None);
                    Some(Ok(output))
                }
                Poll::Pending => {
                    // Register for `abort`, then look at the flag again: an
                    // abort in between either sees this waker or left the flag.
                    slot.extra.waker.register(cx.waker());
                    if slot.extra.aborted.load(Ordering::Acquire) {
                        future.set(None);
                        return Some(Err(JoinError::cancelled()));
                    }
                    None
                }
            }
        }));
        let result = match polled {
            Ok(None) => return Poll::Pending,
            Ok(Some(result)) => result,
            Err(payload) => {
                // The future is dropped on its core, as after any panic.
                // A second panic from its `Drop` is dropped with its payload.
                let _ = panic::catch_unwind(AssertUnwindSafe(|| future.set(None)));
                if Arc::strong_count(slot) == 1 {
                    // Nobody holds the handle: let the task machinery report
                    // the panic as the core's `UnhandledPanic` policy says.
                    completer.0 = None;
                    panic::resume_unwind(payload);
                }
                Err(JoinError::panic(payload))
            }
        };
        if let Some(done) = completer.0.take() {
            // Drop our own waker here, on the task's core, so no waker of a
            // finished task lingers in the slot (and keeps the task alive).
            drop(done.slot().extra.waker.take());
            done.complete(result);
        }
        Poll::Ready(())
    })
    .await;
}

/// The completer of a `run` task. If the task is dropped unfinished (its core
/// shut down), this drops the task's own waker from the slot first, on the
/// task's core: else a handle that outlives the core keeps that waker, whose
/// drop can no longer reach the core, and the task cell leaks (with the core's
/// `Shared`, which leaks while any task is alive).
struct Running<T>(Option<Completer<T, Abort>>);

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        if let Some(done) = &self.0 {
            drop(done.slot().extra.waker.take());
        }
    }
}

/// What the target core's task and a [`RemoteJoinHandle`] share besides the
/// result.
struct Abort {
    /// Set by [`RemoteJoinHandle::abort`].
    aborted: AtomicBool,
    /// The task on the target core, while its future waits.
    waker: AtomicWaker,
}

type Slot<T> = ResultSlot<T, Abort>;

/// A `Send` handle to a task spawned on another core, from [`spawn_on`] or
/// [`Runtime::spawn_on`](crate::Runtime::spawn_on).
///
/// Await it for `Result<T, JoinError>`, on any core or thread, inside or outside
/// a runtime (any executor). It resolves to a [`JoinError`] that
/// [`is_panic`](JoinError::is_panic) if the task panicked, or
/// [`is_cancelled`](JoinError::is_cancelled) if it was aborted or its core
/// stopped first. Dropping it detaches the task, which runs on; a panic in a
/// detached task is reported as its core's
/// [`UnhandledPanic`](crate::UnhandledPanic) policy says.
///
/// # Examples
///
/// ```
/// use percore_runtime::Runtime;
///
/// let runtime = Runtime::builder().cores(2).build().unwrap();
/// let handle = runtime.spawn_on(1, || async { percore_runtime::current_core() }).unwrap();
/// // Awaited on the main thread, outside any runtime.
/// assert_eq!(futures_executor::block_on(handle).unwrap(), 1);
/// ```
#[must_use = "dropping a RemoteJoinHandle detaches the task; `let _ = spawn_on(..)` says so"]
pub struct RemoteJoinHandle<T> {
    slot: Arc<Slot<T>>,
}

impl<T> RemoteJoinHandle<T> {
    /// Whether the task has finished (completed, panicked or been cancelled), so
    /// that awaiting the handle is ready at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let runtime = percore_runtime::Runtime::builder().cores(2).build().unwrap();
    /// let handle = runtime.spawn_on(1, || async { 7 }).unwrap();
    /// while !handle.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(futures_executor::block_on(handle).unwrap(), 7);
    /// ```
    pub fn is_finished(&self) -> bool {
        self.slot.is_finished()
    }

    /// Cancels the task, best effort: its core is asked to drop the future (on
    /// that core) as soon as it gets to it; awaiting the handle then gives a
    /// cancelled [`JoinError`]. A task that already finished keeps its output.
    /// Callable from any thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let runtime = percore_runtime::Runtime::builder().cores(2).build().unwrap();
    /// let handle = runtime
    ///     .spawn_on(1, || percore_runtime::time::sleep(Duration::from_secs(3600)))
    ///     .unwrap();
    /// handle.abort();
    /// assert!(futures_executor::block_on(handle).unwrap_err().is_cancelled());
    /// ```
    pub fn abort(&self) {
        self.slot.extra.aborted.store(true, Ordering::Release);
        self.slot.extra.waker.wake();
    }
}

impl<T> Future for RemoteJoinHandle<T> {
    type Output = Result<T, JoinError>;

    /// # Panics
    ///
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.slot.poll_result(cx, "RemoteJoinHandle")
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
