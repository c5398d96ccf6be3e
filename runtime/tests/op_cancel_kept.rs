//! `Op::cancel`: the op is cancelled and kept, and polling on gives its
//! result — `ECANCELED` when the cancel came first, also for an op the
//! runtime would submit again after an `EINTR`.

mod util;

use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use percore_runtime::op::Read;
use percore_runtime::{Builder, Op};

/// Every wait of a test is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

/// Polls `fut` exactly once.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    Pin::new(fut).poll(&mut cx)
}

#[test]
fn a_read_cancelled_in_flight_ends_cancelled_and_reads_nothing() {
    Builder::new()
        .faults("none")
        .expect("fault spec")
        .block_on(async {
            let (rx, tx) = util::pipe();
            let mut read = Op::new(Read::new(rx.as_raw_fd(), Vec::with_capacity(64), u64::MAX));
            assert!(poll_once(&mut read).is_pending());
            percore_runtime::yield_now().await; // the SQE reaches the kernel
            read.cancel();
            let (res, _) = percore_runtime::time::timeout(WAIT, read)
                .await
                .expect("a cancelled read ends");
            assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));

            util::write_fd(&tx, b"for the next read");
            let (n, buf) =
                Op::new(Read::new(rx.as_raw_fd(), Vec::with_capacity(64), u64::MAX)).await;
            assert_eq!(&buf[..n.expect("read")], b"for the next read");
        })
        .expect("runtime");
}

/// Every read fails with `EINTR` (and would be submitted again forever): a
/// cancel while the `EINTR` is on its way, or after it came back and before
/// the read is submitted again, ends the read.
#[test]
fn an_interrupted_read_is_not_submitted_again_once_cancelled() {
    Builder::new()
        .faults("eintr=1.0@read")
        .expect("fault spec")
        .block_on(async {
            let (rx, _tx) = util::pipe();
            let new_read = || Op::new(Read::new(rx.as_raw_fd(), Vec::with_capacity(64), u64::MAX));

            // Cancelled while in flight, its `EINTR` still to come.
            let mut read = new_read();
            assert!(poll_once(&mut read).is_pending());
            read.cancel();
            let (res, _) = percore_runtime::time::timeout(WAIT, read)
                .await
                .expect("an interrupted read cancelled in flight ends");
            assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));

            // Cancelled between its `EINTR` and its next submission.
            let mut read = new_read();
            let restarting = percore_runtime::time::timeout(WAIT, async {
                assert!(poll_once(&mut read).is_pending());
                percore_runtime::yield_now().await; // the EINTR comes back
                assert!(poll_once(&mut read).is_pending()); // to be submitted again
            })
            .await;
            restarting.expect("polled twice");
            read.cancel();
            let (res, _) = percore_runtime::time::timeout(WAIT, read)
                .await
                .expect("an interrupted read cancelled before its retry ends");
            assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
        })
        .expect("runtime");
}
