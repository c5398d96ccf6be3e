//! The blocking pool: run blocking code on plain threads, await it from a core.
//!
//! A core must never block: a `read(2)` on a slow disk, a DNS lookup through
//! libc, a compression pass or a call into a synchronous library stops every task
//! on that core. [`spawn_blocking`] hands such a closure to a pool of ordinary,
//! unpinned threads (named `percore-blocking-N`) and gives back a
//! [`BlockingHandle`], a future that resolves to the closure's result. The core
//! keeps running its other tasks meanwhile; when the job finishes, the pool
//! thread wakes the awaiting task through its waker, which routes the wake to the
//! task's core by itself.
//!
//! [`spawn_blocking`] uses one process-wide pool, created on first use, of at
//! most **64** threads, each of which exits after **10 s** without work. A
//! [`BlockingPool`] of your own sets both numbers.
//!
//! Threads are started on demand, one per job while none is idle and the pool
//! is below its maximum; beyond that, jobs wait in a FIFO queue. Nothing here
//! needs a runtime: both spawning and awaiting work from any thread and any
//! executor.
//!
//! ```
//! let len = percore_runtime::run(async {
//!     let handle = percore_runtime::spawn_blocking(|| {
//!         // Stands in for a blocking call.
//!         std::thread::sleep(std::time::Duration::from_millis(5));
//!         "hello".len()
//!     });
//!     handle.await.unwrap()
//! })
//! .unwrap();
//! assert_eq!(len, 5);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use crate::task::result_slot::ResultSlot;
use crate::task::JoinError;

/// How many threads the default pool of [`spawn_blocking`] starts at most: 64.
const DEFAULT_MAX_THREADS: usize = 64;

/// How long a thread of the default pool of [`spawn_blocking`] waits for work
/// before it exits: 10 s.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `f` on the process-wide blocking pool and returns a future for its result.
///
/// `f` runs on a plain thread, never on a core, so it may block as long as it
/// likes. The pool is created on first use and starts at most **64** threads,
/// each of which exits after **10 s** idle; further jobs queue, first in, first
/// out.
/// It lives until the process exits.
///
/// Callable from anywhere — a task on a core, a plain thread, a blocking job.
/// Dropping the returned handle detaches the job: it still runs, and its result
/// is dropped where the job finished.
///
/// # Errors
///
/// The handle resolves to a [`JoinError`]:
/// - [`is_panic`](JoinError::is_panic) if `f` panicked (the payload is in it);
/// - [`is_cancelled`](JoinError::is_cancelled) if the pool could not start any
///   thread to run it (the OS refused, e.g. `EAGAIN` at a thread limit; one line
///   is printed on stderr).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// percore_runtime::run(async {
///     let sum = percore_runtime::spawn_blocking(|| {
///         std::thread::sleep(Duration::from_millis(10));
///         (1..=10u32).sum::<u32>()
///     })
///     .await
///     .unwrap();
///     assert_eq!(sum, 55);
///
///     let err = percore_runtime::spawn_blocking(|| panic!("boom")).await.unwrap_err();
///     assert!(err.is_panic());
/// })
/// .unwrap();
/// ```
pub fn spawn_blocking<F, R>(f: F) -> BlockingHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    static DEFAULT: OnceLock<BlockingPool> = OnceLock::new();
    DEFAULT
        .get_or_init(|| BlockingPool::new(DEFAULT_MAX_THREADS, DEFAULT_IDLE_TIMEOUT))
        .spawn(f)
}

/// A pool of plain threads for blocking jobs.
///
/// Threads are started on demand, up to `max_threads`, named
/// `percore-blocking-N` (N counts the threads this pool started); a thread idle
/// for `idle_timeout` exits. When every thread is busy, jobs queue first in,
/// first out.
///
/// Dropping the pool stops nothing that was already spawned: jobs running or
/// queued still run to completion in the background, and each thread exits once
/// the queue is empty (idle threads exit at once). The drop itself does not
/// wait. (No job can be spawned after the drop, since [`spawn`](Self::spawn)
/// borrows the pool.)
///
/// Most code wants the process-wide pool of [`spawn_blocking`] instead.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use percore_runtime::BlockingPool;
///
/// let pool = BlockingPool::new(2, Duration::from_secs(1));
/// percore_runtime::run(async {
///     let a = pool.spawn(|| 20);
///     let b = pool.spawn(|| 22);
///     assert_eq!(a.await.unwrap() + b.await.unwrap(), 42);
/// })
/// .unwrap();
/// assert!(pool.threads() <= 2);
/// ```
pub struct BlockingPool {
    inner: Arc<Inner>,
}

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Inner {
    state: Mutex<State>,
    /// Idle threads wait here for a job or for the pool to be dropped.
    work: Condvar,
    max_threads: usize,
    idle_timeout: Duration,
    /// Only ever `Some` in this module's tests, to make thread creation fail.
    stack_size: Option<usize>,
}

