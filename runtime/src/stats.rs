//! Per-core counters, so a benchmark can print syscalls per request, and the
//! slot each core publishes them in for other threads (`Runtime::stats`).

use std::cell::Cell;
use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::{Driver, Features};

/// A snapshot of one core's counters since it started.
///
/// # Examples
///
/// ```
/// percore_runtime::run(async {
///     percore_runtime::time::sleep(std::time::Duration::from_millis(1)).await;
///     let stats = percore_runtime::stats();
///     assert!(stats.timers_fired >= 1);
///     assert!(stats.polls >= 1);
/// })
/// .unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// The core these counters belong to.
    pub core: usize,
    /// The backend the core runs on: [`Driver::IoUring`] or [`Driver::Epoll`].
    pub driver: Driver,
    /// `io_uring_enter` calls (every syscall the loop makes for I/O and
    /// parking), or on the epoll backend, `epoll_wait` calls.
    pub enters: u64,
    /// Submission entries pushed.
    pub sqes: u64,
    /// Completion entries reaped.
    pub cqes: u64,
    /// Task polls.
    pub polls: u64,
    /// Times the core blocked in the kernel waiting for work.
    pub parks: u64,
    /// Times an idle core polled its ring before parking (for device ops in
    /// flight, or `Builder::spin_before_park`).
    pub spins: u64,
    /// Polls longer than the stall threshold.
    pub stalls: u64,
    /// Timers that expired.
    pub timers_fired: u64,
    /// Times a task was made to yield because its cooperative budget was
    /// spent (see [`coop`](crate::coop)): each one let the core's other
    /// tasks, timers and I/O in before the task went on.
    pub coop_yields: u64,
    /// Tasks spawned on this core.
    pub spawned: u64,
    /// Tasks or jobs that arrived from other threads.
    pub remote_wakes: u64,
    /// Enters that found the completion queue overflowed (completions were kept by
    /// the kernel and delivered late; a bigger CQ avoids the extra work).
    pub overflows: u64,
    /// Times the submission queue was full and had to be flushed early.
    pub sq_full: u64,
    /// Parked cores this core woke with `IORING_OP_MSG_RING` (riding on its own
    /// next enter) rather than with an eventfd write.
    pub msg_rings: u64,
    /// Faults injected on this core: ops failed instead of run, reads and
    /// writes shortened, completions held back, submits failed (always 0
    /// unless percore-runtime's `faults` feature is on and a spec is set:
    /// `Builder::faults`, `PERCORE_FAULTS`).
    pub faults: u64,
    /// The newer io_uring features this core uses: those allowed
    /// ([`Builder::uring_features`](crate::Builder::uring_features)) that its
    /// kernel has; none on the epoll backend.
    pub uring_features: Features,
    /// Operations in flight right now.
    pub in_flight: usize,
    /// Timers pending right now.
    pub timers: usize,
    /// Tasks alive right now (spawned and not yet freed, including finished
    /// tasks whose `JoinHandle` or a `Waker` is still held).
    pub tasks: usize,
    /// Bytes the core's task arena holds for those tasks right now: each
    /// task is one cell, its header and its future (the state of the
    /// `async` block, at its largest), rounded up to 16 bytes. Memory the
    /// global allocator does not see. A task over 1 KiB lives on the global
    /// heap instead and is not counted here (nor are any when the arena is
    /// off: `--cfg percore_no_arena`, or mapping failed).
    pub task_bytes: usize,
}

