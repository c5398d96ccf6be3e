//! Paused time: the clock stands still, jumps to the next timer when the core
//! is idle, and waits in real time for work that finishes by itself.
//!
//! Wall-time bounds here are sanity bounds with a wide margin (a real hour
//! would take an hour); the exact checks are on the virtual clock.

mod util;

use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use percore_runtime::io_uring::{opcode, squeue, types};
use percore_runtime::op::Read;
use percore_runtime::time::{self, Instant};
use percore_runtime::{spawn, spawn_blocking, Builder, Op, OpCode, StallReport};

/// Far below what the real waits would take, far above what a loaded
/// machine needs for the virtual ones.
const WALL_BOUND: Duration = Duration::from_secs(60);

fn paused() -> Builder {
    Builder::new().start_paused(true)
}

#[test]
fn a_one_hour_timeout_elapses_at_once_and_reads_exactly_one_hour() {
    let wall = std::time::Instant::now();
    let elapsed = paused()
        .block_on(async {
            let start = Instant::now();
            let never = std::future::pending::<()>();
            let res = time::timeout(Duration::from_secs(3600), never).await;
            assert!(res.is_err(), "the timeout fired");
            start.elapsed()
        })
        .unwrap();
    assert_eq!(elapsed, Duration::from_secs(3600));
    assert!(wall.elapsed() < WALL_BOUND, "took {:?}", wall.elapsed());
}

#[test]
fn a_thousand_ticks_of_a_one_second_interval_are_each_exact() {
    let wall = std::time::Instant::now();
    paused()
        .block_on(async {
            let start = Instant::now();
            let mut every = time::interval(Duration::from_secs(1));
            for n in 0..1000u32 {
                let tick = every.tick().await;
                assert_eq!(tick, start + Duration::from_secs(n.into()), "tick {n}");
                assert_eq!(Instant::now(), tick, "the clock reads tick {n}'s instant");
            }
            assert_eq!(start.elapsed(), Duration::from_secs(999));
        })
        .unwrap();
    assert!(wall.elapsed() < WALL_BOUND, "took {:?}", wall.elapsed());
}

