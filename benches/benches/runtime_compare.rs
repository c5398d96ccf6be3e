//! percore against tokio (current-thread) and monoio (io_uring) on the same
//! thread, in one process, round by round.
//!
//! Two workloads, each timed from inside the runtime so construction and
//! teardown are excluded, on a fresh runtime per round:
//! - spawn+join: spawn 1,000,000 tasks returning a small value, keep every
//!   handle, await them in order;
//! - sleeps: 100,000 tasks, task i sleeps 1 + i % 100 ms; first spawn to last
//!   completion.
//!
//! The runtimes alternate within each round (the starting one rotates) so
//! drift on a shared, noisy machine hits all of them alike. Prints the median
//! and minimum per runtime, the ratios, and the project's targets.

use std::time::{Duration, Instant};

mod common;
use common::{allowed_cpus, count, pin_to, summarize, Summary};

/// Sizes of one run of the comparison.
#[derive(Clone, Copy)]
struct Config {
    rounds: usize,
    tasks: u64,
    sleeps: u64,
}

/// What `cargo bench` runs.
const FULL: Config = Config {
    rounds: 7,
    tasks: 1_000_000,
    sleeps: 100_000,
};

/// What `cargo test --benches` runs (no `--bench` argument): one small round,
/// enough to check every runtime gives the right answers, in well under a second.
const SMOKE: Config = Config {
    rounds: 1,
    tasks: 10_000,
    sleeps: 1_000,
};

/// Expected sum of the spawn+join outputs (0 + 1 + ... + tasks-1).
fn task_sum(tasks: u64) -> u64 {
    tasks * tasks.saturating_sub(1) / 2
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rt {
    Percore,
    Tokio,
    Monoio,
}

const RUNTIMES: [Rt; 3] = [Rt::Percore, Rt::Tokio, Rt::Monoio];

impl Rt {
    fn name(self) -> &'static str {
        match self {
            Rt::Percore => "percore",
            Rt::Tokio => "tokio",
            Rt::Monoio => "monoio",
        }
    }
}

fn sleep_duration(i: u64) -> Duration {
    Duration::from_millis(1 + i % 100)
}

fn percore_spawn_join(tasks: u64) -> Duration {
    percore::Builder::new()
        // One poll spawns a million tasks; that is the workload, not a stall.
        .stall_threshold(None)
        .block_on(async {
            let start = Instant::now();
            let handles: Vec<_> = (0..tasks)
                .map(|i| percore::spawn(async move { i }))
                .collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.expect("percore task failed");
            }
            let elapsed = start.elapsed();
            assert_eq!(sum, task_sum(tasks), "percore: wrong sum");
            elapsed
        })
        .expect("percore runtime failed to start")
}

fn percore_sleeps(sleeps: u64) -> Duration {
    percore::Builder::new()
        .stall_threshold(None)
        .block_on(async {
            let start = Instant::now();
            let handles: Vec<_> = (0..sleeps)
                .map(|i| {
                    percore::spawn(async move { percore::time::sleep(sleep_duration(i)).await })
                })
                .collect();
            for handle in handles {
                handle.await.expect("percore sleep task failed");
            }
            start.elapsed()
        })
        .expect("percore runtime failed to start")
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime failed to build")
}

fn tokio_spawn_join(tasks: u64) -> Duration {
    tokio_runtime().block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks).map(|i| tokio::spawn(async move { i })).collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.expect("tokio task failed");
        }
        let elapsed = start.elapsed();
        assert_eq!(sum, task_sum(tasks), "tokio: wrong sum");
        elapsed
    })
}

fn tokio_sleeps(sleeps: u64) -> Duration {
    tokio_runtime().block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..sleeps)
            .map(|i| tokio::spawn(async move { tokio::time::sleep(sleep_duration(i)).await }))
            .collect();
        for handle in handles {
            handle.await.expect("tokio sleep task failed");
        }
        start.elapsed()
    })
}

type MonoioRuntime = monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>;

fn monoio_runtime() -> MonoioRuntime {
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio io_uring runtime failed to build")
}

fn monoio_spawn_join(tasks: u64) -> Duration {
    monoio_runtime().block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|i| monoio::spawn(async move { i }))
            .collect();
        let mut sum = 0;
        for handle in handles {
            // monoio's JoinHandle yields the output directly (no JoinError).
            sum += handle.await;
        }
        let elapsed = start.elapsed();
        assert_eq!(sum, task_sum(tasks), "monoio: wrong sum");
        elapsed
    })
}

fn monoio_sleeps(sleeps: u64) -> Duration {
    monoio_runtime().block_on(async {
        let start = Instant::now();
        let handles: Vec<_> = (0..sleeps)
            .map(|i| monoio::spawn(async move { monoio::time::sleep(sleep_duration(i)).await }))
            .collect();
        for handle in handles {
            handle.await;
        }
        start.elapsed()
    })
}

