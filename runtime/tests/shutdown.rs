//! `Shutdown`: begun and drained on every core, guards counted, waits that
//! are dropped forgotten, and SIGTERM beginning it.

use std::sync::Mutex;
use std::time::Duration;

use percore_runtime::shutdown::Shutdown;
use percore_runtime::time::{sleep, timeout};
use percore_runtime::{spawn, yield_now, Builder, Runtime};

/// Far longer than anything here takes on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(20);

/// The SIGTERM test changes what SIGTERM does to this process: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn begun_completes_on_every_core_and_drained_waits_for_every_guard() {
    let runtime = Runtime::builder().cores(2).build().expect("two cores");
    let shutdown = Shutdown::new();
    // A guard per core, each dropped by its core's task only after `begun`.
    let handles: Vec<_> = (0..2)
        .map(|core| {
            let shutdown = shutdown.clone();
            let guard = shutdown.guard();
            runtime
                .spawn_on(core, move || async move {
                    shutdown.begun().await;
                    // Some work after the shutdown began: `drained` waits for it.
                    sleep(Duration::from_millis(5)).await;
                    drop(guard);
                    percore_runtime::current_core()
                })
                .expect("spawn")
        })
        .collect();
    assert_eq!(shutdown.active(), 2);
    assert!(!shutdown.is_begun());
    let drained = runtime
        .run_on(0, {
            let shutdown = shutdown.clone();
            move || async move {
                // Not drained before it begins, guards or not.
                assert!(timeout(Duration::from_millis(20), shutdown.drained())
                    .await
                    .is_err());
                shutdown.begin();
                shutdown.begin(); // a second call does nothing
                timeout(PATIENCE, shutdown.drained()).await.is_ok()
            }
        })
        .expect("core 0 runs");
    assert!(drained, "drained within the patience");
    assert_eq!(shutdown.active(), 0);
    for handle in handles {
        runtime
            .run_on(1, move || handle)
            .expect("core 1 runs")
            .expect("the task ended");
    }
}

#[test]
fn a_shutdown_begun_with_no_guards_is_drained_at_once_and_a_dropped_wait_is_forgotten() {
    Builder::new()
        .start_paused(true)
        .block_on(async {
            let shutdown = Shutdown::new();
            // Waits polled once and dropped leave nothing behind to wake.
            for _ in 0..1000 {
                let wait = shutdown.begun();
                assert!(timeout(Duration::from_millis(1), wait).await.is_err());
            }
            let guard = shutdown.guard();
            shutdown.begin();
            shutdown.begun().await;
            assert!(
                timeout(Duration::from_secs(60), shutdown.drained())
                    .await
                    .is_err(),
                "drained with a guard alive"
            );
            drop(guard);
            shutdown.drained().await;
            // A guard taken after the drain holds `drained` again.
            let late = shutdown.guard();
            assert!(timeout(Duration::from_secs(60), shutdown.drained())
                .await
                .is_err());
            drop(late);
            shutdown.drained().await;
        })
        .expect("the runtime starts");
}

#[test]
fn a_guard_moved_to_another_core_is_waited_for_there() {
    let runtime = Runtime::builder().cores(2).build().expect("two cores");
    let shutdown = Shutdown::new();
    let guard = shutdown.guard();
    shutdown.begin();
    let done = runtime
        .run_on(0, {
            let shutdown = shutdown.clone();
            let runtime_core1 = move || async move {
                yield_now().await;
                drop(guard);
            };
            move || async move {
                let _detached =
                    percore_runtime::spawn_on(1, runtime_core1).expect("spawn on core 1");
                timeout(PATIENCE, shutdown.drained()).await.is_ok()
            }
        })
        .expect("core 0 runs");
    assert!(done, "the guard dropped on core 1 woke core 0's drained");
}

#[test]
fn sigterm_begins_a_shutdown_that_listens_for_it_and_the_process_lives_on() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Builder::new()
        .block_on(async {
            let shutdown = Shutdown::new();
            shutdown
                .begin_on_signals()
                .expect("listen for SIGTERM and SIGINT");
            let waiter = spawn({
                let shutdown = shutdown.clone();
                async move { shutdown.begun().await }
            });
            // SAFETY: sends SIGTERM to this process, whose handler is installed.
            assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGTERM) }, 0);
            timeout(PATIENCE, waiter)
                .await
                .expect("begun after SIGTERM")
                .expect("the task ran");
            assert!(shutdown.is_begun());
        })
        .expect("the runtime starts");
}