struct State {
    queue: VecDeque<Job>,
    /// Threads started and not yet exited (or reserved by a `spawn` that is
    /// starting one).
    threads: usize,
    /// Threads waiting for work that no `spawn` has notified yet.
    idle: usize,
    /// Notifications sent to idle threads and not yet taken by one. Each
    /// `spawn` that wakes an idle thread moves one count from `idle` to here,
    /// so two quick spawns wake two threads rather than one thread twice.
    notified: usize,
    /// The `BlockingPool` was dropped: threads exit once the queue is empty.
    shutdown: bool,
    /// Names threads: `percore-blocking-{next_id}`.
    next_id: usize,
}

impl Inner {
    /// Locks the state. Nothing panics while holding the lock, but a poisoned
    /// lock is taken as is rather than turned into a second panic.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl BlockingPool {
    /// A pool of at most `max_threads` threads; a thread idle for `idle_timeout`
    /// exits. No thread is started until the first job.
    ///
    /// # Panics
    ///
    /// If `max_threads` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = percore_runtime::BlockingPool::new(4, Duration::from_secs(5));
    /// assert_eq!(pool.threads(), 0);
    /// ```
    pub fn new(max_threads: usize, idle_timeout: Duration) -> BlockingPool {
        BlockingPool::with_stack_size(max_threads, idle_timeout, None)
    }

    fn with_stack_size(
        max_threads: usize,
        idle_timeout: Duration,
        stack_size: Option<usize>,
    ) -> BlockingPool {
        assert!(max_threads > 0, "a blocking pool needs at least one thread");
        BlockingPool {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    notified: 0,
                    shutdown: false,
                    next_id: 0,
                }),
                work: Condvar::new(),
                max_threads,
                idle_timeout,
                stack_size,
            }),
        }
    }

    /// Runs `f` on one of this pool's threads and returns a future for its result.
    ///
    /// An idle thread takes the job if there is one; otherwise a new thread is
    /// started if the pool is below its maximum; otherwise the job waits in the
    /// queue, first in, first out. Dropping the handle detaches the job: it
    /// still runs.
    ///
    /// # Errors
    ///
    /// The handle resolves to a [`JoinError`] that
    /// [`is_panic`](JoinError::is_panic) if `f` panicked, or
    /// [`is_cancelled`](JoinError::is_cancelled) if no thread could be started
    /// and none was running to take the job (one line is printed on stderr). If
    /// starting a thread fails while others run, the job just waits for them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = percore_runtime::BlockingPool::new(1, Duration::from_secs(1));
    /// let handle = pool.spawn(|| std::fs::metadata("/").is_ok());
    /// // Awaiting works outside any runtime too, with any executor.
    /// let ok = futures_executor::block_on(handle).unwrap();
    /// assert!(ok);
    /// ```
    pub fn spawn<F, R>(&self, f: F) -> BlockingHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (slot, completer) = ResultSlot::new(());
        // A paused clock of the calling core waits for the job (dropped
        // unrun, the job releases it too).
        let hold = crate::executor::hold_clock();
        let job: Job = Box::new(move || {
            let result = panic::catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::panic);
            completer.complete(result);
            drop(hold);
        });

        let mut state = self.inner.lock();
        state.queue.push_back(job);
        if state.idle > 0 {
            state.idle -= 1;
            state.notified += 1;
            drop(state);
            self.inner.work.notify_one();
        } else if state.threads < self.inner.max_threads {
            state.threads += 1;
            let id = state.next_id;
            state.next_id += 1;
            drop(state);
            self.start_thread(id);
        }
        BlockingHandle { slot }
    }

    /// Starts thread `id`, for which `spawn` already counted one in `threads`.
    fn start_thread(&self, id: usize) {
        let mut builder = thread::Builder::new().name(format!("percore-blocking-{id}"));
        if let Some(size) = self.inner.stack_size {
            builder = builder.stack_size(size);
        }
        let inner = Arc::clone(&self.inner);
        let Err(err) = builder.spawn(move || worker(inner)) else {
            return;
        };
        let mut state = self.inner.lock();
        state.threads -= 1;
        if state.threads > 0 {
            // A running (or starting) thread will take the job from the queue.
            return;
        }
        // No thread at all: nobody will ever run what is queued. Dropping a job
        // unrun resolves its handle to a cancelled `JoinError` (see `Completer`),
        // which may wake tasks, so do it outside the lock.
        let orphans = std::mem::take(&mut state.queue);
        drop(state);
        eprintln!(
            "percore: could not start a blocking-pool thread ({err}); {} blocking job(s) cancelled",
            orphans.len()
        );
        drop(orphans);
    }

    /// How many threads this pool has right now (busy or idle).
    ///
    /// Threads are started by jobs and exit after the idle timeout, so this is
    /// at most `max_threads`, and zero for a pool that has not run anything yet
    /// or has been idle for longer than its timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = percore_runtime::BlockingPool::new(8, Duration::from_secs(60));
    /// percore_runtime::run(async {
    ///     pool.spawn(|| ()).await.unwrap();
    /// })
    /// .unwrap();
    /// assert_eq!(pool.threads(), 1);
    /// ```
    pub fn threads(&self) -> usize {
        self.inner.lock().threads
    }

    /// The most threads this pool starts, as given to [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = percore_runtime::BlockingPool::new(3, Duration::from_secs(1));
    /// assert_eq!(pool.max_threads(), 3);
    /// ```
    pub fn max_threads(&self) -> usize {
        self.inner.max_threads
    }
}

