//! The failure classes of cancellation on files, at scale (`#[ignore]`d:
//! `ci/stress.sh` runs them with `cargo test --release -p percore-fs --test
//! scale_cancel -- --ignored`).
//!
//! Ten thousand opens polled once and dropped after the core ran them — the
//! kernel (or the blocking pool) may have opened the file: that fd must be
//! closed, not leaked — and reads dropped the same way; then a hundred
//! thousand reads dropped at pseudo-random moments. Each test checks that no
//! fd and no op-table slot is left, that reads which do finish return the
//! file's bytes, and prints its figures for the stress log.

mod util;

use std::future::{poll_fn, Future};
use std::path::Path;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use percore_fs::File;
use percore_runtime::{yield_now, Builder};
use util::Rng;

/// One core with no stall reports (the stress script loads every CPU) and no
/// injected faults whatever `PERCORE_FAULTS` says: the tests count exact outcomes.
fn runtime() -> Builder {
    Builder::new()
        .stall_threshold(None)
        .faults("none")
        .expect("`none` is a fault spec")
}

/// Polls `future` once with the calling task's waker: its SQE is pushed (or,
/// on the epoll backend, the op may be started or finished at once).
async fn poll_once<F: Future>(mut future: Pin<&mut F>) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}

/// Lets the core take one I/O turn (at most 256 yields): `yield_now` alone
/// only lets the other ready tasks run, and a core whose tasks stay ready may
/// poll them for a whole batch (128 polls) before it reaps completions or,
/// on the epoll backend, looks for finished blocking-pool work at all.
async fn turn() {
    let before = percore_runtime::stats();
    for _ in 0..256 {
        yield_now().await;
        let now = percore_runtime::stats();
        if now.enters != before.enters || now.cqes != before.cqes {
            return;
        }
    }
}

async fn turns(n: u64) {
    for _ in 0..n {
        turn().await;
    }
}

/// The open fd count once it is back to `want` (at most 2 s), else the last count.
async fn fds_back_to(want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = util::fd_count();
        if now == want || Instant::now() >= deadline {
            return now;
        }
        percore_runtime::time::sleep(Duration::from_millis(1)).await;
    }
}

