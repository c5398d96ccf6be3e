//! Timers: [`sleep`], [`sleep_until`], [`timeout`], [`interval`]; the core's
//! clock: [`Instant`] ([`Instant::now`], and [`Instant::recent`], one clock
//! read per round of the core's loop for per-request timestamps), and in
//! tests [`pause`], [`advance`], [`resume`].
//!
//! Each core keeps its timers in a hierarchical wheel with 1 ms ticks. A
//! deadline is rounded *up* to a tick, so a timer never fires early and may fire
//! up to about 1 ms late. Waiting for the next deadline costs no SQE: it is the
//! timeout of the `io_uring_enter` that waits for completions.
//!
//! ```
//! use std::time::Duration;
//! use percore_runtime::time::{self, Instant};
//!
//! percore_runtime::run(async {
//!     let start = Instant::now();
//!     time::sleep(Duration::from_millis(5)).await;
//!     assert!(start.elapsed() >= Duration::from_millis(5));
//!
//!     let slow = time::sleep(Duration::from_secs(60));
//!     assert!(time::timeout(Duration::from_millis(1), slow).await.is_err());
//! })
//! .unwrap();
//! ```
//!
//! # Paused time
//!
//! A core's timers read the core's clock. [`pause`] stops it (or
//! [`Builder::start_paused`](crate::Builder::start_paused), or
//! `#[percore::test(start_paused = true)]`); from then on it moves only:
//!
//! - by [`advance`], which jumps it forward and fires the timers it passed;
//! - by **auto-advance**: when the core has nothing to do, it jumps straight
//!   to the next timer's deadline, so a test of a one-hour timeout takes
//!   microseconds and reads exactly one hour on [`Instant`].
//!
//! "Nothing to do" means: no task ready to run, nothing sent from another
//! thread, and nothing in flight that will finish by itself. Real work is
//! still waited for in real time, at a standstill of the clock:
//!
//! - an op that completes without anyone else acting — file reads and writes,
//!   opens, `fsync`, a NOP, any op whose [`OpCode::completes_on_its_own`](crate::OpCode::completes_on_its_own)
//!   says so (the default) — holds the clock until its completion arrives;
//! - a blocking-pool job ([`spawn_blocking`](crate::spawn_blocking)) started
//!   on the core holds it until the job returns;
//! - socket ops — accept, connect, receive, send, poll — wait on a peer,
//!   which may itself be waiting on a timer of this core: they do not hold
//!   the clock. So `timeout(Duration::from_secs(5), stream.read(buf))` with
//!   an idle peer times out at once in real time and after exactly 5 s on
//!   the clock, and a peer on another thread that answers in real time may
//!   lose that race. Run such a peer on the same core, or let the clock run
//!   ([`resume`]) around real network waits.
//!
//! - a wait on another core (a `spawn_on` handle, a cross-core channel) does
//!   not hold the clock either: a core does not know what another is doing.
//!
//! Each core has its own clock: pausing one leaves the others running.
//! The stall detector reads the clock too, so an [`advance`] inside a task's
//! poll counts as time that poll took.

mod clock;
mod instant;
pub(crate) mod wheel;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use crate::executor;
pub(crate) use clock::{ceil_ms, Clock, Holds};
pub use instant::Instant;
use wheel::TimerKey;

/// Waits until `duration` has passed.
///
/// # Panics
///
/// Polling panics outside a percore runtime.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(
        Instant::now()
            .checked_add(duration)
            .unwrap_or_else(far_future),
    )
}

/// Waits until `deadline`.
///
/// # Panics
///
/// Polling panics outside a percore runtime.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        key: None,
    }
}

/// About 30 years from now: "never", for a deadline that would overflow.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

/// The future of [`sleep`] and [`sleep_until`].
///
/// # Cancel safety
///
/// Dropping it removes the timer; nothing else is lost.
#[must_use = "a Sleep does nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    /// The timer in the wheel of the core (by `uid`) that last polled it.
    key: Option<(TimerKey, u64)>,
}

impl Sleep {
    /// The instant this sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline; the sleep can be awaited again.
    pub fn reset(&mut self, deadline: Instant) {
        self.cancel();
        self.deadline = deadline;
    }

