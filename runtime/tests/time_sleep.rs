//! Timers: order, never early, timeouts, intervals.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use percore_runtime::time::{self, Instant};
use percore_runtime::{spawn, Builder};

#[test]
fn a_hundred_thousand_sleeps_fire_in_deadline_order_and_never_early() {
    Builder::new()
        .stall_threshold(None)
        .block_on(async {
            // Deadlines start after every task has been polled once (spawning 100k
            // tasks takes tens of ms in a debug build), so each one waits in the
            // wheel; a deadline already past at its first poll is ready at once,
            // in spawn order.
            let base = Instant::now() + Duration::from_millis(1500);
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
                assert!(at >= deadline, "a sleep fired {:?} early", *deadline - *at);
            }
            for pair in fired.windows(2) {
                assert!(pair[0].0 <= pair[1].0, "sleeps fired out of deadline order");
            }
            assert_eq!(percore_runtime::stats().timers_fired, 100_000);
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
        assert_eq!(percore_runtime::stats().in_flight, 0);
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
    percore_runtime::run(async {
        let start = Instant::now();
        let mut every = time::interval_at(start, Duration::from_millis(2));
        every.tick().await;
        std::thread::sleep(Duration::from_millis(11)); // the task is busy for 5+ periods
        let next = every.tick().await;
        assert_eq!(
            next,
            start + Duration::from_millis(2),
            "the late tick is delivered"
        );
        let after = every.tick().await;
        assert!(
            after >= start + Duration::from_millis(12),
            "missed ticks are skipped"
        );
        assert_eq!((after - start).as_millis() % 2, 0, "still on the grid");
    })
    .unwrap();
}