/// Every core's counters, from a task: one entry per core of the
/// [`Runtime`](crate::Runtime) this task runs in (index = core), as
/// [`Runtime::stats`](crate::Runtime::stats) gives them to a thread that
/// holds the runtime — for a metrics endpoint served by the runtime's own
/// cores. The calling core's entry is exact (as [`stats`](crate::stats()));
/// the others are what those cores last published (see `Runtime::stats` for
/// how fresh that is). On a core of [`run`](crate::run) or
/// [`Builder::block_on`](crate::Builder::block_on), the one entry of this
/// core.
///
/// # Panics
///
/// Outside a percore runtime.
///
/// # Examples
///
/// ```
/// use percore_runtime::Runtime;
///
/// let runtime = Runtime::builder().cores(2).build().unwrap();
/// let stats = runtime.run_on(1, || async { percore_runtime::all_stats() }).unwrap();
/// assert_eq!(stats.len(), 2);
/// assert_eq!(stats[1].core, 1);
/// assert!(stats[1].spawned >= 1); // this very task, exact
/// ```
#[track_caller]
pub fn all_stats() -> Vec<Stats> {
    crate::executor::with_core(|core| {
        let own = core.stats();
        match core.peers.get() {
            Some(peers) => peers
                .iter()
                .map(|peer| {
                    if peer.id == own.core {
                        own
                    } else {
                        peer.stats.read()
                    }
                })
                .collect(),
            None => vec![own],
        }
    })
}

/// The executor's own counters; the driver keeps the I/O ones.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) polls: Cell<u64>,
    pub(crate) parks: Cell<u64>,
    pub(crate) spins: Cell<u64>,
    pub(crate) stalls: Cell<u64>,
    pub(crate) timers_fired: Cell<u64>,
    pub(crate) coop_yields: Cell<u64>,
    pub(crate) spawned: Cell<u64>,
    pub(crate) remote_wakes: Cell<u64>,
}

pub(crate) fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().wrapping_add(n));
}

/// Words in a [`Slot`]: every field of [`Stats`] as a `u64`.
const WORDS: usize = 22;

/// Attempts a reader makes at a consistent snapshot before it takes the
/// figures as they are (a writer publishes rarely, so one attempt nearly
/// always suffices; the bound keeps a reader from spinning on a busy core).
const READ_ATTEMPTS: u32 = 64;

/// One core's [`Stats`] as it last published them, for other threads
/// (`Runtime::stats`): a sequence lock over relaxed atomics, on cache lines
/// of its own so readers never slow the core's other shared state.
///
/// The core writes it at a low rate (`Core::publish_stats`: when it parks,
/// every few dozen ticks while busy, and when it stops), never per op.
/// `seq` is odd while a write is under way; a reader that sees the same even
/// `seq` before and after its loads got one consistent snapshot.
#[derive(Debug)]
pub(crate) struct Slot {
    seq: crossbeam_utils::CachePadded<AtomicU64>,
    words: crossbeam_utils::CachePadded<[AtomicU64; WORDS]>,
}

impl Slot {
    pub(crate) fn new(core: usize) -> Slot {
        let slot = Slot {
            seq: crossbeam_utils::CachePadded::new(AtomicU64::new(0)),
            words: crossbeam_utils::CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))),
        };
        slot.publish(&Stats {
            core,
            ..Stats::default()
        });
        slot
    }

    /// Stores `stats`; only the owning core calls this (one writer).
    pub(crate) fn publish(&self, stats: &Stats) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        // Orders the odd `seq` before the words: a reader that sees a new
        // word also sees the write under way.
        fence(Ordering::Release);
        for (word, value) in self.words.iter().zip(to_words(stats)) {
            word.store(value, Ordering::Relaxed);
        }
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The last figures published: a consistent snapshot, unless the core
    /// kept publishing through every attempt (then the figures of the last
    /// one, each field as fresh as the other).
    pub(crate) fn read(&self) -> Stats {
        let mut words = [0; WORDS];
        for _ in 0..READ_ATTEMPTS {
            if self.try_read(&mut words) {
                break;
            }
            std::hint::spin_loop();
        }
        from_words(&words)
    }

    /// Loads every word into `words`; true if no write overlapped (the
    /// words are one snapshot).
    fn try_read(&self, words: &mut [u64; WORDS]) -> bool {
        let before = self.seq.load(Ordering::Acquire);
        for (value, word) in words.iter_mut().zip(self.words.iter()) {
            *value = word.load(Ordering::Relaxed);
        }
        // Orders the loads of the words before the second load of `seq`.
        fence(Ordering::Acquire);
        let after = self.seq.load(Ordering::Relaxed);
        before == after && before % 2 == 0
    }
}

