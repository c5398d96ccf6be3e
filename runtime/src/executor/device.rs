//! How long an idle core polls for device completions before it parks.
//!
//! A read that goes to a device (`O_DIRECT`) completes tens of µs after it is
//! submitted. A core that parks in `io_uring_enter` meanwhile halts its CPU,
//! and the completion then pays for waking it too: on a VM that is an
//! interrupt through the hypervisor, about 20 µs on top of a 45 µs read here.
//! So while device ops ([`Op::device`](crate::Op::device)) are in flight and
//! nothing else is ready, the core polls its ring instead, for up to its
//! budget ([`Builder::device_spin`](crate::Builder::device_spin)) — but only
//! if a completion is due within it: with `n` ops in flight whose moving
//! average latency is `t`, one completes about every `t / n`. A slow device
//! (`t / n` over the budget) is waited for asleep, where a wake-up is small
//! beside the wait. Polling for just `2 t / n` was tried and is not enough:
//! device completions come in bursts (interrupts are coalesced), and at queue
//! depth 32 the gaps between bursts outlast it, so the core parked anyway. The kernel's hybrid polling for `IOPOLL` rings makes
//! the same trade inside the block layer.

use std::cell::Cell;
use std::time::Duration;

/// Device ops in flight on one core and how long they recently took.
///
/// Core-local: plain cells, no atomics.
#[derive(Debug, Default)]
pub(crate) struct DeviceOps {
    /// Submitted and neither completed nor dropped.
    in_flight: Cell<u32>,
    /// Moving average of their latency, submission to completion, in ns;
    /// 0 until the first one completes.
    average_ns: Cell<u64>,
}

impl DeviceOps {
    /// A device op was submitted.
    pub(crate) fn started(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
    }

    /// A device op completed after `latency`.
    pub(crate) fn completed(&self, latency: Duration) {
        self.left();
        let sample = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let average = match self.average_ns.get() {
            0 => sample,
            // Weight 1/8: a few ops follow a change of device or load.
            old => old - old / 8 + sample / 8,
        };
        self.average_ns.set(average.max(1));
    }

    /// A device op was dropped before it completed: no sample.
    pub(crate) fn left(&self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
    }

    /// Whether an idle core should poll for up to `budget` before parking:
    /// a device op is in flight and the next completion is expected within
    /// `budget` (always, before anything was measured).
    pub(crate) fn due_within(&self, budget: Duration) -> bool {
        let in_flight = self.in_flight.get();
        if in_flight == 0 || budget.is_zero() {
            return false;
        }
        Duration::from_nanos(self.average_ns.get() / u64::from(in_flight)) <= budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Duration = Duration::from_micros(200);

    #[test]
    fn no_spin_without_ops_in_flight() {
        let ops = DeviceOps::default();
        assert!(!ops.due_within(BUDGET));
        ops.started();
        ops.completed(Duration::from_micros(50));
        assert!(!ops.due_within(BUDGET));
    }

    #[test]
    fn a_fast_device_is_polled_for_the_whole_budget() {
        let ops = DeviceOps::default();
        ops.started();
        // Nothing measured yet.
        assert!(ops.due_within(BUDGET));
        ops.completed(Duration::from_micros(40));
        ops.started();
        assert!(ops.due_within(BUDGET));
    }

    #[test]
    fn a_slow_device_is_not_polled_until_it_is_fast_again() {
        let ops = DeviceOps::default();
        for _ in 0..4 {
            ops.started();
            ops.completed(Duration::from_millis(5));
        }
        ops.started();
        assert!(!ops.due_within(BUDGET));
        // The average follows the device: 5 ms decays below 200 µs within
        // about 30 fast ops (weight 1/8).
        for _ in 0..40 {
            ops.completed(Duration::from_micros(30));
            ops.started();
        }
        assert!(ops.due_within(BUDGET));
        assert!(ops.average_ns.get() < 200_000, "{}", ops.average_ns.get());
    }

    #[test]
    fn more_ops_in_flight_complete_more_often() {
        let ops = DeviceOps::default();
        for _ in 0..32 {
            ops.started();
        }
        // 32 in flight at 400 µs each: one completes about every 12.5 µs.
        ops.completed(Duration::from_micros(400));
        ops.started();
        assert!(ops.due_within(BUDGET));
        // One in flight at 400 µs: none is due within the budget.
        for _ in 0..31 {
            ops.left();
        }
        assert!(!ops.due_within(BUDGET));
    }

    #[test]
    fn a_zero_budget_never_spins() {
        let ops = DeviceOps::default();
        ops.started();
        assert!(!ops.due_within(Duration::ZERO));
    }

    #[test]
    fn dropped_ops_leave_without_a_sample() {
        let ops = DeviceOps::default();
        ops.started();
        ops.started();
        ops.left();
        assert!(ops.due_within(BUDGET));
        ops.left();
        assert!(!ops.due_within(BUDGET));
        ops.left();
        assert_eq!(ops.in_flight.get(), 0);
        assert_eq!(ops.average_ns.get(), 0);
    }
}
