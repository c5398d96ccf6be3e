//! `Op::device`: while a device op is in flight and nothing else is ready, the
//! core polls its ring instead of parking, within `Builder::device_spin`.
//!
//! The "device" here is an `IORING_OP_TIMEOUT` of 50 µs, which completes like
//! a fast disk read would: some time after submission, with no task work.

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

#[test]
fn a_core_polls_for_a_fast_device_op_instead_of_parking() {
    let (parks, spins) = parks_and_spins(Builder::new(), true);
    // Each op is due after 50 µs, well within the default 200 µs budget; a
    // preempted poll may still end in a park now and then.
    assert!(parks <= OPS / 4, "{parks} parks for {OPS} device ops");
    assert!(spins >= OPS * 3 / 4, "{spins} polls for {OPS} device ops");
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
    // 50 µs ops against a 10 µs budget: after the first, the core parks.
    let parks = parks(Builder::new().device_spin(Duration::from_micros(10)), true);
    assert!(parks >= OPS * 3 / 4, "{parks} parks for {OPS} device ops");
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
