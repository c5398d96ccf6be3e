//! [`Instant`]: a point on the current core's clock.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::Duration;

use crate::executor;

/// A point in time on the current core's clock, which is the OS's monotonic
/// clock unless it was paused ([`pause`](super::pause)).
///
/// It wraps [`std::time::Instant`] and has its methods; the difference is
/// [`now`](Instant::now), which reads the core's clock: frozen while paused,
/// moved by [`advance`](super::advance) and auto-advance. Outside a runtime it
/// reads the OS's clock. Timers, [`Sleep::deadline`](super::Sleep::deadline)
/// and [`Interval`](super::Interval) ticks are on the same clock, so
/// comparisons between them hold in paused time too.
///
/// Each core has its own clock: instants from a core whose clock was paused
/// or advanced mean nothing on another core.
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
///     time::sleep(Duration::from_secs(3600)).await; // instant: the clock jumps
///     assert_eq!(start.elapsed(), Duration::from_secs(3600));
/// })
/// .unwrap();
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(std::time::Instant);

impl Instant {
    /// The current core's clock now (the OS's clock outside a runtime).
    pub fn now() -> Instant {
        Instant(executor::clock_now())
    }

    /// The current core's clock as read at most one round of its event loop
    /// ago: the first call in a round (the tasks polled between two looks at
    /// the ring) reads the clock, later calls in that round return the same
    /// reading. So it costs one clock read per round rather than one per call,
    /// and may lag [`now`](Instant::now) by the time the round has taken so
    /// far (microseconds under load; more if a task blocks its core).
    ///
    /// For timestamps taken per request or per read where that lag does not
    /// matter: when a connection went idle, when a request head began (for
    /// timeouts of seconds). A paused clock reads exactly as `now`. Outside a
    /// runtime it is `now`.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::time::Instant;
    ///
    /// percore_runtime::run(async {
    ///     let idle_since = Instant::recent();
    ///     assert!(idle_since <= Instant::now());
    /// })
    /// .unwrap();
    /// ```
    pub fn recent() -> Instant {
        Instant(executor::clock_recent())
    }

    /// Wraps a [`std::time::Instant`].
    pub fn from_std(instant: std::time::Instant) -> Instant {
        Instant(instant)
    }

    /// The [`std::time::Instant`] this wraps.
    pub fn into_std(self) -> std::time::Instant {
        self.0
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub fn duration_since(&self, earlier: Instant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }

    /// Time from `earlier` to `self`, or `None` if `earlier` is later.
    pub fn checked_duration_since(&self, earlier: Instant) -> Option<Duration> {
        self.0.checked_duration_since(earlier.0)
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub fn saturating_duration_since(&self, earlier: Instant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }

    /// Time since `self` on the current core's clock.
    pub fn elapsed(&self) -> Duration {
        Instant::now().duration_since(*self)
    }

    /// `self + duration`, or `None` on overflow.
    pub fn checked_add(&self, duration: Duration) -> Option<Instant> {
        self.0.checked_add(duration).map(Instant)
    }

    /// `self - duration`, or `None` on overflow.
    pub fn checked_sub(&self, duration: Duration) -> Option<Instant> {
        self.0.checked_sub(duration).map(Instant)
    }
}

impl From<std::time::Instant> for Instant {
    fn from(instant: std::time::Instant) -> Instant {
        Instant(instant)
    }
}

impl From<Instant> for std::time::Instant {
    fn from(instant: Instant) -> std::time::Instant {
        instant.0
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// # Panics
    ///
    /// On overflow, as [`std::time::Instant`]'s `+` does.
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0 + rhs)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        self.0 += rhs;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;

    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0 - rhs)
    }
}

impl SubAssign<Duration> for Instant {
    fn sub_assign(&mut self, rhs: Duration) {
        self.0 -= rhs;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    /// Zero if `rhs` is later, as [`std::time::Instant`]'s `-` does.
    fn sub(self, rhs: Instant) -> Duration {
        self.duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