impl Drop for BlockingPool {
    fn drop(&mut self) {
        self.inner.lock().shutdown = true;
        self.inner.work.notify_all();
    }
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("BlockingPool")
            .field("threads", &state.threads)
            .field("idle", &(state.idle + state.notified))
            .field("queued", &state.queue.len())
            .field("max_threads", &self.inner.max_threads)
            .field("idle_timeout", &self.inner.idle_timeout)
            .finish()
    }
}

/// The loop of one pool thread: run queued jobs, wait up to the idle timeout
/// for more, exit on timeout or once the pool is dropped and the queue is empty.
fn worker(inner: Arc<Inner>) {
    let mut state = inner.lock();
    loop {
        while let Some(job) = state.queue.pop_front() {
            drop(state);
            // The job catches a panic of the closure itself; this catches one
            // from dropping its result or the panic payload, so that the thread
            // (and its count) survives anything.
            let _ = panic::catch_unwind(AssertUnwindSafe(job));
            state = inner.lock();
        }
        if state.shutdown {
            state.threads -= 1;
            return;
        }

        state.idle += 1;
        let deadline = Instant::now() + inner.idle_timeout;
        loop {
            if state.notified > 0 {
                // A `spawn` counted on this thread (it already left `idle`).
                state.notified -= 1;
                break;
            }
            if state.shutdown || !state.queue.is_empty() {
                // Pool dropped, or a job came in without a notification (its
                // `spawn` failed to start a thread): go back to the queue.
                state.idle -= 1;
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                state.idle -= 1;
                state.threads -= 1;
                return;
            }
            state = inner
                .work
                .wait_timeout(state, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }
}

/// A future for the result of a blocking job, from [`spawn_blocking`] or
/// [`BlockingPool::spawn`].
///
/// It resolves to `Ok` with the closure's return value, or to a [`JoinError`]
/// if the closure panicked or could not be started. Unlike a task's
/// [`JoinHandle`](crate::JoinHandle), it is `Send` (when `R` is) and may be
/// awaited on any thread, inside or outside a runtime. Dropping it detaches the
/// job, which still runs.
///
/// # Examples
///
/// ```
/// percore_runtime::run(async {
///     let handle = percore_runtime::spawn_blocking(|| 6 * 7);
///     assert_eq!(handle.await.unwrap(), 42);
/// })
/// .unwrap();
/// ```
#[must_use = "dropping a BlockingHandle detaches the job; `let _ = spawn_blocking(..)` says so"]
pub struct BlockingHandle<R> {
    slot: Arc<ResultSlot<R>>,
}

impl<R> BlockingHandle<R> {
    /// Whether the job has finished (returned, panicked or been cancelled), so
    /// that awaiting the handle is ready at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = percore_runtime::spawn_blocking(|| 1);
    /// while !handle.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(percore_runtime::run(handle).unwrap().unwrap(), 1);
    /// ```
    pub fn is_finished(&self) -> bool {
        self.slot.is_finished()
    }
}

impl<R> Future for BlockingHandle<R> {
    type Output = Result<R, JoinError>;

    /// # Panics
    ///
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.slot.poll_result(cx, "BlockingHandle")
    }
}

impl<R> fmt::Debug for BlockingHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack no system can map: every thread start fails.
    const IMPOSSIBLE_STACK: usize = 1 << 50;

    #[test]
    fn a_job_no_thread_can_take_is_cancelled_not_lost() {
        let pool = BlockingPool::with_stack_size(4, Duration::from_secs(1), Some(IMPOSSIBLE_STACK));
        let handle = pool.spawn(|| 1);
        assert!(handle.is_finished());
        let err = futures_executor::block_on(handle).unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(pool.threads(), 0);
        // The pool is still usable: the next spawn tries again.
        let err = futures_executor::block_on(pool.spawn(|| 2)).unwrap_err();
        assert!(err.is_cancelled());
    }

    #[test]
    fn a_dropped_job_cancels_its_handle() {
        let (slot, completer) = ResultSlot::<u8>::new(());
        drop(completer);
        let handle = BlockingHandle { slot };
        assert!(futures_executor::block_on(handle)
            .unwrap_err()
            .is_cancelled());
    }
}