fn spawn_join(rt: Rt, tasks: u64) -> Duration {
    match rt {
        Rt::Percore => percore_spawn_join(tasks),
        Rt::Tokio => tokio_spawn_join(tasks),
        Rt::Monoio => monoio_spawn_join(tasks),
    }
}

fn sleeps(rt: Rt, sleeps: u64) -> Duration {
    match rt {
        Rt::Percore => percore_sleeps(sleeps),
        Rt::Tokio => tokio_sleeps(sleeps),
        Rt::Monoio => monoio_sleeps(sleeps),
    }
}

/// Pins this thread to the first CPU it may run on, so every runtime runs on
/// the same core (all three are single-threaded here). Returns that CPU, or
/// `None` if the kernel refused (the bench still runs, just unpinned).
fn pin_to_one_cpu() -> Option<usize> {
    let cpu = *allowed_cpus().first()?;
    pin_to(cpu).then_some(cpu)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

/// Prints one workload's table; returns the per-runtime summaries in RUNTIMES order.
fn print_workload(title: &str, samples: &[Vec<Duration>; 3]) -> [Summary; 3] {
    let summaries = [0, 1, 2].map(|i| summarize(samples[i].clone()));
    println!("{title}");
    println!("  {:<8}  {:>11}  {:>11}", "runtime", "median", "min");
    for (rt, s) in RUNTIMES.iter().zip(&summaries) {
        println!(
            "  {:<8}  {:>11}  {:>11}",
            rt.name(),
            ms(s.median),
            ms(s.min)
        );
    }
    let [p, t, m] = summaries;
    println!(
        "  percore/tokio  {:.2}x (median)  {:.2}x (min)",
        ratio(p.median, t.median),
        ratio(p.min, t.min)
    );
    println!(
        "  percore/monoio {:.2}x (median)  {:.2}x (min)",
        ratio(p.median, m.median),
        ratio(p.min, m.min)
    );
    println!();
    summaries
}

fn target_line(what: &str, value: f64, limit: f64) {
    let verdict = if value <= limit { "PASS" } else { "MISS" };
    println!("  {what:<34} {value:.2}x (target <= {limit:.1}x)  {verdict}");
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and then
    // a small smoke round checks the workloads instead of benchmarking them.
    // Other arguments (a criterion-style filter) are ignored, not rejected.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let Config {
        rounds,
        tasks,
        sleeps: n_sleeps,
    } = if benchmarking { FULL } else { SMOKE };
    let cpu = pin_to_one_cpu();
    println!(
        "runtime_compare{}: {rounds} rounds, fresh runtime per run, one thread {}",
        if benchmarking {
            ""
        } else {
            " (smoke: no --bench argument)"
        },
        match cpu {
            Some(cpu) => format!("pinned to CPU {cpu}"),
            None => "(not pinned: sched_setaffinity refused)".to_owned(),
        }
    );
    println!(
        "  spawn+join: {} tasks, handles kept, awaited in order",
        count(tasks)
    );
    println!(
        "  sleeps:     {} tasks, task i sleeps 1 + i % 100 ms, first spawn to last completion",
        count(n_sleeps)
    );
    println!("  per round (ms):        percore    tokio   monoio");

    let mut spawn_samples: [Vec<Duration>; 3] = Default::default();
    let mut sleep_samples: [Vec<Duration>; 3] = Default::default();
    for round in 0..rounds {
        // Rotate who goes first so no runtime always runs on a cold (or warm) heap.
        for k in 0..RUNTIMES.len() {
            let i = (round + k) % RUNTIMES.len();
            spawn_samples[i].push(spawn_join(RUNTIMES[i], tasks));
        }
        for k in 0..RUNTIMES.len() {
            let i = (round + k) % RUNTIMES.len();
            sleep_samples[i].push(sleeps(RUNTIMES[i], n_sleeps));
        }
        // One line per round and workload, so a noisy round is visible next to
        // the medians.
        for (name, samples) in [("spawn+join", &spawn_samples), ("sleeps", &sleep_samples)] {
            let [p, t, m] = samples.each_ref().map(|s| s[round].as_secs_f64() * 1e3);
            println!(
                "  round {}/{rounds} {name:<10}  {p:8.2} {t:8.2} {m:8.2}",
                round + 1
            );
        }
    }
    println!();

    let [sp, _, sm] = print_workload(
        &format!("spawn+join {} tasks", count(tasks)),
        &spawn_samples,
    );
    let [lp, lt, _] = print_workload(
        &format!("{} concurrent sleeps", count(n_sleeps)),
        &sleep_samples,
    );

    if !benchmarking {
        // Tiny sizes measure setup, not throughput; a verdict would mislead.
        println!("targets: not judged in a smoke run");
        return;
    }
    println!("targets (medians)");
    target_line(
        "spawn+join percore/monoio",
        ratio(sp.median, sm.median),
        0.9,
    );
    target_line("sleeps percore/tokio", ratio(lp.median, lt.median), 0.9);
}
