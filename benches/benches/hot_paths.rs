//! Criterion micro-benchmarks of single hot paths, percore beside tokio
//! (current-thread) and monoio (io_uring) where monoio has the same operation,
//! and a cross-core message round trip beside tokio's multi-thread runtime and
//! crossbeam between plain threads.
//!
//! Every measurement uses `iter_custom` and times `iters` repetitions from
//! inside a running runtime, so runtime construction (one per sample) is never
//! counted. Paths measured inside a task run in a spawned task, not the
//! `block_on` root, because that is where application code runs.

use std::future::{poll_fn, Future};
use std::hint::black_box;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};

/// Times `body(iters)` inside a fresh percore runtime.
fn on_percore<F, Fut>(body: F) -> Duration
where
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = Duration> + 'static,
{
    percore::Builder::new()
        .stall_threshold(None)
        .block_on(async move {
            percore::spawn(body())
                .await
                .expect("percore bench task failed")
        })
        .expect("percore runtime failed to start")
}

/// Times `body(iters)` inside a fresh tokio current-thread runtime.
fn on_tokio<F, Fut>(body: F) -> Duration
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Duration> + Send + 'static,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime failed to build")
        .block_on(async move { tokio::spawn(body()).await.expect("tokio bench task failed") })
}

/// Times `body(iters)` inside a fresh monoio io_uring runtime.
fn on_monoio<F, Fut>(body: F) -> Duration
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Duration> + 'static,
{
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio io_uring runtime failed to build")
        .block_on(async move { monoio::spawn(body()).await })
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    // Short windows: the whole file must finish in well under two minutes on a
    // small shared machine; these paths are nanoseconds each, so 2 s is plenty.
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group
}

