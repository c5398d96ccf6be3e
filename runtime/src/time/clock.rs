//! A core's clock: the OS's monotonic clock, or a virtual one that only moves
//! when told to ([`pause`](super::pause), [`advance`](super::advance)) or when
//! the core has nothing else to do (auto-advance).
//!
//! Running, the clock reads `CLOCK_MONOTONIC` plus an offset (zero unless the
//! clock was paused and resumed); paused, it reads a stored instant. Timers,
//! [`Instant::now`](super::Instant::now), `interval` and the stall detector
//! all read it, so they agree with one another in both modes.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One core's clock. Core-local: plain cells.
#[derive(Debug)]
pub(crate) struct Clock {
    /// The clock has never been paused: it is the OS's clock (the fast path
    /// of every read).
    plain: Cell<bool>,
    /// `Some(now)` while paused.
    frozen: Cell<Option<Instant>>,
    /// Running: the clock reads the OS's clock plus this many ns (negative
    /// after a resume that stopped short of real time).
    offset_ns: Cell<i128>,
    /// `CLOCK_MONOTONIC_COARSE` at `origin`, to map instants onto the coarse
    /// clock the stall detector reads.
    coarse_origin: Duration,
    origin: Instant,
    /// The first reading [`recent`](Clock::recent) took in this round of the
    /// event loop; cleared at the start of every round.
    recent: Cell<Option<Instant>>,
}

impl Clock {
    pub(crate) fn new(origin: Instant, paused: bool) -> Clock {
        Clock {
            plain: Cell::new(!paused),
            frozen: Cell::new(paused.then_some(origin)),
            offset_ns: Cell::new(0),
            coarse_origin: coarse_now(),
            origin,
            recent: Cell::new(None),
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.frozen.get().is_some()
    }

    /// What the clock reads now.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        if self.plain.get() {
            return Instant::now();
        }
        if let Some(frozen) = self.frozen.get() {
            return frozen;
        }
        shift(Instant::now(), self.offset_ns.get())
    }

    /// The clock as read at most one round of the event loop ago: the first
    /// call in a round reads it, later ones in the same round return that
    /// reading (one clock read per round, however many ask). A paused clock is
    /// read each time (it costs nothing and must follow `advance`).
    #[inline]
    pub(crate) fn recent(&self) -> Instant {
        if !self.plain.get() {
            return self.now();
        }
        match self.recent.get() {
            Some(recent) => recent,
            None => {
                let now = Instant::now();
                self.recent.set(Some(now));
                now
            }
        }
    }

    /// Starts a new round for [`recent`](Clock::recent): its next call reads
    /// the clock again.
    #[inline]
    pub(crate) fn new_round(&self) {
        self.recent.set(None);
    }

    /// Stops the clock at its current reading rounded up to a whole ms of
    /// the timer wheel (so jumps to timer ticks, which are whole ms, land on
    /// deadlines of whole-ms timers exactly); no-op if stopped already.
    pub(crate) fn pause(&self) {
        if !self.is_paused() {
            self.plain.set(false);
            let ms = ceil_ms(self.now().saturating_duration_since(self.origin));
            self.frozen
                .set(Some(self.origin + Duration::from_millis(ms)));
        }
    }

    /// Lets the clock run again from where it stands; no-op if running.
    pub(crate) fn resume(&self) {
        if let Some(frozen) = self.frozen.take() {
            let real = Instant::now();
            let ahead = signed_ns(frozen.saturating_duration_since(real))
                - signed_ns(real.saturating_duration_since(frozen));
            self.offset_ns.set(ahead);
        }
    }

    /// Moves a paused clock forward to `to` (never backwards). False if the
    /// clock runs.
    pub(crate) fn jump_to(&self, to: Instant) -> bool {
        match self.frozen.get() {
            Some(frozen) => {
                self.frozen.set(Some(frozen.max(to)));
                true
            }
            None => false,
        }
    }

    /// The reading on the coarse clock (a few ns, ms resolution), for the
    /// stall detector: only differences of two readings mean anything.
    #[inline]
    pub(crate) fn coarse(&self) -> Duration {
        if self.plain.get() {
            return coarse_now();
        }
        self.coarse_shifted()
    }

    fn coarse_shifted(&self) -> Duration {
        match self.frozen.get() {
            Some(frozen) => self.coarse_origin + frozen.saturating_duration_since(self.origin),
            None => {
                let offset = self.offset_ns.get();
                let magnitude =
                    Duration::from_nanos(offset.unsigned_abs().min(u64::MAX as u128) as u64);
                if offset >= 0 {
                    coarse_now() + magnitude
                } else {
                    coarse_now().saturating_sub(magnitude)
                }
            }
        }
    }
}

fn signed_ns(duration: Duration) -> i128 {
    duration.as_nanos() as i128
}

