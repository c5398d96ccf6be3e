//! Two cores talking over bounded channels: percore's `spsc` against tokio's
//! `mpsc` (multi-thread runtime, 2 workers) and crossbeam's `bounded` (two
//! plain threads, blocking calls), in one process, round by round.
//!
//! Two measurements, each on fresh runtimes, threads and channels per run
//! (built outside the timed region; the clock starts only once both sides
//! have shown they are running):
//! - round-trip latency: side A sends a u64, side B receives it and sends it
//!   back plus one, A receives it; 100,000 round trips over two channels of
//!   capacity 64; ns per round trip;
//! - throughput: 10,000,000 u64 from A to B over one channel of capacity
//!   1,024; B sums them and acknowledges the sum over a second channel; the
//!   clock stops at the acknowledgement; million messages per second.
//!
//! Side A runs on the first CPU this process may use, side B on the second:
//! percore through `Runtime::builder().cores(2).pin(true)` (A on core 0, B on
//! core 1), crossbeam's two threads and tokio's two workers through
//! `sched_setaffinity`. Tokio's scheduler decides which worker polls which
//! task: a task woken from a worker goes to that worker's LIFO slot, so in
//! the ping-pong both tasks mostly run on one thread and few round trips
//! cross a core (a read of it, not a fault of the bench).
//!
//! How each side waits is part of what is measured: an idle percore core
//! parks in `io_uring_enter` at once (no spinning) and is woken by an
//! `IORING_OP_MSG_RING` that rides on the other core's next enter; an idle tokio worker parks on a futex;
//! crossbeam spins and yields for a while before it parks on a futex.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use percore::channel::spsc;

mod common;
use common::{allowed_cpus, count, pin_to, summarize};

/// Sizes of one run of the comparison.
#[derive(Clone, Copy)]
struct Config {
    rounds: usize,
    round_trips: u64,
    messages: u64,
}

/// What `cargo bench` runs.
const FULL: Config = Config {
    rounds: 7,
    round_trips: 100_000,
    messages: 10_000_000,
};

/// What `cargo test --benches` runs (no `--bench` argument): one small round,
/// enough to check every contender gives the right answers, in well under a
/// second.
const SMOKE: Config = Config {
    rounds: 1,
    round_trips: 1_000,
    messages: 100_000,
};

/// Capacity of each of the two ping-pong channels.
const LATENCY_CAPACITY: usize = 64;
/// Capacity of the throughput channel.
const THROUGHPUT_CAPACITY: usize = 1024;
/// A run that takes longer than this is taken as hung: the process says
/// which one and exits with status 1 rather than wait forever.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// Expected sum of the throughput messages (0 + 1 + ... + messages-1).
fn message_sum(messages: u64) -> u64 {
    messages * messages.saturating_sub(1) / 2
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    Percore,
    /// percore with `spin_before_park(SPIN)`: idle cores poll before parking.
    PercoreSpin,
    Tokio,
    Crossbeam,
}

const CONTENDERS: [Contender; 4] = [
    Contender::Percore,
    Contender::PercoreSpin,
    Contender::Tokio,
    Contender::Crossbeam,
];

/// How long `percore+spin` lets an idle core poll before parking.
const SPIN: Duration = Duration::from_micros(50);

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Percore => "percore",
            Contender::PercoreSpin => "percore+spin",
            Contender::Tokio => "tokio",
            Contender::Crossbeam => "crossbeam",
        }
    }
}

// ---------------------------------------------------------------- percore

fn percore_runtime(spin: Duration) -> percore::Runtime {
    percore::Runtime::builder()
        .cores(2)
        .spin_before_park(spin)
        .pin(true)
        // The throughput receiver can stay ready for many polls in a row;
        // that is the workload, not a stall.
        .stall_threshold(None)
        .build()
        .expect("percore runtime failed to start")
}

fn percore_ping_pong(round_trips: u64, spin: Duration) -> Duration {
    let runtime = percore_runtime(spin);
    let (mut to_b, mut from_a) = spsc::channel::<u64>(LATENCY_CAPACITY);
    let (mut to_a, mut from_b) = spsc::channel::<u64>(LATENCY_CAPACITY);
    let echo = runtime
        .spawn_on(1, move || async move {
            assert_eq!(percore::current_core(), 1, "percore: B not on core 1");
            // One handshake, then the timed round trips.
            for _ in 0..=round_trips {
                let v = from_a.recv().await.expect("percore: A hung up early");
                to_a.send(v + 1).await.expect("percore: A hung up early");
            }
        })
        .expect("percore: spawn_on(1) failed");
    runtime
        .run_on(0, move || async move {
            assert_eq!(percore::current_core(), 0, "percore: A not on core 0");
            to_b.send(0).await.expect("percore: B hung up early");
            assert_eq!(from_b.recv().await, Some(1), "percore: bad handshake");
            let start = Instant::now();
            for i in 1..=round_trips {
                to_b.send(i).await.expect("percore: B hung up early");
                let back = from_b.recv().await.expect("percore: B hung up early");
                assert_eq!(back, i + 1, "percore: wrong echo");
            }
            let elapsed = start.elapsed();
            echo.await.expect("percore: echo task failed");
            elapsed
        })
        .expect("percore: run_on(0) failed")
}

