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
//! One warm-up round runs first and is printed but not counted: the first
//! runtime on a thread faults in fresh memory, which later ones (of every
//! runtime here) reuse. The runtimes alternate within each round (the starting
//! one rotates) so drift on a shared, noisy machine hits all of them alike. Prints the median
//! and minimum per runtime, the ratios, and the project's targets; per round,
//! also the minor page faults the timed part took (this thread's, from
//! `getrusage`), which do not depend on how busy the machine is.
//!
//! A filter argument runs only the workloads whose name contains it:
//! `cargo bench -p percore-bench --bench runtime_compare -- spawn`.

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

/// One timed run: wall time and the minor page faults this thread took.
#[derive(Clone, Copy, Default)]
struct Sample {
    time: Duration,
    faults: u64,
}

/// The minor page faults this thread has taken so far (0 if `getrusage` fails).
fn minor_faults() -> u64 {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return 0;
    }
    u64::try_from(usage.ru_minflt).unwrap_or(0)
}

/// Starts timing (and counting faults) inside a runtime.
struct Timer {
    start: Instant,
    faults: u64,
}

impl Timer {
    fn start() -> Timer {
        Timer {
            faults: minor_faults(),
            start: Instant::now(),
        }
    }

    fn stop(self) -> Sample {
        let time = self.start.elapsed();
        Sample {
            time,
            faults: minor_faults() - self.faults,
        }
    }
}

fn sleep_duration(i: u64) -> Duration {
    Duration::from_millis(1 + i % 100)
}

fn percore_spawn_join(tasks: u64) -> Sample {
    percore::Builder::new()
        // One poll spawns a million tasks; that is the workload, not a stall.
        .stall_threshold(None)
        .block_on(async {
            let timer = Timer::start();
            let handles: Vec<_> = (0..tasks)
                .map(|i| percore::spawn(async move { i }))
                .collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.expect("percore task failed");
            }
            let sample = timer.stop();
            assert_eq!(sum, task_sum(tasks), "percore: wrong sum");
            sample
        })
        .expect("percore runtime failed to start")
}

fn percore_sleeps(sleeps: u64) -> Sample {
    percore::Builder::new()
        .stall_threshold(None)
        .block_on(async {
            let timer = Timer::start();
            let handles: Vec<_> = (0..sleeps)
                .map(|i| {
                    percore::spawn(async move { percore::time::sleep(sleep_duration(i)).await })
                })
                .collect();
            for handle in handles {
                handle.await.expect("percore sleep task failed");
            }
            timer.stop()
        })
        .expect("percore runtime failed to start")
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime failed to build")
}

fn tokio_spawn_join(tasks: u64) -> Sample {
    tokio_runtime().block_on(async {
        let timer = Timer::start();
        let handles: Vec<_> = (0..tasks).map(|i| tokio::spawn(async move { i })).collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.expect("tokio task failed");
        }
        let sample = timer.stop();
        assert_eq!(sum, task_sum(tasks), "tokio: wrong sum");
        sample
    })
}

fn tokio_sleeps(sleeps: u64) -> Sample {
    tokio_runtime().block_on(async {
        let timer = Timer::start();
        let handles: Vec<_> = (0..sleeps)
            .map(|i| tokio::spawn(async move { tokio::time::sleep(sleep_duration(i)).await }))
            .collect();
        for handle in handles {
            handle.await.expect("tokio sleep task failed");
        }
        timer.stop()
    })
}

type MonoioRuntime = monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>;

fn monoio_runtime() -> MonoioRuntime {
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio io_uring runtime failed to build")
}

fn monoio_spawn_join(tasks: u64) -> Sample {
    monoio_runtime().block_on(async {
        let timer = Timer::start();
        let handles: Vec<_> = (0..tasks)
            .map(|i| monoio::spawn(async move { i }))
            .collect();
        let mut sum = 0;
        for handle in handles {
            // monoio's JoinHandle yields the output directly (no JoinError).
            sum += handle.await;
        }
        let sample = timer.stop();
        assert_eq!(sum, task_sum(tasks), "monoio: wrong sum");
        sample
    })
}

fn monoio_sleeps(sleeps: u64) -> Sample {
    monoio_runtime().block_on(async {
        let timer = Timer::start();
        let handles: Vec<_> = (0..sleeps)
            .map(|i| monoio::spawn(async move { monoio::time::sleep(sleep_duration(i)).await }))
            .collect();
        for handle in handles {
            handle.await;
        }
        timer.stop()
    })
}

fn spawn_join(rt: Rt, tasks: u64) -> Sample {
    match rt {
        Rt::Percore => percore_spawn_join(tasks),
        Rt::Tokio => tokio_spawn_join(tasks),
        Rt::Monoio => monoio_spawn_join(tasks),
    }
}

