//! How much CPU each core of a [`Balance`](super::Balance) gets, and when to
//! move connections away from one that gets too little.
//!
//! A core samples its own thread's scheduler statistics
//! (`/proc/thread-self/schedstat`: time on a CPU, time runnable but waiting
//! for one) at most once per [`PERIOD`], lazily, when one of its connections
//! asks [`TcpStream::rehome_wanted`](crate::TcpStream::rehome_wanted) — so an
//! idle core costs nothing and a busy one one `pread(2)` per period. The
//! fractions of wall time it spent waiting and running, smoothed over a few
//! samples, go to its slot of the table; then it decides for itself whether
//! to hand some of its connections to the core least slowed down
//! ([`decide`]).
//!
//! Waiting for a CPU is what a core sharing its CPU with another busy thread
//! shows and a core alone on its CPU does not, however many connections
//! each serves: the signal `Balance`'s connection counts lack
//! (docs/balance.md).

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Table;

/// How often a core samples its thread's statistics (at most).
pub(super) const PERIOD: Duration = Duration::from_millis(10);

/// A sample older than this many periods is stale: its core has had no
/// connection ask since, so it is taken as idle.
const STALE_PERIODS: u32 = 5;

/// How much more a core must be slowed down than the least slowed-down
/// core ([`Load::slowdown`], thousandths) before it moves connections there.
const GAP: u16 = 250;

/// A core whose waiting plus running time reaches this (thousandths of wall
/// time) has no room: nothing is moved to it.
const FULL: u16 = 950;

/// Each decision moves at most this fraction (1/`STEP`) of a core's
/// connections (and at least one), so the loads can follow.
const STEP: usize = 8;

/// A core's load, in thousandths of wall time, smoothed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Load {
    /// Runnable but not running: waiting for a CPU another thread holds.
    pub(super) waiting: u16,
    /// Running.
    pub(super) busy: u16,
}

impl Load {
    /// How much of the time the core wanted a CPU it waited for one, in
    /// thousandths (0 for a core that neither ran nor waited).
    pub(super) fn slowdown(&self) -> u16 {
        let wanted = u32::from(self.waiting) + u32::from(self.busy);
        if wanted == 0 {
            return 0;
        }
        (u32::from(self.waiting) * 1000 / wanted) as u16
    }

    /// Packs the load with the time it was taken (milliseconds since the
    /// table was made, wrapping) into one word, so a reader never sees the
    /// parts of two samples.
    pub(super) fn pack(self, stamp_ms: u32) -> u64 {
        (u64::from(self.waiting) << 48) | (u64::from(self.busy) << 32) | u64::from(stamp_ms)
    }

    /// What [`pack`](Load::pack) packed; `None` for a slot never sampled.
    pub(super) fn unpack(word: u64) -> Option<(Load, u32)> {
        (word != 0).then(|| {
            let load = Load {
                waiting: (word >> 48) as u16,
                busy: (word >> 32) as u16,
            };
            (load, word as u32)
        })
    }
}

/// Where `here` should move connections to, and how many, given each core's
/// load in core order (`None`: the core takes no connections) and how many
/// connections `here` serves: to the core least slowed down, if `here` is
/// slowed down [`GAP`] more and that core is not [`FULL`]; a [`STEP`]th of
/// them. A pure function, so the rule is tested without threads.
///
/// Slowdown — the share of the time a core wanted a CPU that it waited —
/// rather than waiting time: a core that shares its CPU with a busy thread
/// waits at every wake-up however few connections it serves, and its
/// waiting *time* shrinks with its connections. By slowdown, it hands them
/// all over as long as the other core has room, which leaves the busy
/// thread its CPU.
pub(super) fn decide(here: usize, loads: &[Option<Load>], live: usize) -> Option<(usize, usize)> {
    let mine = (*loads.get(here)?)?;
    if live == 0 {
        return None;
    }
    let (to, other) = loads
        .iter()
        .enumerate()
        .filter(|&(core, _)| core != here)
        .filter_map(|(core, load)| load.map(|load| (core, load)))
        .min_by_key(|(_, load)| load.slowdown())?;
    let room = other.waiting.saturating_add(other.busy) < FULL;
    (mine.slowdown() >= other.slowdown().saturating_add(GAP) && room)
        .then(|| (to, live.div_ceil(STEP).max(1)))
}

/// This thread's scheduler statistics, read when due.
struct Sampler {
    /// `/proc/thread-self/schedstat`, kept open; `None` if it cannot be
    /// opened (no procfs, or a kernel without schedstats): no samples then.
    file: Option<File>,
    /// When the core last looked (its loop's clock, so a paused clock —
    /// tests — never samples).
    checked: Option<percore_runtime::time::Instant>,
    /// The previous reading: when, time on a CPU, time waiting (ns).
    last: Option<(std::time::Instant, u64, u64)>,
    /// The smoothed load so far.
    load: Load,
}

thread_local! {
    static SAMPLER: RefCell<Sampler> = RefCell::new(Sampler {
        file: File::open("/proc/thread-self/schedstat").ok(),
        checked: None,
        last: None,
        load: Load::default(),
    });
}