fn percore_stream(messages: u64, spin: Duration) -> Duration {
    let runtime = percore_runtime(spin);
    let (mut data_tx, mut data_rx) = spsc::channel::<u64>(THROUGHPUT_CAPACITY);
    let (mut ack_tx, mut ack_rx) = spsc::channel::<u64>(1);
    let sink = runtime
        .spawn_on(1, move || async move {
            assert_eq!(percore::current_core(), 1, "percore: B not on core 1");
            ack_tx.send(0).await.expect("percore: A hung up early");
            let mut sum = 0u64;
            for _ in 0..messages {
                sum += data_rx.recv().await.expect("percore: A hung up early");
            }
            ack_tx.send(sum).await.expect("percore: A hung up early");
        })
        .expect("percore: spawn_on(1) failed");
    runtime
        .run_on(0, move || async move {
            assert_eq!(percore::current_core(), 0, "percore: A not on core 0");
            assert_eq!(ack_rx.recv().await, Some(0), "percore: bad handshake");
            let start = Instant::now();
            for i in 0..messages {
                data_tx.send(i).await.expect("percore: B hung up early");
            }
            let sum = ack_rx.recv().await.expect("percore: B hung up early");
            let elapsed = start.elapsed();
            assert_eq!(sum, message_sum(messages), "percore: wrong sum");
            sink.await.expect("percore: sink task failed");
            elapsed
        })
        .expect("percore: run_on(0) failed")
}

// ---------------------------------------------------------------- tokio

/// A multi-thread runtime with 2 workers, pinned to `cpus[0]` and `cpus[1]`
/// in the order they start.
fn tokio_runtime(cpus: &[usize]) -> tokio::runtime::Runtime {
    let cpus: Arc<[usize]> = cpus.into();
    let started = AtomicUsize::new(0);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(move || {
            let i = started.fetch_add(1, Ordering::Relaxed);
            pin_to(cpus[i % cpus.len()]);
        })
        .build()
        .expect("tokio runtime failed to build")
}

fn tokio_ping_pong(round_trips: u64, cpus: &[usize]) -> Duration {
    use tokio::sync::mpsc;
    let runtime = tokio_runtime(cpus);
    let (to_b, mut from_a) = mpsc::channel::<u64>(LATENCY_CAPACITY);
    let (to_a, mut from_b) = mpsc::channel::<u64>(LATENCY_CAPACITY);
    let echo = runtime.spawn(async move {
        for _ in 0..=round_trips {
            let v = from_a.recv().await.expect("tokio: A hung up early");
            to_a.send(v + 1).await.expect("tokio: A hung up early");
        }
    });
    let ping = runtime.spawn(async move {
        to_b.send(0).await.expect("tokio: B hung up early");
        assert_eq!(from_b.recv().await, Some(1), "tokio: bad handshake");
        let start = Instant::now();
        for i in 1..=round_trips {
            to_b.send(i).await.expect("tokio: B hung up early");
            let back = from_b.recv().await.expect("tokio: B hung up early");
            assert_eq!(back, i + 1, "tokio: wrong echo");
        }
        start.elapsed()
    });
    runtime.block_on(async {
        let elapsed = ping.await.expect("tokio: ping task failed");
        echo.await.expect("tokio: echo task failed");
        elapsed
    })
}

fn tokio_stream(messages: u64, cpus: &[usize]) -> Duration {
    use tokio::sync::mpsc;
    let runtime = tokio_runtime(cpus);
    let (data_tx, mut data_rx) = mpsc::channel::<u64>(THROUGHPUT_CAPACITY);
    let (ack_tx, mut ack_rx) = mpsc::channel::<u64>(1);
    let sink = runtime.spawn(async move {
        ack_tx.send(0).await.expect("tokio: A hung up early");
        let mut sum = 0u64;
        for _ in 0..messages {
            sum += data_rx.recv().await.expect("tokio: A hung up early");
        }
        ack_tx.send(sum).await.expect("tokio: A hung up early");
    });
    let source = runtime.spawn(async move {
        assert_eq!(ack_rx.recv().await, Some(0), "tokio: bad handshake");
        let start = Instant::now();
        for i in 0..messages {
            data_tx.send(i).await.expect("tokio: B hung up early");
        }
        let sum = ack_rx.recv().await.expect("tokio: B hung up early");
        let elapsed = start.elapsed();
        assert_eq!(sum, message_sum(messages), "tokio: wrong sum");
        elapsed
    });
    runtime.block_on(async {
        let elapsed = source.await.expect("tokio: source task failed");
        sink.await.expect("tokio: sink task failed");
        elapsed
    })
}