fn to_words(stats: &Stats) -> [u64; WORDS] {
    let driver = match stats.driver {
        Driver::Auto => 0,
        Driver::IoUring => 1,
        Driver::Epoll => 2,
    };
    [
        stats.core as u64,
        driver,
        stats.enters,
        stats.sqes,
        stats.cqes,
        stats.polls,
        stats.parks,
        stats.spins,
        stats.stalls,
        stats.timers_fired,
        stats.spawned,
        stats.remote_wakes,
        stats.overflows,
        stats.sq_full,
        stats.msg_rings,
        stats.faults,
        stats.in_flight as u64,
        stats.timers as u64,
        stats.tasks as u64,
        stats.task_bytes as u64,
        stats.coop_yields,
        u64::from(stats.uring_features.bits()),
    ]
}

/// The inverse of [`to_words`]; a struct literal, so a new field of
/// [`Stats`] fails to compile here until it is carried.
fn from_words(words: &[u64; WORDS]) -> Stats {
    let [core, driver, enters, sqes, cqes, polls, parks, spins, stalls, timers_fired, spawned, remote_wakes, overflows, sq_full, msg_rings, faults, in_flight, timers, tasks, task_bytes, coop_yields, uring_features] =
        *words;
    Stats {
        core: core as usize,
        driver: match driver {
            1 => Driver::IoUring,
            2 => Driver::Epoll,
            _ => Driver::Auto,
        },
        enters,
        sqes,
        cqes,
        polls,
        parks,
        spins,
        stalls,
        timers_fired,
        spawned,
        remote_wakes,
        overflows,
        sq_full,
        msg_rings,
        faults,
        in_flight: in_flight as usize,
        timers: timers as usize,
        tasks: tasks as usize,
        task_bytes: task_bytes as usize,
        coop_yields,
        uring_features: Features::from_bits(uring_features as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_gives_back_what_was_published() {
        let slot = Slot::new(3);
        assert_eq!(slot.read().core, 3);
        let stats = Stats {
            core: 3,
            driver: Driver::Epoll,
            enters: 1,
            sqes: 2,
            cqes: 3,
            polls: 4,
            parks: 5,
            spins: 6,
            stalls: 7,
            timers_fired: 8,
            spawned: 9,
            remote_wakes: 10,
            overflows: 11,
            sq_full: 12,
            msg_rings: 13,
            faults: 14,
            in_flight: 15,
            timers: 16,
            tasks: 17,
            task_bytes: 19,
            coop_yields: 18,
            uring_features: Features::RECV_BUNDLE,
        };
        slot.publish(&stats);
        assert_eq!(slot.read(), stats);
    }

    #[test]
    fn a_reader_never_sees_half_a_write() {
        let slot = std::sync::Arc::new(Slot::new(0));
        let writer = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                for n in 1..=20_000u64 {
                    slot.publish(&Stats {
                        sqes: n,
                        cqes: n,
                        tasks: n as usize,
                        ..Stats::default()
                    });
                }
            })
        };
        let mut last = 0;
        let mut words = [0; WORDS];
        while !writer.is_finished() {
            if slot.try_read(&mut words) {
                let stats = from_words(&words);
                // One publish's words, never a mix of two.
                assert_eq!(stats.sqes, stats.cqes, "{stats:?}");
                assert_eq!(stats.sqes, stats.tasks as u64, "{stats:?}");
                assert!(stats.sqes >= last);
                last = stats.sqes;
            }
        }
        writer.join().unwrap();
        assert_eq!(slot.read().sqes, 20_000);
        assert_eq!(slot.read().cqes, 20_000);
        // Without a writer every read is consistent.
        assert!(slot.try_read(&mut words));
    }
}