    fn cancel(&mut self) {
        if let Some((key, uid)) = self.key.take() {
            if executor::has_core() {
                executor::with_core(|core| {
                    // A timer left on another core just fires there once, waking
                    // this task spuriously; it cannot be removed from here.
                    if core.uid == uid {
                        core.timers.borrow_mut().remove(key);
                    }
                });
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        executor::with_core(|core| {
            let mut timers = core.timers.borrow_mut();
            if let Some((key, uid)) = this.key {
                if uid == core.uid && timers.is_pending(key) {
                    timers.set_waker(key, cx.waker());
                    return Poll::Pending;
                }
                this.key = None;
            }
            if core.clock.now() >= this.deadline.into_std() {
                return Poll::Ready(());
            }
            let tick = core.deadline_tick(this.deadline.into_std());
            this.key = Some((timers.insert(tick, cx.waker().clone()), core.uid));
            Poll::Pending
        })
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// Stops the current core's clock; see [Paused time](self#paused-time).
///
/// From now on [`Instant::now`] stands still except for [`advance`] and
/// auto-advance. Pausing a paused clock does nothing.
///
/// # Panics
///
/// Outside a percore runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use percore_runtime::time::{self, Instant};
///
/// percore_runtime::run(async {
///     time::pause();
///     let start = Instant::now();
///     let mut every = time::interval(Duration::from_secs(1));
///     for _ in 0..1000 {
///         every.tick().await;
///     }
///     // 999 s on the clock, microseconds of real time.
///     assert_eq!(start.elapsed(), Duration::from_secs(999));
/// })
/// .unwrap();
/// ```
#[track_caller]
pub fn pause() {
    executor::with_core(|core| core.clock.pause());
}

/// Lets the current core's clock run again, at real speed from the instant
/// it reads now (it does not catch up with the OS's clock). Resuming a
/// running clock does nothing.
///
/// # Panics
///
/// Outside a percore runtime.
#[track_caller]
pub fn resume() {
    executor::with_core(|core| core.clock.resume());
}

/// Moves the current core's paused clock forward by `duration`, fires every
/// timer it passes, and yields once, so the tasks those timers woke get to
/// run before this returns (it does not wait for them to finish).
///
/// # Panics
///
/// Outside a percore runtime, or if the clock is not paused.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use percore_runtime::time::{self, Instant};
///
/// percore_runtime::run(async {
///     time::pause();
///     let start = Instant::now();
///     let sleeper = percore_runtime::spawn(time::sleep(Duration::from_secs(10)));
///     time::advance(Duration::from_secs(10)).await;
///     assert!(sleeper.is_finished());
///     assert_eq!(start.elapsed(), Duration::from_secs(10));
/// })
/// .unwrap();
/// ```
pub async fn advance(duration: Duration) {
    executor::with_core(|core| {
        let to = core
            .clock
            .now()
            .checked_add(duration)
            .unwrap_or_else(far_future_std);
        assert!(
            core.clock.jump_to(to),
            "time::advance needs a paused clock: call time::pause() first, or use \
             #[percore::test(start_paused = true)]"
        );
        core.fire_timers();
    });
    crate::yield_now().await;
}

fn far_future_std() -> std::time::Instant {
    far_future().into_std()
}

/// Runs `future` for at most `duration`.
///
/// # Errors
///
/// [`Elapsed`] if the time ran out first; `future` is dropped then.
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

/// Runs `future` until `deadline` at most.
pub fn timeout_at<F: Future>(deadline: Instant, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep_until(deadline),
    }
}

/// The future of [`timeout`]: `Ok(output)` or `Err(Elapsed)`.
///
/// # Cancel safety
///
/// As cancel-safe as the future it wraps.
#[must_use = "a Timeout does nothing unless awaited"]
#[derive(Debug)]
pub struct Timeout<F> {
    future: F,
    sleep: Sleep,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned (never moved out, no `Unpin` impl
        // that would allow it); `sleep` is `Unpin` and only borrowed.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The error of a [`timeout`] whose time ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, "deadline has elapsed")
    }
}

/// Ticks every `period`, starting now; also a [`Stream`] of the tick instants.
///
/// Deadlines are `start + n × period`, so ticks do not drift. Ticks missed
/// because the task was busy are skipped, not burst: the next tick is the next
/// multiple of `period` in the future.
///
/// # Panics
///
/// If `period` is zero.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// percore_runtime::run(async {
///     let mut every = percore_runtime::time::interval(Duration::from_millis(2));
///     let first = every.tick().await;
///     let second = every.tick().await;
///     // On the grid of 2 ms steps: one step, or more if a busy machine kept
///     // the task from the tick in time (missed ticks are skipped).
///     let gap = second - first;
///     assert!(gap >= Duration::from_millis(2) && gap.as_nanos() % 2_000_000 == 0);
/// })
/// .unwrap();
/// ```
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Like [`interval`], with the first tick at `start`.
///
/// # Panics
///
/// If `period` is zero.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(!period.is_zero(), "interval period must be non-zero");
    Interval {
        period,
        sleep: sleep_until(start),
    }
}

/// The timer of [`interval`].
#[derive(Debug)]
#[must_use = "an Interval does nothing unless ticked"]
pub struct Interval {
    period: Duration,
    sleep: Sleep,
}

impl Interval {
    /// Waits for the next tick and returns its scheduled instant.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a dropped `tick()` does not consume the tick.
    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let tick = self.sleep.deadline();
        let now = Instant::now();
        let mut next = tick + self.period;
        if next <= now {
            let behind = (now - tick).as_nanos() / self.period.as_nanos();
            next = tick + self.period * (behind as u32).saturating_add(1);
        }
        self.sleep.reset(next);
        Poll::Ready(tick)
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }
}

impl Stream for Interval {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().poll_tick(cx).map(Some)
    }
}