// ---------------------------------------------------------------- crossbeam

fn crossbeam_ping_pong(round_trips: u64, cpus: &[usize]) -> Duration {
    use crossbeam_channel::bounded;
    let (to_b, from_a) = bounded::<u64>(LATENCY_CAPACITY);
    let (to_a, from_b) = bounded::<u64>(LATENCY_CAPACITY);
    let (cpu_a, cpu_b) = (cpus[0], cpus[1 % cpus.len()]);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            pin_to(cpu_b);
            for _ in 0..=round_trips {
                let v = from_a.recv().expect("crossbeam: A hung up early");
                to_a.send(v + 1).expect("crossbeam: A hung up early");
            }
        });
        scope
            .spawn(move || {
                pin_to(cpu_a);
                to_b.send(0).expect("crossbeam: B hung up early");
                assert_eq!(from_b.recv().ok(), Some(1), "crossbeam: bad handshake");
                let start = Instant::now();
                for i in 1..=round_trips {
                    to_b.send(i).expect("crossbeam: B hung up early");
                    let back = from_b.recv().expect("crossbeam: B hung up early");
                    assert_eq!(back, i + 1, "crossbeam: wrong echo");
                }
                start.elapsed()
            })
            .join()
            .expect("crossbeam: ping thread panicked")
    })
}

fn crossbeam_stream(messages: u64, cpus: &[usize]) -> Duration {
    use crossbeam_channel::bounded;
    let (data_tx, data_rx) = bounded::<u64>(THROUGHPUT_CAPACITY);
    let (ack_tx, ack_rx) = bounded::<u64>(1);
    let (cpu_a, cpu_b) = (cpus[0], cpus[1 % cpus.len()]);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            pin_to(cpu_b);
            ack_tx.send(0).expect("crossbeam: A hung up early");
            let mut sum = 0u64;
            for _ in 0..messages {
                sum += data_rx.recv().expect("crossbeam: A hung up early");
            }
            ack_tx.send(sum).expect("crossbeam: A hung up early");
        });
        scope
            .spawn(move || {
                pin_to(cpu_a);
                assert_eq!(ack_rx.recv().ok(), Some(0), "crossbeam: bad handshake");
                let start = Instant::now();
                for i in 0..messages {
                    data_tx.send(i).expect("crossbeam: B hung up early");
                }
                let sum = ack_rx.recv().expect("crossbeam: B hung up early");
                let elapsed = start.elapsed();
                assert_eq!(sum, message_sum(messages), "crossbeam: wrong sum");
                elapsed
            })
            .join()
            .expect("crossbeam: source thread panicked")
    })
}

// ---------------------------------------------------------------- harness

fn ping_pong(contender: Contender, round_trips: u64, cpus: &[usize]) -> Duration {
    guarded(contender, "ping-pong", || match contender {
        Contender::Percore => percore_ping_pong(round_trips, Duration::ZERO),
        Contender::PercoreSpin => percore_ping_pong(round_trips, SPIN),
        Contender::Tokio => tokio_ping_pong(round_trips, cpus),
        Contender::Crossbeam => crossbeam_ping_pong(round_trips, cpus),
    })
}

fn stream(contender: Contender, messages: u64, cpus: &[usize]) -> Duration {
    guarded(contender, "throughput", || match contender {
        Contender::Percore => percore_stream(messages, Duration::ZERO),
        Contender::PercoreSpin => percore_stream(messages, SPIN),
        Contender::Tokio => tokio_stream(messages, cpus),
        Contender::Crossbeam => crossbeam_stream(messages, cpus),
    })
}

/// Runs `run`; if it has not returned within [`HANG_LIMIT`], says which run
/// hung and exits the process with status 1.
fn guarded<T>(contender: Contender, what: &'static str, run: impl FnOnce() -> T) -> T {
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(HANG_LIMIT) {
            eprintln!(
                "cross_core: {} {what} did not finish within {} s: hung, giving up",
                contender.name(),
                HANG_LIMIT.as_secs()
            );
            std::process::exit(1);
        }
    });
    let output = run();
    // Disconnects the channel: the watchdog returns at once.
    drop(done);
    watchdog.join().expect("watchdog thread panicked");
    output
}

/// How a measurement turns a run's time into its figure.
#[derive(Clone, Copy)]
enum Figure {
    /// ns per round trip, lower is better.
    NsPerRoundTrip(u64),
    /// Million messages per second, higher is better.
    MessagesPerSec(u64),
}