/// Samples this core's load if a period has passed since the last look,
/// publishes it in `core`'s slot of `table`, and sets the slot's moves from
/// [`decide`].
pub(super) fn tick(table: &Table, core: usize) {
    let now = percore_runtime::time::Instant::recent();
    let sampled = SAMPLER.with(|sampler| {
        let Ok(mut sampler) = sampler.try_borrow_mut() else {
            return None;
        };
        if sampler
            .checked
            .is_some_and(|checked| now.saturating_duration_since(checked) < PERIOD)
        {
            return None;
        }
        sampler.checked = Some(now);
        sampler.sample()
    });
    let Some(load) = sampled else { return };
    let stamp = table.stamp_ms();
    let Some(slot) = table.cores.get(core) else {
        return;
    };
    slot.load.store(load.pack(stamp), Ordering::Relaxed);
    let loads: Vec<Option<Load>> = table
        .cores
        .iter()
        .map(|slot| {
            if !slot.open.load(Ordering::Acquire) {
                return None;
            }
            match Load::unpack(slot.load.load(Ordering::Relaxed)) {
                Some((load, at)) if stamp.wrapping_sub(at) < stale_ms() => Some(load),
                // Never sampled, or not for a while: no connection there asked.
                _ => Some(Load::default()),
            }
        })
        .collect();
    let live = slot.live.load(Ordering::Relaxed);
    let word = match decide(core, &loads, live) {
        Some((to, moves)) => super::shed(to, moves),
        None => 0,
    };
    slot.shed.store(word, Ordering::Relaxed);
}

fn stale_ms() -> u32 {
    (PERIOD * STALE_PERIODS).as_millis() as u32
}

impl Sampler {
    /// Reads the statistics; the load over the time since the last reading,
    /// folded into the smoothed load. `None` on the first reading, or if the
    /// file cannot be read.
    fn sample(&mut self) -> Option<Load> {
        let file = self.file.as_ref()?;
        let mut text = [0u8; 96];
        let n = file.read_at(&mut text, 0).ok()?;
        let mut fields = std::str::from_utf8(&text[..n])
            .ok()?
            .split_ascii_whitespace()
            .map(|field| field.parse::<u64>().ok());
        let (Some(Some(running)), Some(Some(waiting))) = (fields.next(), fields.next()) else {
            // Not what schedstat holds: stop trying.
            self.file = None;
            return None;
        };
        let at = std::time::Instant::now();
        let last = self.last.replace((at, running, waiting));
        let (then, ran, waited) = last?;
        let wall = at.saturating_duration_since(then).as_nanos().max(1) as u64;
        let share = |ns: u64| (ns.saturating_mul(1000) / wall).min(1000) as u16;
        let now = Load {
            waiting: share(waiting.saturating_sub(waited)),
            busy: share(running.saturating_sub(ran)),
        };
        // Three parts old, one part new: a few periods of memory.
        let blend = |old: u16, new: u16| ((u32::from(old) * 3 + u32::from(new)) / 4) as u16;
        self.load = Load {
            waiting: blend(self.load.waiting, now.waiting),
            busy: blend(self.load.busy, now.busy),
        };
        Some(self.load)
    }
}

#[cfg(test)]
mod tests {
    use super::{decide, Load};

    fn load(waiting: u16, busy: u16) -> Option<Load> {
        Some(Load { waiting, busy })
    }

    #[test]
    fn a_slowed_core_moves_an_eighth_to_the_least_slowed_one() {
        // Slowdowns 444, 0 and 500.
        let loads = [load(400, 500), load(0, 300), load(100, 100)];
        assert_eq!(decide(0, &loads, 32), Some((1, 4)));
        assert_eq!(decide(0, &loads, 3), Some((1, 1)));
    }

    #[test]
    fn slowdown_not_waiting_time_decides() {
        // Little waiting time, but half of the time it wanted a CPU: a core
        // left with a few connections beside a busy thread hands them over.
        assert_eq!(decide(0, &[load(40, 40), load(30, 800)], 3), Some((1, 1)));
        // Much waiting time, but little against its running time.
        assert_eq!(decide(0, &[load(200, 700), load(0, 100)], 3), None);
    }

    #[test]
    fn nothing_moves_within_the_gap_or_without_connections() {
        // Slowdowns 249 and 0, then 250 and 0.
        assert_eq!(decide(0, &[load(249, 751), load(0, 100)], 32), None);
        assert_eq!(decide(0, &[load(250, 750), load(0, 100)], 32), Some((1, 4)));
        assert_eq!(decide(0, &[load(400, 500), load(0, 100)], 0), None);
        assert_eq!(decide(1, &[load(0, 100), load(100, 900)], 10), None);
    }

    #[test]
    fn nothing_moves_to_a_core_without_room() {
        assert_eq!(decide(0, &[load(500, 500), load(0, 950)], 32), None);
        assert_eq!(decide(0, &[load(500, 500), load(50, 900)], 32), None);
        assert_eq!(
            decide(0, &[load(500, 500), load(49, 900)], 32),
            Some((1, 4))
        );
    }

    #[test]
    fn cores_that_take_no_connections_are_skipped() {
        assert_eq!(
            decide(0, &[load(500, 100), None, load(0, 0)], 8),
            Some((2, 1))
        );
        assert_eq!(decide(0, &[load(500, 100), None], 8), None);
        assert_eq!(decide(1, &[load(500, 100), None], 8), None);
        assert_eq!(decide(4, &[load(500, 100)], 8), None);
    }

    #[test]
    fn slowdown_of_an_idle_core_is_zero() {
        assert_eq!(Load::default().slowdown(), 0);
        assert_eq!(load(1000, 0).map(|l| l.slowdown()), Some(1000));
        assert_eq!(load(1, 3).map(|l| l.slowdown()), Some(250));
    }

    #[test]
    fn packing_keeps_every_part() {
        let load = Load {
            waiting: 1000,
            busy: 7,
        };
        assert_eq!(Load::unpack(load.pack(u32::MAX)), Some((load, u32::MAX)));
        assert_eq!(Load::unpack(0), None);
    }
}
