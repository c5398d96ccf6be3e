//! Cooperative scheduling: the budget that keeps an always-ready task from
//! starving its core.
//!
//! A core runs one task at a time, and a task runs until its poll returns.
//! A task that loops on futures that are always ready — a channel that
//! always holds a value, a lock nobody else holds, a socket whose reads the
//! readiness backend completes at once — would never return, and the core
//! would fire no timer, reap no completion and poll no other task meanwhile.
//!
//! So each poll of a task gets a **budget** of 128 units (tokio's figure;
//! [`Builder::coop_budget`](crate::Builder::coop_budget) sets another). Every
//! budgeted future that returns `Ready` spends one unit; once the budget is
//! spent, the next budgeted future polled returns `Pending` instead (an op
//! keeps its result for later), and the task yields: it runs again after
//! the tasks ready now, once the core has fired its due timers and reaped
//! its I/O — its wake goes with the wakes of the tick's completions. The
//! next poll of the task starts with a full budget again. A task whose
//! futures wait now and then returns `Pending` on its own long before its
//! budget is spent, and never notices it. [`Stats::coop_yields`](crate::Stats::coop_yields)
//! counts the yields the budget forced.
//!
//! The price on the hot path is a store per task poll and a compare per
//! ready op, in the core's own memory (no atomic, no thread-local lookup the
//! op did not make already); channel and lock futures, which do not reach
//! the core otherwise, look it up once per poll.
//!
//! Budgeted futures are the ones that can be ready many times in a row:
//!
//! - ops ([`Op`](crate::Op), [`MultiOp`](crate::MultiOp) items), and so every
//!   read, write, accept and receive of percore-net and percore-fs;
//! - receives and sends of the cross-core [`channel`](crate::channel)s and of
//!   the local [`sync::mpsc`](crate::sync::mpsc), and the receive of a
//!   [`sync::oneshot`](crate::sync::oneshot);
//! - acquiring a [`sync::Mutex`](crate::sync::Mutex),
//!   [`sync::RwLock`](crate::sync::RwLock) or
//!   [`sync::Semaphore`](crate::sync::Semaphore), and waiting on a
//!   [`sync::Event`](crate::sync::Event).
//!
//! Timers, [`JoinHandle`](crate::JoinHandle)s and `try_*` calls are not
//! budgeted. [`consume_budget`] budgets a loop of your own.
//!
//! [`unconstrained`] opts a future out: inside it, nothing is budgeted, and
//! the enclosing task's budget is left as it was.
//!
//! ```
//! use percore_runtime::sync::mpsc;
//!
//! percore_runtime::run(async {
//!     let (tx, mut rx) = mpsc::unbounded_channel();
//!     for i in 0..1000 {
//!         tx.send(i).unwrap();
//!     }
//!     // Every receive is ready: this task yields every 128 of them, so a
//!     // timer or another task on the core never waits for all 1000.
//!     let mut sum = 0;
//!     for _ in 0..1000 {
//!         sum += rx.recv().await.unwrap();
//!     }
//!     assert_eq!(sum, 499_500);
//! })
//! .unwrap();
//! ```

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::executor::{self, Core};

/// Units a task poll may spend by default.
pub(crate) const DEFAULT_BUDGET: i64 = 128;

/// The budget of a runtime built with `coop_budget(0)`: no count of units
/// spent reaches it.
pub(crate) const OFF: i64 = i64::MAX;

/// What [`unconstrained`] sets the units spent to: far enough below any
/// budget that no count of units brings it up to one.
const UNCONSTRAINED: i64 = i64::MIN;

/// Permission for one budgeted future to go on, from [`poll_proceed`]; spent
/// by [`made_progress`](Proceed::made_progress) if the future returns
/// `Ready`. Lives only within the poll that got it.
#[must_use]
pub(crate) struct Proceed {
    /// The core polling the task; null outside a runtime (nothing to spend).
    core: *const Core,
    _local: PhantomData<*const ()>,
}

impl Proceed {
    /// The future returns `Ready`: one unit spent.
    #[inline]
    pub(crate) fn made_progress(self) {
        // SAFETY: the core outlives every poll it makes, and this token does
        // not outlive the poll that made it.
        if let Some(core) = unsafe { self.core.as_ref() } {
            // At most one unit over the budget, if a nested future spent the
            // last one in between: the next budgeted poll yields all the same.
            core.coop_spent.set(core.coop_spent.get().saturating_add(1));
        }
    }
}

