//! `Op::device`: while a device op is in flight and nothing else is ready, the
//! core polls its ring instead of parking, within `Builder::device_spin`.
//!
//! The "device" here is an `IORING_OP_TIMEOUT` of 50 µs, which completes like
//! a fast disk read would: some time after submission, with no task work.
//!
//! Whether a core polls or parks depends on time (the budget, the measured
//! latency), and a busy machine stretches every latency: a core preempted
//! while it awaits an op measures milliseconds, not 50 µs. So the tests that
//! count parks give the core a budget (100 ms) no scheduling delay reaches,
//! and the default budget is only checked for what no load can change (the
//! first op, before anything is measured, is polled for). How often the
//! default budget saves a wake-up is a speed question for the benchmarks.

use std::io;
use std::time::Duration;

use percore_runtime::io_uring::{opcode, squeue, types};
use percore_runtime::{stats, Builder, Op, OpCode};

/// `IORING_OP_TIMEOUT` with no completion count: completes after `after`.
struct Wait {
    spec: Box<types::Timespec>,
}

impl Wait {
    fn new(after: Duration) -> Wait {
        Wait {
            spec: Box::new(types::Timespec::from(after)),
        }
    }
}

// SAFETY: the entry points at `self.spec`, a heap allocation that stays put
// while `self` moves and lives until the completion.
unsafe impl OpCode for Wait {
    type Output = io::Result<u32>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Timeout::new(&*self.spec).build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<u32> {
        res
    }
}

const OPS: u64 = 200;

/// Parks and spins of a core that awaits `OPS` 50 µs ops one after another,
/// device ops if `device`.
fn parks_and_spins(builder: Builder, device: bool) -> (u64, u64) {
    builder
        .stall_threshold(None)
        .block_on(async move {
            let before = stats();
            for _ in 0..OPS {
                let op = Op::new(Wait::new(Duration::from_micros(50)));
                let op = if device { op.device() } else { op };
                let res = op.await;
                assert_eq!(res.map_err(|e| e.raw_os_error()), Err(Some(libc::ETIME)));
            }
            let after = stats();
            (after.parks - before.parks, after.spins - before.spins)
        })
        .unwrap()
}

fn parks(builder: Builder, device: bool) -> u64 {
    parks_and_spins(builder, device).0
}

/// A budget far above what a 50 µs op takes, however busy the machine: a
/// polling core parks only if an op is still not done after this long.
const GENEROUS: Duration = Duration::from_millis(100);

#[test]
fn a_core_polls_for_a_fast_device_op_instead_of_parking() {
    let (parks, spins) = parks_and_spins(Builder::new().device_spin(GENEROUS), true);
    // Every wait for an op starts with a poll, and the completion arrives
    // within it: ~0 parks, where a core that does not poll parks once per op.
    assert!(parks < OPS / 4, "{parks} parks for {OPS} device ops");
    assert!(spins >= OPS * 3 / 4, "{spins} polls for {OPS} device ops");
}

#[test]
fn the_default_budget_polls_for_device_ops() {
    // Nothing is measured before the first op completes, so the core polls
    // for it whatever the load (how often later ones are polled for depends
    // on how busy the machine is, and is not asserted).
    let (_, spins) = parks_and_spins(Builder::new(), true);
    assert!(
        spins >= 1,
        "the default budget never polled for a device op"
    );
}

#[test]
fn other_ops_and_a_zero_budget_park() {
    let plain = parks(Builder::new(), false);
    assert!(plain >= OPS * 3 / 4, "{plain} parks for {OPS} plain ops");
    let off = parks(Builder::new().device_spin(Duration::ZERO), true);
    assert!(
        off >= OPS * 3 / 4,
        "{off} parks for {OPS} ops with device_spin(0)"
    );
}

#[test]
fn a_device_slower_than_the_budget_is_waited_for_asleep() {
    // 50 µs ops against a 10 µs budget: after the first, the core parks
    // without polling. (Load only makes the measured latency longer.)
    let (parks, spins) =
        parks_and_spins(Builder::new().device_spin(Duration::from_micros(10)), true);
    assert!(parks >= OPS * 3 / 4, "{parks} parks for {OPS} device ops");
    assert!(spins < OPS / 4, "{spins} polls for {OPS} slow device ops");
}

#[test]
fn a_dropped_device_op_stops_the_polling() {
    Builder::new()
        .stall_threshold(None)
        .block_on(async {
            // Measure one fast op, then drop a slow one in flight.
            Op::new(Wait::new(Duration::from_micros(50)))
                .device()
                .await
                .unwrap_err();
            let slow = Op::new(Wait::new(Duration::from_secs(10))).device();
            let timed_out = percore_runtime::time::timeout(Duration::from_millis(1), slow).await;
            assert!(timed_out.is_err(), "a 10 s op finished within 1 ms");
            // Nothing is in flight now: a 20 ms sleep is spent parked, with
            // no polling first.
            let before = stats();
            percore_runtime::time::sleep(Duration::from_millis(20)).await;
            let after = stats();
            assert!(after.parks > before.parks, "the core never parked");
            assert_eq!(
                after.spins, before.spins,
                "the core polled for a dropped op"
            );
        })
        .unwrap();
}