/// Polls `future` exactly once (registering its waker), then drops it.
async fn poll_once_then_drop<F: Future>(future: F) {
    let mut future = pin!(future);
    poll_fn(|cx| {
        let _ = future.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await;
}

/// A single yield for monoio, which has no public `yield_now`: wake ourselves
/// and return Pending once, which is what the others' `yield_now` does too.
async fn monoio_yield() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

fn spawn_join(c: &mut Criterion) {
    let mut group = configure(c, "spawn_join_one");
    group.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            on_percore(move || async move {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(percore::spawn(async move { i }).await.expect("task failed"));
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            on_tokio(move || async move {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(tokio::spawn(async move { i }).await.expect("task failed"));
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("monoio", |b| {
        b.iter_custom(|iters| {
            on_monoio(move || async move {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(monoio::spawn(async move { i }).await);
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn yield_now(c: &mut Criterion) {
    let mut group = configure(c, "yield_now");
    group.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            on_percore(move || async move {
                let start = Instant::now();
                for _ in 0..iters {
                    percore::yield_now().await;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            on_tokio(move || async move {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::task::yield_now().await;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("monoio (wake_by_ref+Pending)", |b| {
        b.iter_custom(|iters| {
            on_monoio(move || async move {
                let start = Instant::now();
                for _ in 0..iters {
                    monoio_yield().await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn sleep_zero(c: &mut Criterion) {
    let mut group = configure(c, "sleep_zero");
    group.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            on_percore(move || async move {
                let start = Instant::now();
                for _ in 0..iters {
                    percore::time::sleep(Duration::ZERO).await;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            on_tokio(move || async move {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::time::sleep(Duration::ZERO).await;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("monoio", |b| {
        b.iter_custom(|iters| {
            on_monoio(move || async move {
                let start = Instant::now();
                for _ in 0..iters {
                    monoio::time::sleep(Duration::ZERO).await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

/// A timer far in the future is registered by its first poll and removed by
/// its drop: the cost `timeout()` pays when the work wins.
fn timer_insert_cancel(c: &mut Criterion) {
    const FAR: Duration = Duration::from_secs(60);
    let mut group = configure(c, "timer_insert_cancel");
    group.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            on_percore(move || async move {
                let start = Instant::now();
                for _ in 0..iters {
                    poll_once_then_drop(percore::time::sleep(FAR)).await;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            on_tokio(move || async move {
                let start = Instant::now();
                for _ in 0..iters {
                    poll_once_then_drop(tokio::time::sleep(FAR)).await;
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("monoio", |b| {
        b.iter_custom(|iters| {
            on_monoio(move || async move {
                let start = Instant::now();
                for _ in 0..iters {
                    poll_once_then_drop(monoio::time::sleep(FAR)).await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

/// One io_uring NOP submitted and completed. Neither tokio nor monoio exposes
/// a NOP, so the baseline is the io-uring crate used directly and blockingly
/// (push, `submit_and_wait(1)`, pop): the syscall floor percore's op path sits on.
fn nop(c: &mut Criterion) {
    let mut group = configure(c, "nop_submit_complete");
    group.bench_function("percore", |b| {
        b.iter_custom(|iters| {
            on_percore(move || async move {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(
                        percore::Op::new(percore::op::Nop::new())
                            .await
                            .expect("NOP failed"),
                    );
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("raw io-uring (blocking)", |b| {
        let mut ring = io_uring::IoUring::new(8).expect("io_uring setup failed");
        b.iter_custom(|iters| {
            let nop = io_uring::opcode::Nop::new().build();
            let start = Instant::now();
            for _ in 0..iters {
                // SAFETY: a NOP entry points at no memory.
                unsafe { ring.submission().push(&nop).expect("submission queue full") };
                ring.submit_and_wait(1).expect("io_uring_enter failed");
                let cqe = ring.completion().next().expect("no completion after wait");
                black_box(cqe.result());
            }
            start.elapsed()
        })
    });
    group.finish();
}

/// One message to another core and its answer: percore's `spsc` between two
/// runtime cores, tokio's `mpsc` between two tasks of a 2-worker multi-thread
/// runtime, crossbeam's `bounded` between two plain threads. Idle sides park
/// (no spinning configured anywhere), so this is the wake-a-parked-core path.
fn cross_core_message(c: &mut Criterion) {
    let mut group = configure(c, "cross_core_round_trip");
    group.bench_function("percore spsc", |b| {
        b.iter_custom(|iters| {
            let runtime = percore::Runtime::builder()
                .cores(2)
                .stall_threshold(None)
                .build()
                .expect("percore runtime failed to start");
            let (mut to_b, mut at_b) = percore::channel::spsc::channel::<u64>(64);
            let (mut to_a, mut at_a) = percore::channel::spsc::channel::<u64>(64);
            let echo = runtime
                .spawn_on(1, move || async move {
                    while let Some(n) = at_b.recv().await {
                        if to_a.send(n + 1).await.is_err() {
                            break;
                        }
                    }
                })
                .expect("core 1");
            let elapsed = runtime
                .run_on(0, move || async move {
                    let start = Instant::now();
                    for i in 0..iters {
                        to_b.send(i).await.expect("echo side alive");
                        let back = at_a.recv().await.expect("echo side alive");
                        assert_eq!(back, i + 1);
                    }
                    start.elapsed()
                })
                .expect("core 0");
            drop(echo);
            elapsed
        })
    });
    group.bench_function("tokio mpsc (multi-thread, 2 workers)", |b| {
        b.iter_custom(|iters| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .expect("tokio runtime failed to build");
            runtime.block_on(async move {
                let (to_b, mut at_b) = tokio::sync::mpsc::channel::<u64>(64);
                let (to_a, mut at_a) = tokio::sync::mpsc::channel::<u64>(64);
                tokio::spawn(async move {
                    while let Some(n) = at_b.recv().await {
                        if to_a.send(n + 1).await.is_err() {
                            break;
                        }
                    }
                });
                let start = Instant::now();
                for i in 0..iters {
                    to_b.send(i).await.expect("echo side alive");
                    let back = at_a.recv().await.expect("echo side alive");
                    assert_eq!(back, i + 1);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("crossbeam bounded (2 threads)", |b| {
        b.iter_custom(|iters| {
            let (to_b, at_b) = crossbeam_channel::bounded::<u64>(64);
            let (to_a, at_a) = crossbeam_channel::bounded::<u64>(64);
            let echo = std::thread::spawn(move || {
                while let Ok(n) = at_b.recv() {
                    if to_a.send(n + 1).is_err() {
                        break;
                    }
                }
            });
            let start = Instant::now();
            for i in 0..iters {
                to_b.send(i).expect("echo side alive");
                let back = at_a.recv().expect("echo side alive");
                assert_eq!(back, i + 1);
            }
            let elapsed = start.elapsed();
            drop(to_b);
            echo.join().expect("echo thread");
            elapsed
        })
    });
    group.finish();
}

criterion_group!(
    hot_paths,
    spawn_join,
    yield_now,
    sleep_zero,
    timer_insert_cancel,
    nop,
    cross_core_message
);
criterion_main!(hot_paths);
