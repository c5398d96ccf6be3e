//! Timers: order, never early, timeouts, intervals.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use percore_runtime::time::{self, Instant};
use percore_runtime::{spawn, Builder};

#[test]
fn a_hundred_thousand_sleeps_fire_in_deadline_order_at_their_deadlines() {
    // On a paused clock spawning takes no time, however loaded the machine:
    // every deadline is still ahead when its task first polls, and each
    // sleep fires exactly at its deadline.
    Builder::new()
        .start_paused(true)
        .stall_threshold(None)
        .block_on(async {
            let base = Instant::now();
            let fired = Rc::new(RefCell::new(Vec::with_capacity(100_000)));
            let handles: Vec<_> = (0..100_000u64)
                .map(|i| {
                    let fired = fired.clone();
                    let deadline = base + Duration::from_millis(1 + i % 100);
                    spawn(async move {
                        time::sleep_until(deadline).await;
                        fired.borrow_mut().push((deadline, Instant::now()));
                    })
                })
                .collect();
            for handle in handles {
                handle.await.unwrap();
            }
            let fired = fired.borrow();
            assert_eq!(fired.len(), 100_000, "every sleep fired");
            for (deadline, at) in fired.iter() {
                assert_eq!(at, deadline, "a sleep fired at its deadline");
            }
            for pair in fired.windows(2) {
                assert!(pair[0].0 <= pair[1].0, "sleeps fired out of deadline order");
            }
            assert_eq!(percore_runtime::stats().timers_fired, 100_000);
        })
        .unwrap();
}

#[test]
fn real_sleeps_are_never_early() {
    // The same on the OS's clock, where only "never early" holds under load.
    percore_runtime::run(async {
        let base = Instant::now() + Duration::from_millis(2);
        let fired = Rc::new(RefCell::new(Vec::new()));
        let handles: Vec<_> = (0..1_000u64)
            .map(|i| {
                let fired = fired.clone();
                let deadline = base + Duration::from_millis(i % 10);
                spawn(async move {
                    time::sleep_until(deadline).await;
                    fired.borrow_mut().push((deadline, Instant::now()));
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
        for (deadline, at) in fired.borrow().iter() {
            assert!(at >= deadline, "a sleep fired {:?} early", *deadline - *at);
        }
    })
    .unwrap();
}

#[test]
fn a_sleep_waits_at_least_its_duration() {
    percore_runtime::run(async {
        for ms in [0u64, 1, 2, 5, 13] {
            let start = Instant::now();
            time::sleep(Duration::from_millis(ms)).await;
            assert!(start.elapsed() >= Duration::from_millis(ms));
        }
        // A deadline in the past is ready at once, with no timer.
        time::sleep_until(Instant::now() - Duration::from_secs(1)).await;
    })
    .unwrap();
}

#[test]
fn timeout_expires_and_passes_through() {
    percore_runtime::run(async {
        let slow = time::timeout(
            Duration::from_millis(5),
            time::sleep(Duration::from_secs(60)),
        );
        assert!(slow.await.is_err());
        let fast = time::timeout(Duration::from_secs(60), async { 3 });
        assert_eq!(fast.await, Ok(3));
        // The abandoned 60 s timer was removed, not left in the wheel.
        assert_eq!(percore_runtime::stats().timers, 0);
    })
    .unwrap();
}

#[test]
fn interval_ticks_on_schedule_without_drift() {
    percore_runtime::run(async {
        let start = Instant::now();
        let period = Duration::from_millis(3);
        let ticks: Vec<Instant> = time::interval_at(start, period).take(5).collect().await;
        assert_eq!(ticks[0], start);
        for pair in ticks.windows(2) {
            // On a loaded machine a tick can be missed (and is skipped, not
            // burst), but every tick stays on the start + n × period grid.
            assert!(pair[1] > pair[0], "ticks move forward");
            let offset = (pair[1] - start).as_nanos();
            assert_eq!(
                offset % period.as_nanos(),
                0,
                "tick is on the grid: {offset} ns"
            );
        }
        assert!(start.elapsed() >= period * 4);
    })
    .unwrap();
}

#[test]
fn interval_skips_missed_ticks() {
    Builder::new()
        .start_paused(true)
        .stall_threshold(None)
        .block_on(async {
            let start = Instant::now();
            let mut every = time::interval_at(start, Duration::from_millis(2));
            every.tick().await;
            // The task is busy for 5+ periods (on the core's clock).
            time::advance(Duration::from_millis(11)).await;
            let next = every.tick().await;
            assert_eq!(
                next,
                start + Duration::from_millis(2),
                "the late tick is delivered"
            );
            let after = every.tick().await;
            assert_eq!(
                after,
                start + Duration::from_millis(12),
                "missed ticks are skipped: the next is the next on the grid"
            );
            assert_eq!(Instant::now(), after);
        })
        .unwrap();
}