impl Figure {
    fn of(self, d: Duration) -> f64 {
        match self {
            Figure::NsPerRoundTrip(n) => d.as_secs_f64() * 1e9 / n as f64,
            Figure::MessagesPerSec(n) => n as f64 / d.as_secs_f64() / 1e6,
        }
    }

    fn show(self, value: f64) -> String {
        match self {
            Figure::NsPerRoundTrip(_) => format!("{value:.0} ns"),
            Figure::MessagesPerSec(_) => format!("{value:.2} M/s"),
        }
    }
}

/// Prints one measurement's table: median and min time as figures, and the
/// ratios of percore's figures to the others'.
fn print_measurement(title: &str, figure: Figure, samples: &[Vec<Duration>; 4]) {
    let summaries = [0, 1, 2, 3].map(|i| summarize(samples[i].clone()));
    println!("{title}");
    // "min" is the fastest run: the lowest latency, or the highest throughput.
    println!(
        "  {:<10}  {:>12}  {:>12}",
        "contender", "median", "min time"
    );
    for (c, s) in CONTENDERS.iter().zip(&summaries) {
        println!(
            "  {:<10}  {:>12}  {:>12}",
            c.name(),
            figure.show(figure.of(s.median)),
            figure.show(figure.of(s.min))
        );
    }
    let [p, ps, t, c] = summaries;
    for (mine, ours) in [("percore", p), ("percore+spin", ps)] {
        for (name, other) in [("tokio", t), ("crossbeam", c)] {
            println!(
                "  {mine}/{name:<10} {:.2}x (median)  {:.2}x (min time)",
                figure.of(ours.median) / figure.of(other.median),
                figure.of(ours.min) / figure.of(other.min)
            );
        }
    }
    println!();
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and then
    // a small smoke round checks the workloads instead of benchmarking them.
    // Other arguments (a criterion-style filter) are ignored, not rejected.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let Config {
        rounds,
        round_trips,
        messages,
    } = if benchmarking { FULL } else { SMOKE };
    let mut cpus = allowed_cpus();
    cpus.truncate(2);
    if cpus.is_empty() {
        // Unknown: percore's `pin(true)` would fail the same way.
        eprintln!("cross_core: sched_getaffinity failed; cannot pin the two sides");
        std::process::exit(1);
    }
    println!(
        "cross_core{}: {rounds} rounds, fresh runtimes and channels per run, \
         side A on CPU {}, side B on CPU {}",
        if benchmarking {
            ""
        } else {
            " (smoke: no --bench argument)"
        },
        cpus[0],
        cpus[1 % cpus.len()],
    );
    println!(
        "  latency:    {} round trips of a u64, A -> B -> A, two channels of capacity {LATENCY_CAPACITY}",
        count(round_trips)
    );
    println!(
        "  throughput: {} u64 A -> B, capacity {THROUGHPUT_CAPACITY}, until B acknowledges the sum",
        count(messages)
    );
    println!("  percore spsc (2 pinned cores; +spin: spin_before_park(50 µs)), tokio mpsc (multi-thread, 2 pinned workers), crossbeam bounded (2 pinned threads)");
    println!("  per round:                    percore   +spin      tokio  crossbeam");

    let latency = Figure::NsPerRoundTrip(round_trips);
    let throughput = Figure::MessagesPerSec(messages);
    let mut latency_samples: [Vec<Duration>; 4] = Default::default();
    let mut throughput_samples: [Vec<Duration>; 4] = Default::default();
    for round in 0..rounds {
        // Rotate who goes first so drift on a noisy machine hits all alike.
        for k in 0..CONTENDERS.len() {
            let i = (round + k) % CONTENDERS.len();
            latency_samples[i].push(ping_pong(CONTENDERS[i], round_trips, &cpus));
        }
        for k in 0..CONTENDERS.len() {
            let i = (round + k) % CONTENDERS.len();
            throughput_samples[i].push(stream(CONTENDERS[i], messages, &cpus));
        }
        for (name, figure, samples) in [
            ("latency ns/rt", latency, &latency_samples),
            ("throughput M/s", throughput, &throughput_samples),
        ] {
            let [p, ps, t, c] = samples.each_ref().map(|s| figure.of(s[round]));
            println!(
                "  round {}/{rounds} {name:<14}  {p:10.2} {ps:10.2} {t:10.2} {c:10.2}",
                round + 1
            );
        }
    }
    println!();

    print_measurement(
        &format!(
            "round-trip latency, {} round trips: ns per round trip (lower is better; ratio < 1 means percore is faster)",
            count(round_trips)
        ),
        latency,
        &latency_samples,
    );
    print_measurement(
        &format!(
            "throughput, {} messages: million messages/s (higher is better; ratio > 1 means percore is faster)",
            count(messages)
        ),
        throughput,
        &throughput_samples,
    );
    if !benchmarking {
        println!("(smoke run: tiny sizes measure setup more than channels)");
    }
}
