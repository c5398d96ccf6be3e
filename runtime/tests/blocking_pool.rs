//! The blocking pool: results back on the core, bounded threads, panics,
//! detached jobs, idle exit, awaiting from anywhere.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use percore_runtime::{spawn, spawn_blocking, BlockingPool, Builder, Runtime};

fn quiet() -> Builder {
    Builder::new().stall_threshold(None)
}

/// How long a test waits for something that takes milliseconds on a quiet
/// machine, before it calls it a bug: far beyond what load can add.
const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `condition` every millisecond for up to `PATIENCE`; whether it
/// became true.
fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

fn thread_name() -> String {
    thread::current().name().unwrap_or("").to_owned()
}

#[test]
fn a_result_comes_back_to_the_core_which_keeps_running_meanwhile() {
    quiet()
        .block_on(async {
            let core_thread = thread::current().id();
            let ticks = Arc::new(AtomicUsize::new(0));
            let stop = Rc::new(Cell::new(false));
            let ticker = spawn({
                let ticks = ticks.clone();
                let stop = stop.clone();
                async move {
                    while !stop.get() {
                        percore_runtime::time::sleep(Duration::from_millis(1)).await;
                        ticks.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });

            let job_ticks = ticks.clone();
            let (value, name, job_thread, ticks_before, ticks_after) = spawn_blocking(move || {
                // Blocks until the core has ticked twice (it would wait in
                // vain if the job blocked the core), or gives up.
                let before = job_ticks.load(Ordering::SeqCst);
                let mut after = before;
                let start = Instant::now();
                while after < before + 2 && start.elapsed() < PATIENCE {
                    thread::sleep(Duration::from_millis(1));
                    after = job_ticks.load(Ordering::SeqCst);
                }
                (42, thread_name(), thread::current().id(), before, after)
            })
            .await
            .expect("the job returns");

            assert_eq!(value, 42);
            assert!(name.starts_with("percore-blocking-"), "ran on {name:?}");
            assert_ne!(job_thread, core_thread, "the job ran off the core");
            assert_eq!(thread::current().id(), core_thread, "resumed on the core");
            assert!(
                ticks_after >= ticks_before + 2,
                "the core's timer task ticked while the job blocked ({ticks_before} -> {ticks_after})"
            );

            stop.set(true);
            ticker.await.unwrap();
        })
        .unwrap();
}

#[test]
fn a_thousand_jobs_on_four_threads_all_complete_never_more_than_four_at_once() {
    let pool = BlockingPool::new(4, Duration::from_secs(10));
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    quiet()
        .block_on(async {
            let handles: Vec<_> = (0..1_000u64)
                .map(|i| {
                    let running = running.clone();
                    let most = most.clone();
                    pool.spawn(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        // Long enough for jobs to overlap and queue.
                        thread::sleep(Duration::from_micros(200));
                        running.fetch_sub(1, Ordering::SeqCst);
                        i * i
                    })
                })
                .collect();
            assert!(pool.threads() <= 4);
            for (i, handle) in (0..1_000u64).zip(handles) {
                assert_eq!(handle.await.unwrap(), i * i);
            }
        })
        .unwrap();
    let most = most.load(Ordering::SeqCst);
    assert!((1..=4).contains(&most), "{most} jobs ran at once");
    assert!(pool.threads() <= 4, "{} threads", pool.threads());
    assert_eq!(running.load(Ordering::SeqCst), 0);
}

#[test]
fn jobs_queue_first_in_first_out() {
    let pool = BlockingPool::new(1, Duration::from_secs(10));
    let order = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let order = order.clone();
            pool.spawn(move || order.lock().unwrap().push(i))
        })
        .collect();
    for handle in handles {
        futures_executor::block_on(handle).unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..100).collect::<Vec<_>>());
    assert_eq!(pool.threads(), 1);
}

#[test]
fn a_panicking_job_gives_a_panic_join_error() {
    quiet()
        .block_on(async {
            let err = spawn_blocking(|| -> u32 { panic!("blocking boom") })
                .await
                .expect_err("the job panicked");
            assert!(err.is_panic());
            assert!(!err.is_cancelled());
            assert!(err.to_string().contains("blocking boom"), "{err}");
            let payload = err.try_into_panic().unwrap();
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"blocking boom"));

            // The thread that ran it survived and keeps serving jobs.
            assert_eq!(spawn_blocking(|| 7).await.unwrap(), 7);
        })
        .unwrap();
}

#[test]
fn a_dropped_handle_lets_the_job_run_and_drops_its_result_on_the_pool_thread() {
    struct Noted(mpsc::Sender<String>);
    impl Drop for Noted {
        fn drop(&mut self) {
            let _ = self.0.send(thread_name());
        }
    }

    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let (ran_tx, ran_rx) = mpsc::channel();
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let handle = spawn_blocking(move || {
        gate_rx.recv().unwrap();
        ran_tx.send(()).unwrap();
        Noted(dropped_tx)
    });
    // Detach while the job is still blocked, then let it finish.
    drop(handle);
    gate_tx.send(()).unwrap();
    ran_rx.recv_timeout(PATIENCE).expect("the detached job ran");
    let dropped_on = dropped_rx
        .recv_timeout(PATIENCE)
        .expect("the result was dropped");
    assert!(
        dropped_on.starts_with("percore-blocking-"),
        "{dropped_on:?}"
    );
}

