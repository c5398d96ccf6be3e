//! Per-op deadlines (`Op::deadline`, `Op::timeout`): on io_uring a linked
//! timeout (`IORING_OP_LINK_TIMEOUT`) and no timer of the core's; on epoll,
//! and with a paused clock, a timer on the core's wheel. Each case runs on
//! both backends; the fault cases hold completions back so the op's CQE and
//! its timeout's arrive in every order.

mod util;

use std::future::Future;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use percore_runtime::op::{Nop, Read};
use percore_runtime::time::{self, Instant};
use percore_runtime::{spawn, stats, Builder, Driver, Op};

/// Both backends: epoll, and what this run defaults to (io_uring unless
/// `PERCORE_DRIVER` says otherwise).
const DRIVERS: [Driver; 2] = [Driver::Epoll, Driver::Auto];

fn read(fd: &OwnedFd, capacity: usize) -> Op<Read<Vec<u8>>> {
    Op::new(Read::new(
        fd.as_raw_fd(),
        Vec::with_capacity(capacity),
        u64::MAX,
    ))
}

/// Polls `fut` exactly once, with the task's waker.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx: &mut Context<'_>| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

#[test]
fn a_read_with_no_data_times_out_and_its_buffer_comes_back() {
    for driver in DRIVERS {
        Builder::new()
            .driver(driver)
            .block_on(async {
                let (rx, _tx) = util::pipe();
                let start = Instant::now();
                let deadline = start + Duration::from_millis(20);
                let mut reading = read(&rx, 64).deadline(deadline);
                assert!(poll_once(&mut reading).await.is_pending());
                let timers = stats().timers;
                let (res, buf) = reading.await;
                let elapsed = start.elapsed();
                let err = res.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::TimedOut, "{driver}: {err}");
                assert_eq!(buf.capacity(), 64, "{driver}: the buffer came back");
                assert!(buf.is_empty());
                assert!(
                    elapsed >= Duration::from_millis(20),
                    "{driver}: timed out early, after {elapsed:?}"
                );
                // Wide: only a machine stalled for seconds comes near it.
                assert!(elapsed < Duration::from_secs(10), "{driver}: {elapsed:?}");
                let on_uring = stats().driver == Driver::IoUring;
                // The mechanism: the kernel times it on io_uring (no timer
                // of the core's), the wheel on epoll.
                assert_eq!(timers, usize::from(!on_uring), "{driver}: wheel timers");
                assert_eq!(
                    util::settle(1000).await,
                    0,
                    "{driver}: both CQEs consumed, the slot freed"
                );
            })
            .unwrap();
    }
}

#[test]
fn a_read_whose_data_arrives_before_the_deadline_returns_it() {
    for driver in DRIVERS {
        Builder::new()
            .driver(driver)
            .block_on(async {
                let (rx, tx) = util::pipe();
                let writer = spawn(async move {
                    time::sleep(Duration::from_millis(5)).await;
                    util::write_fd(&tx, b"in time");
                    tx
                });
                let (res, buf) = read(&rx, 64).timeout(Duration::from_secs(30)).await;
                assert_eq!(res.unwrap(), 7, "{driver}");
                assert_eq!(&buf[..], b"in time");
                drop(writer.await.unwrap());
                assert_eq!(util::settle(1000).await, 0, "{driver}: the slot freed");
                assert_eq!(stats().timers, 0, "{driver}: no timer left behind");
            })
            .unwrap();
    }
}

#[test]
fn an_op_that_completes_at_once_returns_its_result_and_frees_its_slot() {
    for driver in DRIVERS {
        Builder::new()
            .driver(driver)
            .block_on(async {
                for _ in 0..1000 {
                    let res = Op::new(Nop::new()).timeout(Duration::from_secs(5)).await;
                    assert_eq!(res.unwrap(), 0, "{driver}");
                }
                assert_eq!(util::settle(1000).await, 0, "{driver}: every slot freed");
            })
            .unwrap();
    }
}

/// A deadline already past: the op is still tried once — a read with data
/// gets it, one without times out at once.
#[test]
fn a_deadline_already_past_tries_the_op_once() {
    for driver in DRIVERS {
        Builder::new()
            .driver(driver)
            .block_on(async {
                let (rx, tx) = util::pipe();
                let past = Instant::now();
                time::sleep(Duration::from_millis(2)).await;
                let (res, _) = read(&rx, 8).deadline(past).await;
                assert_eq!(res.unwrap_err().kind(), ErrorKind::TimedOut, "{driver}");
                util::write_fd(&tx, b"there");
                let (res, buf) = read(&rx, 8).deadline(past).await;
                assert_eq!(res.unwrap(), 5, "{driver}");
                assert_eq!(&buf[..], b"there");
                assert_eq!(util::settle(1000).await, 0, "{driver}");
            })
            .unwrap();
    }
}

