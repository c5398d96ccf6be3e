//! A runtime of several pinned cores, driven from a plain thread.

use std::rc::Rc;
use std::time::Duration;

use percore_runtime::Runtime;

#[test]
fn run_on_all_runs_one_future_per_core() {
    let runtime = Runtime::builder().cores(2).pin(true).build().unwrap();
    assert_eq!(runtime.cores(), 2);
    let seen = runtime
        .run_on_all(|core| async move {
            // Futures built on the core may hold `!Send` state.
            let local = Rc::new(core);
            percore_runtime::time::sleep(Duration::from_millis(2)).await;
            (percore_runtime::current_core(), *local)
        })
        .unwrap();
    assert_eq!(seen, [(0, 0), (1, 1)]);
}

#[test]
fn run_on_targets_one_core_and_tasks_stay_there() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let core = runtime
        .run_on(1, || async {
            let inner = percore_runtime::spawn(async { percore_runtime::current_core() });
            inner.await.unwrap()
        })
        .unwrap();
    assert_eq!(core, 1);
}

#[test]
fn run_on_a_missing_core_is_an_error() {
    let runtime = Runtime::builder().cores(1).build().unwrap();
    let err = runtime
        .run_on(3, || async {})
        .expect_err("core 3 does not exist");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("core 3"), "{err}");
}

#[test]
fn a_panic_on_a_core_is_resumed_in_the_caller_and_the_core_lives_on() {
    let runtime = Runtime::builder().cores(1).build().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.run_on(0, || async { panic!("worker task panics") })
    }));
    assert!(caught.is_err());
    assert_eq!(runtime.run_on(0, || async { 5 }).unwrap(), 5);
}

#[test]
fn run_on_from_inside_a_core_is_refused() {
    let runtime = std::sync::Arc::new(Runtime::builder().cores(1).build().unwrap());
    let inner = runtime.clone();
    let refused =
        percore_runtime::run(async move { inner.run_on(0, || async {}).is_err() }).unwrap();
    assert!(refused, "blocking a core on itself would deadlock");
}

#[test]
fn dropping_the_runtime_stops_its_threads_and_drops_their_tasks() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    runtime
        .run_on_all(|_| async {
            drop(percore_runtime::spawn(percore_runtime::time::sleep(
                Duration::from_secs(3600),
            )));
        })
        .unwrap();
    let start = std::time::Instant::now();
    drop(runtime); // joins the workers: their hour-long sleepers are dropped, not awaited
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
// Handing the polled `Sleep` out of core 0 is the point of the test.
#[allow(clippy::async_yields_async)]
fn a_sleep_moved_to_another_core_leaves_that_cores_timers_alone() {
    use std::future::Future;
    let runtime = std::sync::Arc::new(Runtime::builder().cores(2).build().unwrap());
    // Core 0 polls a sleep once, registering it in core 0's wheel, then hands it over.
    let sleep = runtime
        .run_on(0, || async {
            let mut sleep = Box::pin(percore_runtime::time::sleep(Duration::from_millis(30)));
            std::future::poll_fn(|cx| {
                assert!(sleep.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
            sleep
        })
        .unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let rt = runtime.clone();
    std::thread::spawn(move || {
        let result = rt.run_on(1, move || async move {
            // Core 1's own timer (same slot and generation numbers as the moved
            // one's key in a fresh wheel) must still wake its own task.
            let own =
                percore_runtime::spawn(percore_runtime::time::sleep(Duration::from_millis(10)));
            percore_runtime::yield_now().await; // `own` registers its timer first
            sleep.await;
            own.await.is_ok()
        });
        let _ = done_tx.send(result.map_err(|e| e.to_string()));
    });
    let done = done_rx.recv_timeout(Duration::from_secs(20));
    assert_eq!(done.expect("both timers fired"), Ok(true));
}