#[test]
fn a_job_finished_before_the_first_poll_is_ready_at_once() {
    let handle = spawn_blocking(|| String::from("done"));
    assert!(eventually(|| handle.is_finished()));
    let value = quiet().block_on(handle).unwrap().unwrap();
    assert_eq!(value, "done");
}

#[test]
fn idle_threads_exit_after_the_idle_timeout() {
    let pool = BlockingPool::new(2, Duration::from_millis(50));
    assert_eq!(pool.threads(), 0);
    // Two jobs that wait for each other and for this thread: both threads must
    // start, and they stay busy until this thread has counted them.
    let started = Arc::new(Barrier::new(3));
    let counted = Arc::new(Barrier::new(3));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let started = started.clone();
            let counted = counted.clone();
            pool.spawn(move || {
                started.wait();
                counted.wait();
            })
        })
        .collect();
    started.wait();
    assert_eq!(pool.threads(), 2);
    counted.wait();
    for handle in handles {
        futures_executor::block_on(handle).unwrap();
    }
    assert!(
        eventually(|| pool.threads() == 0),
        "{} threads left after {PATIENCE:?}",
        pool.threads()
    );

    // The pool starts threads again on demand.
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let handle = pool.spawn(move || gate_rx.recv().map(|()| 5));
    assert_eq!(pool.threads(), 1);
    gate_tx.send(()).unwrap();
    assert_eq!(futures_executor::block_on(handle).unwrap(), Ok(5));
    assert!(eventually(|| pool.threads() == 0));
}

#[test]
fn a_busy_thread_does_not_time_out() {
    let pool = BlockingPool::new(1, Duration::from_millis(20));
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let handle = pool.spawn(move || {
        started_tx.send(()).unwrap();
        gate_rx.recv().is_ok()
    });
    // Three idle timeouts pass while the job runs (a busy machine can only
    // make that longer).
    started_rx.recv_timeout(PATIENCE).expect("the job started");
    thread::sleep(Duration::from_millis(60));
    assert_eq!(pool.threads(), 1, "the busy thread is still there");
    gate_tx.send(()).unwrap();
    assert!(futures_executor::block_on(handle).unwrap());
}

#[test]
fn awaiting_works_outside_any_runtime() {
    let handle = spawn_blocking(|| 2 + 2);
    assert_eq!(futures_executor::block_on(handle).unwrap(), 4);

    // Spawned on a plain thread, awaited on another.
    let handle = thread::spawn(|| spawn_blocking(thread_name))
        .join()
        .unwrap();
    let name = thread::spawn(move || futures_executor::block_on(handle))
        .join()
        .unwrap()
        .unwrap();
    assert!(name.starts_with("percore-blocking-"), "{name:?}");
}

#[test]
fn dropping_the_pool_lets_running_and_queued_jobs_finish() {
    let pool = BlockingPool::new(1, Duration::from_secs(10));
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let done = Arc::new(AtomicUsize::new(0));
    let first = pool.spawn(move || gate_rx.recv().is_ok());
    let queued: Vec<_> = (0..10)
        .map(|i| {
            let done = done.clone();
            pool.spawn(move || {
                done.fetch_add(1, Ordering::SeqCst);
                i
            })
        })
        .collect();
    drop(pool);
    gate_tx.send(()).unwrap();
    assert!(futures_executor::block_on(first).unwrap());
    for (i, handle) in queued.into_iter().enumerate() {
        assert_eq!(futures_executor::block_on(handle).unwrap(), i);
    }
    assert_eq!(done.load(Ordering::SeqCst), 10);
}

#[test]
fn every_core_of_a_runtime_awaits_blocking_jobs() {
    let runtime = Runtime::builder()
        .cores(2)
        .stall_threshold(None)
        .build()
        .unwrap();
    let sums = runtime
        .run_on_all(|core| async move {
            let handles: Vec<_> = (0..50u64)
                .map(|i| {
                    spawn(async move {
                        spawn_blocking(move || {
                            thread::sleep(Duration::from_millis(1));
                            i
                        })
                        .await
                        .unwrap()
                    })
                })
                .collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.unwrap();
            }
            (core, sum)
        })
        .unwrap();
    assert_eq!(sums, [(0, 1225), (1, 1225)]);
}

#[test]
fn many_waiting_jobs_run_in_parallel_up_to_the_limit() {
    // Eight jobs that can only finish together: they need eight threads at once.
    let pool = BlockingPool::new(8, Duration::from_secs(10));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let barrier = barrier.clone();
            pool.spawn(move || {
                barrier.wait();
            })
        })
        .collect();
    for handle in handles {
        futures_executor::block_on(handle).unwrap();
    }
    assert_eq!(pool.threads(), 8);
}