/// `|offset_ns|` as a duration (saturating at `u64::MAX` ns, 584 years).
fn magnitude(offset_ns: i128) -> Duration {
    Duration::from_nanos(offset_ns.unsigned_abs().min(u64::MAX as u128) as u64)
}

fn shift(instant: Instant, offset_ns: i128) -> Instant {
    if offset_ns >= 0 {
        instant.checked_add(magnitude(offset_ns)).unwrap_or(instant)
    } else {
        instant.checked_sub(magnitude(offset_ns)).unwrap_or(instant)
    }
}

/// Whole milliseconds in `since`, rounded up: the timer wheel's tick of a
/// deadline, so a timer never fires early.
pub(crate) fn ceil_ms(since: Duration) -> u64 {
    let ms = since.as_millis() as u64;
    if since > Duration::from_millis(ms) {
        ms + 1
    } else {
        ms
    }
}

/// Reads `CLOCK_MONOTONIC_COARSE`: a few ns (no syscall), ms resolution.
#[inline]
fn coarse_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Work of a core that runs elsewhere and will finish by itself (blocking-pool
/// jobs): while any is pending, a paused clock does not jump ahead.
///
/// Shared with the threads that run the work, hence atomic; only the core reads it.
#[derive(Debug, Default)]
pub(crate) struct Holds(AtomicUsize);

impl Holds {
    pub(crate) fn acquire(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Release ordering: the core that sees the count drop also sees the
    /// result the work stored before.
    pub(crate) fn release(&self) {
        self.0.fetch_sub(1, Ordering::Release);
    }

    pub(crate) fn any(&self) -> bool {
        self.0.load(Ordering::Acquire) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_reads_once_per_round_and_follows_a_paused_clock() {
        let clock = Clock::new(Instant::now(), false);
        let first = clock.recent();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(clock.recent(), first, "the same round: the same reading");
        clock.new_round();
        let second = clock.recent();
        assert!(
            second >= first + Duration::from_millis(2),
            "a new round reads again"
        );
        assert!(clock.now() >= second);

        let origin = Instant::now();
        let paused = Clock::new(origin, true);
        assert_eq!(paused.recent(), origin);
        assert!(paused.jump_to(origin + Duration::from_secs(5)));
        assert_eq!(
            paused.recent(),
            origin + Duration::from_secs(5),
            "paused: follows every jump, no round needed"
        );
    }

    #[test]
    fn a_paused_clock_stands_still_and_jumps_only_forward() {
        let origin = Instant::now();
        let clock = Clock::new(origin, true);
        assert_eq!(clock.now(), origin);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(clock.now(), origin, "real time does not move it");
        assert!(clock.jump_to(origin + Duration::from_secs(3600)));
        assert_eq!(clock.now(), origin + Duration::from_secs(3600));
        assert!(clock.jump_to(origin + Duration::from_secs(1)));
        assert_eq!(
            clock.now(),
            origin + Duration::from_secs(3600),
            "never back"
        );
    }

    #[test]
    fn a_resumed_clock_runs_on_from_where_it_stood() {
        let origin = Instant::now();
        let clock = Clock::new(origin, true);
        assert!(clock.jump_to(origin + Duration::from_secs(3600)));
        clock.resume();
        assert!(!clock.is_paused());
        let now = clock.now();
        assert!(
            now >= origin + Duration::from_secs(3600),
            "{:?}",
            now - origin
        );
        // Generous bound: the clock runs at real speed from the jump on.
        assert!(now < origin + Duration::from_secs(3600 + 60));
        assert!(!clock.jump_to(origin), "a running clock does not jump");
    }

    #[test]
    fn pausing_rounds_up_to_a_whole_ms_of_the_origin() {
        let origin = Instant::now();
        let clock = Clock::new(origin, false);
        std::thread::sleep(Duration::from_micros(1500));
        let real = Instant::now();
        clock.pause();
        let since = clock.now() - origin;
        assert_eq!(since.subsec_nanos() % 1_000_000, 0, "{since:?}");
        assert!(clock.now() >= real);
    }

    #[test]
    fn pausing_twice_keeps_the_first_reading() {
        let clock = Clock::new(Instant::now(), false);
        clock.pause();
        let first = clock.now();
        std::thread::sleep(Duration::from_millis(2));
        clock.pause();
        assert_eq!(clock.now(), first);
    }

    #[test]
    fn the_coarse_reading_follows_a_paused_clock() {
        let origin = Instant::now();
        let clock = Clock::new(origin, true);
        let before = clock.coarse();
        assert!(clock.jump_to(origin + Duration::from_millis(60)));
        assert_eq!(clock.coarse() - before, Duration::from_millis(60));
    }

    #[test]
    fn holds_count_up_and_down() {
        let holds = Holds::default();
        assert!(!holds.any());
        holds.acquire();
        holds.acquire();
        holds.release();
        assert!(holds.any());
        holds.release();
        assert!(!holds.any());
    }
}