/// Dropped in flight, after the op completed but before it was taken, and
/// while the timeout may have fired: the op table is back to empty, the
/// pipe loses no byte it did not hand to a dropped read.
#[test]
fn reads_with_deadlines_dropped_in_flight_leak_nothing() {
    for driver in DRIVERS {
        Builder::new()
            .driver(driver)
            .block_on(async {
                let (rx, tx) = util::pipe();
                for round in 0..1000u32 {
                    let mut reading =
                        read(&rx, 8).timeout(Duration::from_micros(u64::from(round % 7) * 50));
                    if let Poll::Ready((res, buf)) = poll_once(&mut reading).await {
                        // Done at once (epoll): a byte a dropped read left.
                        assert_eq!(res.unwrap(), buf.len(), "{driver}");
                        assert!(buf.iter().all(|&b| b == b'x'));
                        continue;
                    }
                    match round % 3 {
                        // In flight (its SQEs not even submitted).
                        0 => drop(reading),
                        // The ring turned: submitted, maybe timed out.
                        1 => {
                            percore_runtime::yield_now().await;
                            drop(reading);
                        }
                        // Completed (data, or the timeout), never taken.
                        _ => {
                            util::write_fd(&tx, b"x");
                            time::sleep(Duration::from_millis(1)).await;
                            drop(reading);
                        }
                    }
                }
                assert_eq!(util::settle(5000).await, 0, "{driver}: every slot freed");
                // The pipe still works, and holds no byte a read took.
                util::write_fd(&tx, b"end");
                let mut got = Vec::new();
                while !got.ends_with(b"end") {
                    let (n, buf) = read(&rx, 8).timeout(Duration::from_secs(5)).await;
                    n.unwrap();
                    got.extend_from_slice(&buf);
                }
                assert!(got.iter().all(|&b| b == b'x' || b"end".contains(&b)));
                assert_eq!(util::settle(1000).await, 0);
            })
            .unwrap();
    }
}

/// With the clock paused the kernel cannot time the op (it knows only real
/// time): the wheel does, in the clock's time — an hour, at once.
#[test]
fn with_a_paused_clock_the_wheel_times_the_op() {
    for driver in DRIVERS {
        Builder::new()
            .driver(driver)
            .start_paused(true)
            .block_on(async {
                let (rx, _tx) = util::pipe();
                let start = Instant::now();
                let real = std::time::Instant::now();
                let mut reading = read(&rx, 8).timeout(Duration::from_secs(3600));
                assert!(poll_once(&mut reading).await.is_pending());
                assert_eq!(stats().timers, 1, "{driver}: a timer on the wheel");
                let (res, _) = reading.await;
                assert_eq!(res.unwrap_err().kind(), ErrorKind::TimedOut, "{driver}");
                assert_eq!(start.elapsed(), Duration::from_secs(3600));
                assert!(real.elapsed() < Duration::from_secs(60));
                assert_eq!(util::settle(1000).await, 0, "{driver}");
            })
            .unwrap();
    }
}

/// Completions held back at random (the fault layer's delays, on top of
/// short reads and EINTRs): the op's CQE and its timeout's arrive in every
/// order, and every outcome — data, a timeout, a drop — still frees the
/// slot once both are in, and loses no byte.
#[test]
fn held_completions_in_any_order_still_free_every_slot() {
    for driver in DRIVERS {
        for seed in 1..=3 {
            let spec = format!("seed={seed},delay=0.5/4,short=0.25,eintr=0.1");
            let (sent, got) = Builder::new()
                .driver(driver)
                .stall_threshold(None)
                .faults(&spec)
                .unwrap()
                .block_on(async {
                    let (rx, tx) = util::pipe();
                    let (mut sent, mut got) = (0usize, Vec::new());
                    for round in 0..600u32 {
                        if round % 2 == 0 {
                            util::write_fd(&tx, &[round as u8; 3]);
                            sent += 3;
                        }
                        let mut reading =
                            read(&rx, 4).timeout(Duration::from_micros(u64::from(round % 5) * 200));
                        if round % 11 == 0 {
                            // Dropped: its bytes are lost, counted as read.
                            if let Poll::Ready((n, buf)) = poll_once(&mut reading).await {
                                got.extend_from_slice(&buf[..n.unwrap()]);
                            } else {
                                percore_runtime::yield_now().await;
                                drop(reading);
                                continue;
                            }
                            continue;
                        }
                        match reading.await {
                            (Ok(n), buf) => {
                                assert!(n > 0);
                                got.extend_from_slice(&buf);
                            }
                            (Err(err), buf) => {
                                assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
                                assert!(buf.is_empty());
                            }
                        }
                    }
                    assert_eq!(
                        util::settle(5000).await,
                        0,
                        "{driver} {spec}: every slot freed"
                    );
                    (sent, got.len())
                })
                .unwrap();
            assert!(got <= sent, "{driver} {spec}: {got} read of {sent} written");
        }
    }
}
