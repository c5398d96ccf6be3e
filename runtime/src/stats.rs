//! Per-core counters, so a benchmark can print syscalls per request.

use std::cell::Cell;

use crate::Driver;

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
    /// [`Builder::faults`](crate::Builder::faults), `PERCORE_FAULTS`).
    pub faults: u64,
    /// Operations in flight right now.
    pub in_flight: usize,
    /// Timers pending right now.
    pub timers: usize,
    /// Tasks alive right now (spawned and not yet freed, including finished
    /// tasks whose `JoinHandle` or a `Waker` is still held).
    pub tasks: usize,
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