fn sleeps(rt: Rt, sleeps: u64) -> Sample {
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
fn print_workload(title: &str, samples: &[Vec<Sample>; 3]) -> [Summary; 3] {
    let times = |i: usize| samples[i].iter().map(|s| s.time).collect::<Vec<_>>();
    let summaries = [0, 1, 2].map(|i| summarize(times(i)));
    println!("{title}");
    println!(
        "  {:<8}  {:>11}  {:>11}  {:>11}  {:>14}",
        "runtime", "median", "min", "max", "faults/round"
    );
    for (i, (rt, s)) in RUNTIMES.iter().zip(&summaries).enumerate() {
        let max = times(i).into_iter().max().unwrap_or_default();
        let mut faults: Vec<u64> = samples[i].iter().map(|s| s.faults).collect();
        faults.sort_unstable();
        let median_faults = faults.get(faults.len() / 2).copied().unwrap_or(0);
        println!(
            "  {:<8}  {:>11}  {:>11}  {:>11}  {:>14}",
            rt.name(),
            ms(s.median),
            ms(s.min),
            ms(max),
            count(median_faults)
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

/// One round: spawn+join (if `tasks` is given) on every runtime, then the
/// sleeps (if `sleeps` is given); the runtime that starts rotates with `round`
/// so no runtime always runs on a cold (or warm) heap. Samples in RUNTIMES order.
fn run_round(round: usize, tasks: Option<u64>, sleeps: Option<u64>) -> [Option<[Sample; 3]>; 2] {
    let order = (0..RUNTIMES.len()).map(|k| (round + k) % RUNTIMES.len());
    let spawn = tasks.map(|tasks| {
        let mut samples = [Sample::default(); 3];
        for i in order.clone() {
            samples[i] = spawn_join(RUNTIMES[i], tasks);
        }
        samples
    });
    let sleep = sleeps.map(|n| {
        let mut samples = [Sample::default(); 3];
        for i in order.clone() {
            samples[i] = self::sleeps(RUNTIMES[i], n);
        }
        samples
    });
    [spawn, sleep]
}

/// Prints a round's line per workload: ms and minor faults per runtime.
fn print_round(label: &str, results: &[Option<[Sample; 3]>; 2]) {
    for (name, samples) in ["spawn+join", "sleeps"].into_iter().zip(results) {
        let Some(samples) = samples else { continue };
        let cells: Vec<String> = samples
            .iter()
            .map(|s| format!("{:8.2} ({:>6})", s.time.as_secs_f64() * 1e3, s.faults))
            .collect();
        println!("  {label} {name:<10}  {}", cells.join("  "));
    }
}

fn target_line(what: &str, value: f64, limit: f64) {
    let verdict = if value <= limit { "PASS" } else { "MISS" };
    println!("  {what:<34} {value:.2}x (target <= {limit:.1}x)  {verdict}");
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and then
    // a small smoke round checks the workloads instead of benchmarking them.
    // The first other argument that is not a flag is a filter on workload names.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let filter = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .unwrap_or_default();
    let run_spawn = "spawn+join".contains(filter.as_str());
    let run_sleeps = "sleeps".contains(filter.as_str());
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
    if run_spawn {
        println!(
            "  spawn+join: {} tasks, handles kept, awaited in order",
            count(tasks)
        );
    }
    if run_sleeps {
        println!(
            "  sleeps:     {} tasks, task i sleeps 1 + i % 100 ms, first spawn to last completion",
            count(n_sleeps)
        );
    }
    println!("  per round, ms (minor faults):  percore            tokio             monoio");

    // The first runtime on a thread maps and faults in fresh memory (so does
    // the heap the peers allocate from): one warm-up round, printed but left
    // out of the figures, then the measured rounds. A smoke run skips it.
    let spawn_tasks = run_spawn.then_some(tasks);
    let sleep_tasks = run_sleeps.then_some(n_sleeps);
    if benchmarking {
        print_round("warm-up  ", &run_round(0, spawn_tasks, sleep_tasks));
    }
    let mut spawn_samples: [Vec<Sample>; 3] = Default::default();
    let mut sleep_samples: [Vec<Sample>; 3] = Default::default();
    for round in 0..rounds {
        let results = run_round(round, spawn_tasks, sleep_tasks);
        // One line per round and workload, so a noisy round is visible next to
        // the medians.
        print_round(&format!("round {}/{rounds}", round + 1), &results);
        for (samples, result) in [&mut spawn_samples, &mut sleep_samples]
            .into_iter()
            .zip(results)
        {
            for (samples, sample) in samples.iter_mut().zip(result.into_iter().flatten()) {
                samples.push(sample);
            }
        }
    }
    println!();

    let spawn = run_spawn.then(|| {
        print_workload(
            &format!("spawn+join {} tasks", count(tasks)),
            &spawn_samples,
        )
    });
    let sleep = run_sleeps.then(|| {
        print_workload(
            &format!("{} concurrent sleeps", count(n_sleeps)),
            &sleep_samples,
        )
    });

    if !benchmarking {
        // Tiny sizes measure setup, not throughput; a verdict would mislead.
        println!("targets: not judged in a smoke run");
        return;
    }
    println!("targets (medians)");
    if let Some([sp, _, sm]) = spawn {
        target_line(
            "spawn+join percore/monoio",
            ratio(sp.median, sm.median),
            0.9,
        );
    }
    if let Some([lp, lt, _]) = sleep {
        target_line("sleeps percore/tokio", ratio(lp.median, lt.median), 0.9);
    }
}