#[test]
fn sleeps_on_a_paused_clock_fire_in_deadline_order_at_their_deadlines() {
    paused()
        .block_on(async {
            let start = Instant::now();
            let fired = Arc::new(Mutex::new(Vec::new()));
            let tasks: Vec<_> = [30u64, 10, 20, 10, 5]
                .into_iter()
                .map(|secs| {
                    let fired = fired.clone();
                    spawn(async move {
                        time::sleep(Duration::from_secs(secs)).await;
                        fired.lock().unwrap().push((secs, Instant::now() - start));
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let fired = fired.lock().unwrap();
            let secs: Vec<u64> = fired.iter().map(|(s, _)| *s).collect();
            assert_eq!(secs, [5, 10, 10, 20, 30]);
            for (secs, at) in fired.iter() {
                assert_eq!(*at, Duration::from_secs(*secs));
            }
        })
        .unwrap();
}

#[test]
fn advance_fires_the_timers_it_passes_and_only_those() {
    paused()
        .block_on(async {
            let start = Instant::now();
            let short = spawn(time::sleep(Duration::from_millis(100)));
            let long = spawn(time::sleep(Duration::from_secs(100)));
            percore_runtime::yield_now().await; // both sleeps are in the wheel
            time::advance(Duration::from_millis(100)).await;
            assert!(short.is_finished(), "the 100 ms sleep fired");
            assert!(!long.is_finished(), "the 100 s sleep did not");
            assert_eq!(start.elapsed(), Duration::from_millis(100));
            long.abort();
        })
        .unwrap();
}

#[test]
fn advance_on_a_running_clock_panics_with_a_hint() {
    let res = percore_runtime::run(async {
        let task = spawn(time::advance(Duration::from_secs(1)));
        task.await
    })
    .unwrap();
    let panic = res.unwrap_err().try_into_panic().unwrap();
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(message.contains("time::pause()"), "{message}");
}

#[test]
fn pause_and_resume_keep_the_clock_monotonic() {
    percore_runtime::run(async {
        let before = Instant::now();
        time::pause();
        let paused_at = Instant::now();
        assert!(paused_at >= before);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(Instant::now(), paused_at, "a paused clock stands still");
        time::advance(Duration::from_secs(60)).await;
        time::resume();
        let resumed = Instant::now();
        assert!(
            resumed >= paused_at + Duration::from_secs(60),
            "runs on from the jump"
        );
        // Running again: a 1 ms sleep takes real time and does not jump.
        time::sleep(Duration::from_millis(1)).await;
        assert!(Instant::now() > resumed);
    })
    .unwrap();
}

/// `IORING_OP_TIMEOUT`: a kernel op that completes by itself after `after`.
struct KernelWait {
    spec: Box<types::Timespec>,
}

impl KernelWait {
    fn new(after: Duration) -> KernelWait {
        KernelWait {
            spec: Box::new(types::Timespec::from(after)),
        }
    }
}

// SAFETY: the entry points at `self.spec`, a heap allocation the op owns.
unsafe impl OpCode for KernelWait {
    type Output = io::Result<u32>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Timeout::new(&*self.spec).build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<u32> {
        match res {
            Err(err) if err.raw_os_error() == Some(libc::ETIME) => Ok(0),
            other => other,
        }
    }
}

#[test]
fn an_op_that_completes_on_its_own_holds_the_paused_clock() {
    paused()
        .block_on(async {
            let start = Instant::now();
            // 20 ms of real time, against a 1 ms timeout on the paused clock:
            // the clock waits for the op instead of jumping past it.
            let op = Op::new(KernelWait::new(Duration::from_millis(20)));
            let res = time::timeout(Duration::from_millis(1), op).await;
            assert!(matches!(res, Ok(Ok(_))), "{res:?}");
            assert_eq!(start.elapsed(), Duration::ZERO);
        })
        .unwrap();
}

#[test]
fn a_read_waiting_on_a_peer_does_not_hold_the_paused_clock() {
    let (reader, _writer) = util::pipe();
    paused()
        .block_on(async {
            let start = Instant::now();
            // Nobody writes: the read may wait on a peer, so the clock jumps.
            let read = Op::new(Read::new(
                reader.as_raw_fd(),
                Vec::with_capacity(8),
                u64::MAX,
            ));
            let res = time::timeout(Duration::from_secs(3600), read).await;
            assert!(res.is_err(), "the timeout fired");
            assert_eq!(start.elapsed(), Duration::from_secs(3600));
        })
        .unwrap();
}

#[test]
fn a_blocking_job_holds_the_paused_clock() {
    paused()
        .block_on(async {
            let start = Instant::now();
            let job = spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(20));
                7
            });
            let res = time::timeout(Duration::from_millis(1), job).await;
            assert!(matches!(res, Ok(Ok(7))), "{res:?}");
            assert_eq!(start.elapsed(), Duration::ZERO);
            // Once it returned, the clock jumps again.
            time::sleep(Duration::from_secs(10)).await;
            assert_eq!(start.elapsed(), Duration::from_secs(10));
        })
        .unwrap();
}

#[test]
fn every_core_of_a_runtime_can_start_paused() {
    let runtime = Builder::new().cores(2).start_paused(true).build().unwrap();
    let elapsed = runtime
        .run_on_all(|_| async {
            let start = Instant::now();
            time::sleep(Duration::from_secs(7200)).await;
            start.elapsed()
        })
        .unwrap();
    assert_eq!(elapsed, [Duration::from_secs(7200); 2]);
}

#[test]
fn the_stall_detector_reads_the_paused_clock() {
    let reports: Arc<Mutex<Vec<StallReport>>> = Arc::default();
    let sink = reports.clone();
    let line = line!() + 7;
    paused()
        .stall_threshold(Some(Duration::from_millis(50)))
        .on_stall(move |report| sink.lock().unwrap().push(report.clone()))
        .block_on(async {
            let quick = spawn(async { std::thread::sleep(Duration::from_millis(5)) });
            // One poll that takes 60 ms on the core's clock.
            let slow = spawn(async {
                time::advance(Duration::from_millis(60)).await;
            });
            quick.await.unwrap();
            slow.await.unwrap();
            // Auto-advance happens between polls: it is no stall.
            time::sleep(Duration::from_secs(3600)).await;
        })
        .unwrap();
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].duration, Duration::from_millis(60));
    assert_eq!(reports[0].location.line(), line, "{reports:?}");
}

#[test]
fn instant_outside_a_runtime_reads_the_os_clock() {
    let std_before = std::time::Instant::now();
    let ours = Instant::now();
    let std_after = std::time::Instant::now();
    assert!(ours.into_std() >= std_before && ours.into_std() <= std_after);
}
