//! Dropping operations in every state: nothing freed early, nothing leaked.

mod util;

use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use percore_runtime::op::{Nop, OpenAt, PollAdd, Read};
use percore_runtime::{MultiOp, Op};

/// Three tests count the process's open fds, and every runtime a test makes
/// opens some (its ring, its eventfd): the tests run one at a time, or one's
/// count would see another's runtime come or go.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Polls `fut` exactly once.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    Pin::new(fut).poll(&mut cx)
}

#[test]
fn a_read_dropped_in_flight_leaves_the_data_and_frees_its_slot() {
    let _serial = serial();
    let _serial = util::serial();
    percore_runtime::run(async {
        let (rx, tx) = util::pipe();
        let mut read = Op::new(Read::new(rx.as_raw_fd(), Vec::with_capacity(64), u64::MAX));
        assert!(poll_once(&mut read).is_pending());
        percore_runtime::yield_now().await; // the loop turns: the SQE reaches the kernel
        assert_eq!(
            percore_runtime::stats().in_flight,
            1,
            "the read is in flight"
        );
        drop(read); // the kernel may still own the buffer: it moves to the op table
        assert_eq!(
            util::settle(1000).await,
            0,
            "the cancel completed and freed the slot"
        );

        // The cancelled read consumed nothing; a fresh read gets every byte.
        util::write_fd(&tx, b"hello after cancel");
        let (n, buf) = Op::new(Read::new(rx.as_raw_fd(), Vec::with_capacity(64), u64::MAX)).await;
        assert_eq!(n.unwrap(), 18);
        assert_eq!(&buf[..], b"hello after cancel");
    })
    .unwrap();
}

#[test]
fn ten_thousand_opens_dropped_after_first_poll_leak_no_fd() {
    let _serial = serial();
    let _serial = util::serial();
    let before = util::fd_count();
    percore_runtime::run(async {
        let start = util::fd_count();
        for _ in 0..10_000 {
            let mut open = Op::new(OpenAt::new("/proc/self/status", libc::O_RDONLY, 0).unwrap());
            if let Poll::Ready(fd) = poll_once(&mut open) {
                panic!("openat cannot complete before the ring is entered: {fd:?}");
            }
            drop(open);
            // Let the loop turn now and then so opens complete while others are dropped.
            percore_runtime::yield_now().await;
        }
        assert_eq!(util::settle(5000).await, 0, "every open's last CQE arrived");
        assert_eq!(
            util::fd_count(),
            start,
            "fds opened by dropped ops were closed"
        );
    })
    .unwrap();
    assert_eq!(util::fd_count(), before);
}

#[test]
fn an_op_completed_but_never_polled_releases_its_result() {
    let _serial = serial();
    let _serial = util::serial();
    let before = util::fd_count();
    percore_runtime::run(async {
        let mut open = Op::new(OpenAt::new("/proc/self/status", libc::O_RDONLY, 0).unwrap());
        assert!(poll_once(&mut open).is_pending());
        // Turn the loop until the CQE is stored, without polling `open` again.
        for _ in 0..1000 {
            percore_runtime::time::sleep(std::time::Duration::from_millis(1)).await;
            if percore_runtime::stats().cqes >= 1 {
                break;
            }
        }
        assert_eq!(
            percore_runtime::stats().in_flight,
            1,
            "the completed result waits in its slot"
        );
        drop(open);
        assert_eq!(percore_runtime::stats().in_flight, 0);
    })
    .unwrap();
    assert_eq!(util::fd_count(), before, "the opened fd was closed on drop");
}

#[test]
fn a_dropped_op_that_was_never_polled_costs_nothing() {
    let _serial = serial();
    let _serial = util::serial();
    percore_runtime::run(async {
        let sqes = percore_runtime::stats().sqes;
        drop(Op::new(Nop::new()));
        assert_eq!(percore_runtime::stats().sqes, sqes);
        assert_eq!(percore_runtime::stats().in_flight, 0);
    })
    .unwrap();
}

#[test]
fn a_multishot_stream_yields_until_dropped_then_its_slot_frees() {
    let _serial = serial();
    let _serial = util::serial();
    percore_runtime::run(async {
        let (rx, tx) = util::pipe();
        let mut ready = MultiOp::new(PollAdd::new(rx.as_raw_fd(), libc::POLLIN as u32));
        assert!(poll_once(&mut ready.next()).is_pending());
        util::write_fd(&tx, b"x");
        let events = ready
            .next()
            .await
            .expect("one item")
            .expect("poll succeeds");
        assert_ne!(events & libc::POLLIN as u32, 0);
        // Still armed: a later readiness change produces another item.
        let mut byte = [0u8; 1];
        // SAFETY: reading one byte into a live 1-byte buffer.
        assert_eq!(
            unsafe { libc::read(rx.as_raw_fd(), byte.as_mut_ptr().cast(), 1) },
            1
        );
        util::write_fd(&tx, b"y");
        assert!(ready.next().await.expect("a second item").is_ok());
        drop(ready);
        assert_eq!(
            util::settle(1000).await,
            0,
            "the cancelled multishot's slot is freed"
        );
    })
    .unwrap();
}

#[test]
fn a_runtime_shut_down_with_reads_in_flight_drains_them() {
    let _serial = serial();
    let _serial = util::serial();
    let before = util::fd_count();
    let (rx, _tx) = util::pipe();
    let fd = rx.as_raw_fd();
    percore_runtime::run(async move {
        for _ in 0..100 {
            drop(percore_runtime::spawn(async move {
                let (res, _buf) = Op::new(Read::new(fd, Vec::with_capacity(4096), u64::MAX)).await;
                res.map(drop)
            }));
        }
        percore_runtime::yield_now().await;
        percore_runtime::yield_now().await;
        assert_eq!(percore_runtime::stats().in_flight, 100);
    })
    .unwrap();
    drop(rx);
    drop(_tx);
    assert_eq!(
        util::fd_count(),
        before,
        "the ring and its eventfd were closed too"
    );
}