/// As [`fds_back_to`], outside a runtime.
fn fds_back_to_blocking(want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = util::fd_count();
        if now == want || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn delta(now: usize, before: usize) -> isize {
    now as isize - before as isize
}

const FILE_LEN: u64 = 1 << 20;
const READ_LEN: usize = 4096;

/// Byte `pos` of the test file.
fn byte_at(pos: u64) -> u8 {
    (pos % 251) as u8
}

fn write_test_file(path: &Path) {
    let data: Vec<u8> = (0..FILE_LEN).map(byte_at).collect();
    std::fs::write(path, data).expect("the test file can be written");
}

/// Whether `buf` holds the file's bytes from `pos` (a full read: the file is
/// long enough).
fn holds_file_bytes(buf: &[u8], pos: u64) -> bool {
    buf.len() == READ_LEN
        && buf
            .iter()
            .enumerate()
            .all(|(i, &b)| b == byte_at(pos + i as u64))
}

/// Failures kept for the final assertion: every one counted, the first 20 described.
#[derive(Default)]
struct Failures {
    count: usize,
    first: Vec<String>,
}

impl Failures {
    fn add(&mut self, what: String) {
        self.count += 1;
        if self.first.len() < 20 {
            self.first.push(what);
        }
    }

    fn assert_none(&self, test: &str) {
        assert!(
            self.count == 0,
            "{test}: {} failure(s); the first:\n  {}",
            self.count,
            self.first.join("\n  ")
        );
    }
}

/// A read of the whole first block, which must give the file's bytes.
async fn check_file_reads(file: &File, failures: &mut Failures) {
    let (res, buf) = file.read_at(Vec::with_capacity(READ_LEN), 0).await;
    match res {
        Ok(n) if n == READ_LEN && holds_file_bytes(&buf, 0) => {}
        other => failures.add(format!(
            "after the rounds, a read of the first block gave {other:?}"
        )),
    }
}

#[derive(Default, Debug)]
struct OpenFigures {
    rounds: usize,
    /// Opens whose fd was already in the process's table when the future
    /// was dropped: completed, never taken; the runtime must close the fd.
    /// (On the epoll backend an open still on the blocking pool at that
    /// moment is not counted.)
    opens_completed_before_drop: usize,
    opens_ready_at_first_poll: usize,
    reads_ready_at_first_poll: usize,
    most_in_flight: usize,
    in_flight_after: usize,
    fd_delta_inside: isize,
}

#[test]
#[ignore = "scale: ci/stress.sh"]
fn ten_thousand_completed_then_dropped_opens_and_reads() {
    const ROUNDS: usize = 10_000;
    let _serial = util::serial();
    let dir = util::TempDir::new("scale-cancel-open");
    let path = dir.join("data");
    write_test_file(&path);
    let fds_before = util::fd_count();
    let started = Instant::now();
    let (f, failures) = runtime()
        .block_on(async {
            // Counted before the long-lived file is opened: once hot (64 ops),
            // it holds a slot of the core's file table, which on the epoll
            // backend is a duplicate fd, until it is closed.
            let fds_inside = util::fd_count();
            let file = File::open(&path).await.expect("open the test file");
            let mut rng = Rng::new(0x09e2);
            let mut f = OpenFigures::default();
            let mut failures = Failures::default();
            for round in 0..ROUNDS {
                // An open polled once, dropped after one or two turns of the core.
                let fds_at_start = util::fd_count();
                let mut open = Box::pin(File::open(&path));
                let polled = poll_once(open.as_mut()).await;
                turns(1 + rng.next() % 2).await;
                // A file the kernel opened is in the fd table before the drop.
                if util::fd_count() > fds_at_start {
                    f.opens_completed_before_drop += 1;
                }
                let stats = percore_runtime::stats();
                f.most_in_flight = f.most_in_flight.max(stats.in_flight);
                drop(open);
                if let Poll::Ready(res) = polled {
                    f.opens_ready_at_first_poll += 1;
                    if let Err(err) = res {
                        failures.add(format!("round {round}: an open ready at once: {err}"));
                    }
                }
                // A read polled once, dropped after zero to two turns.
                let pos = rng.next() % (FILE_LEN - READ_LEN as u64);
                let mut read = Box::pin(file.read_at(Vec::with_capacity(READ_LEN), pos));
                let polled = poll_once(read.as_mut()).await;
                turns(rng.next() % 3).await;
                drop(read);
                if let Poll::Ready((res, buf)) = polled {
                    f.reads_ready_at_first_poll += 1;
                    if !matches!(res, Ok(READ_LEN)) || !holds_file_bytes(&buf, pos) {
                        failures.add(format!(
                            "round {round}: a read at {pos} ready at once gave {res:?}"
                        ));
                    }
                }
                f.rounds += 1;
            }
            f.in_flight_after = util::settle(5_000).await;
            check_file_reads(&file, &mut failures).await;
            if let Err(err) = file.close().await {
                failures.add(format!("closing the test file: {err}"));
            }
            f.fd_delta_inside = delta(fds_back_to(fds_inside).await, fds_inside);
            (f, failures)
        })
        .expect("the runtime starts");
    let elapsed = started.elapsed();
    let fd_delta = delta(fds_back_to_blocking(fds_before), fds_before);
    println!(
        "scale: ten_thousand_completed_then_dropped_opens_and_reads: {} rounds in {elapsed:.2?}; \
         {} opens completed before the drop; fd delta {fd_delta} (inside the runtime {}); \
         in flight after {}; {f:?}",
        f.rounds, f.opens_completed_before_drop, f.fd_delta_inside, f.in_flight_after
    );
    failures.assert_none("dropped opens and reads");
    assert_eq!(f.rounds, ROUNDS, "every round ran");
    assert!(
        f.opens_completed_before_drop > 0,
        "no open had completed when it was dropped: the rounds exercised nothing"
    );
    assert_eq!(
        f.in_flight_after, 0,
        "LEAK: op-table slots in flight after the rounds settled"
    );
    assert_eq!(
        f.fd_delta_inside, 0,
        "LEAK: fds of dropped opens left open inside the runtime"
    );
    assert_eq!(fd_delta, 0, "LEAK: fds open after the runtime ended");
}

#[derive(Default, Debug)]
struct RandomFigures {
    reads: usize,
    /// By the number of waits (0 to 3) before the drop.
    by_waits: [usize; 4],
    /// Reads polled again before the drop that had finished: their bytes checked.
    finished_and_checked: usize,
    /// Reads polled again that were still in flight, then dropped.
    still_in_flight_at_drop: usize,
    most_in_flight: usize,
    in_flight_after: usize,
    driver: Option<percore_runtime::Driver>,
}

#[test]
#[ignore = "scale: ci/stress.sh"]
fn a_hundred_thousand_reads_dropped_at_random_moments() {
    const READS: usize = 100_000;
    let _serial = util::serial();
    let dir = util::TempDir::new("scale-cancel-random");
    let path = dir.join("data");
    write_test_file(&path);
    let fds_before = util::fd_count();
    let started = Instant::now();
    let (f, failures) = runtime()
        .block_on(async {
            let file = File::open(&path).await.expect("open the test file");
            let mut rng = Rng::new(0x5eed);
            let mut f = RandomFigures {
                driver: Some(percore_runtime::stats().driver),
                ..RandomFigures::default()
            };
            let mut failures = Failures::default();
            for i in 0..READS {
                let pos = rng.next() % (FILE_LEN - READ_LEN as u64);
                let mut read = Box::pin(file.read_at(Vec::with_capacity(READ_LEN), pos));
                let mut polled = poll_once(read.as_mut()).await;
                // 0 to 3 waits, each a plain yield or a turn of the core's I/O.
                let waits = (rng.next() % 4) as usize;
                f.by_waits[waits] += 1;
                for _ in 0..waits {
                    if rng.next() % 2 == 0 {
                        yield_now().await;
                    } else {
                        turn().await;
                    }
                }
                f.most_in_flight = f.most_in_flight.max(percore_runtime::stats().in_flight);
                // One read in four is polled again: if it finished, its bytes are checked.
                if polled.is_pending() && rng.next() % 4 == 0 {
                    polled = poll_once(read.as_mut()).await;
                    if polled.is_pending() {
                        f.still_in_flight_at_drop += 1;
                    }
                }
                drop(read);
                if let Poll::Ready((res, buf)) = polled {
                    f.finished_and_checked += 1;
                    if !matches!(res, Ok(READ_LEN)) || !holds_file_bytes(&buf, pos) {
                        failures.add(format!("read {i} at {pos} gave {res:?}"));
                    }
                }
                f.reads += 1;
            }
            f.in_flight_after = util::settle(5_000).await;
            check_file_reads(&file, &mut failures).await;
            (f, failures)
        })
        .expect("the runtime starts");
    let elapsed = started.elapsed();
    let fd_delta = delta(fds_back_to_blocking(fds_before), fds_before);
    println!(
        "scale: a_hundred_thousand_reads_dropped_at_random_moments: {} reads in {elapsed:.2?}; \
         in flight after {}; fd delta {fd_delta}; {f:?}",
        f.reads, f.in_flight_after
    );
    failures.assert_none("reads dropped at random moments");
    assert_eq!(f.reads, READS, "every read ran");
    assert!(
        f.finished_and_checked > 0,
        "no read ever finished: nothing was checked"
    );
    // On io_uring a read is in flight until a turn reaps it, so some are
    // dropped unfinished; the epoll backend reads cached pages at once, so
    // there every read finishes at its first poll.
    if f.driver == Some(percore_runtime::Driver::IoUring) {
        assert!(
            f.still_in_flight_at_drop > 0,
            "no read was still in flight when dropped: the drops exercised nothing"
        );
    }
    assert_eq!(
        f.in_flight_after, 0,
        "LEAK: op-table slots in flight after the reads settled"
    );
    assert_eq!(fd_delta, 0, "LEAK: fds open after the runtime ended");
}