/// Whether a budgeted future may go on: `Ready` with a token to spend if it
/// returns `Ready`, or `Pending` if the task's budget is spent — the task
/// then runs again once the core has fired its timers and reaped its I/O.
///
/// Outside a runtime, always `Ready` (nothing is budgeted there).
#[inline]
pub(crate) fn poll_proceed(cx: &Context<'_>) -> Poll<Proceed> {
    let core = executor::this_core();
    // SAFETY: as in `made_progress`.
    match unsafe { core.as_ref() } {
        Some(on) if on.coop_spent.get() >= on.config.coop_budget => {
            executor::coop_yield(on, cx.waker());
            Poll::Pending
        }
        _ => Poll::Ready(Proceed {
            core,
            _local: PhantomData,
        }),
    }
}

/// Polls `f` as a budgeted future: not at all if the task's budget is spent
/// (it yields instead), and a unit spent if it returns `Ready`.
#[inline]
pub(crate) fn budgeted<T>(
    cx: &mut Context<'_>,
    f: impl FnOnce(&mut Context<'_>) -> Poll<T>,
) -> Poll<T> {
    let Poll::Ready(proceed) = poll_proceed(cx) else {
        return Poll::Pending;
    };
    let poll = f(cx);
    if poll.is_ready() {
        proceed.made_progress();
    }
    poll
}

/// Whether the task polled now has budget left: whether its next budgeted
/// future may return `Ready`. Always true outside a runtime and inside
/// [`unconstrained`].
///
/// # Examples
///
/// ```
/// percore_runtime::run(async {
///     assert!(percore_runtime::coop::has_budget_remaining());
/// })
/// .unwrap();
/// ```
pub fn has_budget_remaining() -> bool {
    let core = executor::this_core();
    // SAFETY: as in `made_progress`.
    unsafe { core.as_ref() }.is_none_or(|core| core.coop_spent.get() < core.config.coop_budget)
}

/// Spends one unit of the task's budget, as a budgeted future that is ready
/// does; yields first if the budget is spent. For loops that do a lot of
/// work without awaiting anything that waits (tokio's `consume_budget`).
///
/// # Examples
///
/// ```
/// percore_runtime::run(async {
///     let mut sum = 0u64;
///     for i in 0..10_000 {
///         sum += i;
///         // Every 128 items, the other tasks and the timers get a turn.
///         percore_runtime::coop::consume_budget().await;
///     }
///     assert_eq!(sum, 49_995_000);
/// })
/// .unwrap();
/// ```
pub async fn consume_budget() {
    std::future::poll_fn(|cx| budgeted(cx, |_| Poll::Ready(()))).await;
}

/// Runs `future` without a budget: its budgeted futures never make it yield,
/// and what they spend is not taken from the enclosing task's budget
/// (tokio's `unconstrained`).
///
/// A task that loops inside it on futures that are always ready starves its
/// core as it would without a budget: for sections known to be short, or
/// to measure what the budget costs.
///
/// # Examples
///
/// ```
/// use percore_runtime::coop::unconstrained;
/// use percore_runtime::sync::mpsc;
///
/// percore_runtime::run(async {
///     let (tx, mut rx) = mpsc::unbounded_channel();
///     for i in 0..1000 {
///         tx.send(i).unwrap();
///     }
///     let before = percore_runtime::stats().coop_yields;
///     // The 1000 receives, all ready, in one poll of the task.
///     let sum = unconstrained(async {
///         let mut sum = 0;
///         for _ in 0..1000 {
///             sum += rx.recv().await.unwrap();
///         }
///         sum
///     })
///     .await;
///     assert_eq!(sum, 499_500);
///     assert_eq!(percore_runtime::stats().coop_yields, before);
/// })
/// .unwrap();
/// ```
pub fn unconstrained<F: Future>(future: F) -> Unconstrained<F> {
    Unconstrained { future }
}

/// The future of [`unconstrained`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct Unconstrained<F> {
    future: F,
}

impl<F: Future> Future for Unconstrained<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: never moved out, and
        // `Unconstrained` has no `Unpin` impl that would allow it.
        let future = unsafe { self.map_unchecked_mut(|this| &mut this.future) };
        let core = executor::this_core();
        // SAFETY: as in `made_progress`.
        let Some(core) = (unsafe { core.as_ref() }) else {
            return future.poll(cx);
        };
        // Restored even if the poll unwinds (the task cell catches the
        // panic, and the core goes on).
        struct Restore<'a>(&'a Core, i64);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.coop_spent.set(self.1);
            }
        }
        let _restore = Restore(core, core.coop_spent.replace(UNCONSTRAINED));
        future.poll(cx)
    }
}

/// The budget a [`Builder::coop_budget`](crate::Builder::coop_budget) of
/// `units` gives each poll: zero turns the budget off.
pub(crate) fn per_poll(units: u32) -> i64 {
    match units {
        0 => OFF,
        units => i64::from(units),
    }
}
