//! `Runtime::stats` from another thread: one entry per core, figures that
//! move while a core is busy (it never parks), up to date once a core is
//! idle, and `all_stats` from a task giving the same list.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use percore_runtime::{Runtime, Stats};

/// Reads `runtime.stats()` until `done` holds for them, for up to 20 s
/// (bounded; a loaded machine only makes it take longer).
fn wait_for(runtime: &Runtime, done: impl Fn(&[Stats]) -> bool) -> Vec<Stats> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = runtime.stats();
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn one_entry_per_core_in_core_order() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let stats = runtime.stats();
    assert_eq!(stats.len(), 2);
    for (core, entry) in stats.iter().enumerate() {
        assert_eq!(entry.core, core);
        // Known from the start: the backend the core runs on.
        assert_ne!(entry.driver, percore_runtime::Driver::Auto, "{entry:?}");
    }
}

#[test]
fn a_busy_core_publishes_without_parking() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Core 1 yields in a loop: always ready, it never parks, until told.
    let busy = runtime
        .spawn_on(1, {
            let stop = stop.clone();
            move || async move {
                let start = Instant::now();
                while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(30) {
                    percore_runtime::yield_now().await;
                }
            }
        })
        .unwrap();
    let first = wait_for(&runtime, |stats| stats[1].polls > 1_000)[1];
    let later = wait_for(&runtime, |stats| stats[1].polls > first.polls + 1_000)[1];
    stop.store(true, Ordering::Relaxed);
    futures_executor::block_on(busy).unwrap();
    assert!(first.polls > 1_000, "{first:?}");
    assert!(
        later.polls > first.polls + 1_000,
        "{first:?} then {later:?}"
    );
}

#[test]
fn an_idle_core_figures_are_exact() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let exact = runtime
        .run_on(1, || async {
            for _ in 0..10 {
                percore_runtime::time::sleep(Duration::from_millis(1)).await;
            }
            percore_runtime::stats()
        })
        .unwrap();
    // Once core 1 parks, what it published is at least what it saw inside
    // the task (the task's own last poll and its end come after).
    let stats = wait_for(&runtime, |stats| {
        stats[1].timers_fired >= exact.timers_fired && stats[1].polls > exact.polls
    });
    assert!(stats[1].timers_fired >= 10, "{:?}", stats[1]);
    assert!(
        stats[1].polls > exact.polls,
        "{exact:?} then {:?}",
        stats[1]
    );
}

#[test]
fn all_stats_from_a_task_lists_every_core() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let from_task = runtime
        .run_on(0, || async { percore_runtime::all_stats() })
        .unwrap();
    assert_eq!(from_task.len(), 2);
    assert_eq!(from_task[0].core, 0);
    assert_eq!(from_task[1].core, 1);
    assert!(
        from_task[0].spawned >= 1,
        "the calling task, exact: {from_task:?}"
    );
    // On a `run` core: just that core.
    let single = percore_runtime::run(async { percore_runtime::all_stats() }).unwrap();
    assert_eq!(single.len(), 1);
}

#[test]
fn task_bytes_count_a_live_tasks_cell_and_give_it_back() {
    percore_runtime::run(async {
        let before = percore_runtime::stats().task_bytes;
        let held = [7u8; 512];
        let task = percore_runtime::spawn(async move {
            std::future::pending::<()>().await;
            held.len()
        });
        let alive = percore_runtime::stats().task_bytes;
        if cfg!(percore_no_arena) {
            // Every task on the global heap: the arena counts none.
            assert_eq!(alive, 0);
        } else {
            assert!(
                alive >= before + 512,
                "a task holding 512 bytes adds at least that: {before} -> {alive}"
            );
        }
        task.abort();
        drop(task);
        let start = Instant::now();
        while percore_runtime::stats().task_bytes != before {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the cell never came back"
            );
            percore_runtime::yield_now().await;
        }
    })
    .unwrap();
}
