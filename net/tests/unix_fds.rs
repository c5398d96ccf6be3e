//! fd passing (`SCM_RIGHTS`) on Unix streams and datagrams: round trips,
//! receives dropped in flight or completed and never taken (no fd leaks),
//! and more fds than room (`MSG_CTRUNC`).

use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use percore_net::{UnixDatagram, UnixStream};

/// Tests here count the process's fds; they must not overlap.
static FDS: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    FDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A pipe: (read end, write end), close-on-exec.
fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: pipe2 made both fds, owned by nothing else.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

fn cloexec(fd: &OwnedFd) -> bool {
    // SAFETY: fcntl on an open fd has no memory preconditions.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    flags >= 0 && flags & libc::FD_CLOEXEC != 0
}

/// Polls `fut` once: submits its op.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

#[test]
fn a_pipe_end_sent_over_a_unix_stream_writes_into_the_original_pipe() {
    let _serial = serial();
    let before = open_fds();
    percore_runtime::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut read_end, write_end) = pipe();
        let (res, _) = a
            .write_with_fds(b"here".to_vec(), &[write_end.as_fd()])
            .await;
        assert_eq!(res.unwrap(), 4);
        // Our own write end closes: only the received copy is left.
        drop(write_end);
        let (res, buf) = b.read_with_fds(Vec::with_capacity(16), 4).await;
        let (n, mut fds) = res.unwrap();
        assert_eq!(&buf[..n], b"here");
        assert_eq!(fds.len(), 1);
        assert!(cloexec(&fds[0]), "received fds are close-on-exec");
        let mut received = File::from(fds.remove(0));
        received.write_all(b"through the received fd").unwrap();
        drop(received);
        // End of file: no other copy of the write end is left anywhere (the
        // duplicate the send op made is closed too).
        let mut got = String::new();
        read_end.read_to_string(&mut got).unwrap();
        assert_eq!(got, "through the received fd");
    })
    .unwrap();
    assert_eq!(open_fds(), before, "fd delta");
}

#[test]
fn a_datagram_carries_fds_even_when_empty() {
    let _serial = serial();
    let before = open_fds();
    percore_runtime::run(async {
        let (a, b) = UnixDatagram::pair().unwrap();
        let (mut read_end, write_end) = pipe();
        let (other_read, _other_write) = pipe();
        let (res, _) = a
            .send_with_fds(Vec::new(), &[write_end.as_fd(), other_read.as_fd()])
            .await;
        assert_eq!(res.unwrap(), 0);
        drop(write_end);
        let (res, _) = b.recv_with_fds(Vec::with_capacity(8), 2).await;
        let (n, fds) = res.unwrap();
        assert_eq!((n, fds.len()), (0, 2));
        assert!(fds.iter().all(cloexec));
        let mut fds = fds.into_iter();
        File::from(fds.next().unwrap()).write_all(b"dgram").unwrap();
        let mut got = [0; 5];
        read_end.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"dgram");
    })
    .unwrap();
    assert_eq!(open_fds(), before, "fd delta");
}

#[test]
fn a_stream_refuses_fds_without_a_byte_to_carry_them() {
    let _serial = serial();
    percore_runtime::run(async {
        let (a, _b) = UnixStream::pair().unwrap();
        let (_read_end, write_end) = pipe();
        let (res, _) = a.write_with_fds(Vec::new(), &[write_end.as_fd()]).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    })
    .unwrap();
}

#[test]
fn more_fds_than_room_is_an_error_and_closes_the_ones_that_came() {
    let _serial = serial();
    let before = open_fds();
    percore_runtime::run(async {
        let (_read_end, write_end) = pipe();
        let (a, b) = UnixStream::pair().unwrap();
        let three = [write_end.as_fd(), write_end.as_fd(), write_end.as_fd()];
        let (res, _) = a.write_with_fds(b"abc".to_vec(), &three).await;
        res.unwrap();
        let (res, buf) = b.read_with_fds(Vec::with_capacity(8), 1).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("MSG_CTRUNC"), "{err}");
        // The bytes are in the buffer all the same.
        assert_eq!(buf, b"abc");
        // Room for none: the same.
        let (res, _) = a.write_with_fds(b"d".to_vec(), &three[..1]).await;
        res.unwrap();
        let (res, _) = b.read_with_fds(Vec::with_capacity(8), 0).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidData);
        // And on a datagram socket.
        let (c, d) = UnixDatagram::pair().unwrap();
        let (res, _) = c.send_with_fds(b"e".to_vec(), &three).await;
        res.unwrap();
        let (res, _) = d.recv_with_fds(Vec::with_capacity(8), 2).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidData);
    })
    .unwrap();
    assert_eq!(open_fds(), before, "fd delta");
}

/// Half the receives are dropped right after the peer's send (in flight: the
/// cancel races the completion), half once the completion has had time to
/// arrive (completed, never taken). Either way the fds a receive got must be
/// closed. Returns how many sends were still queued at the end, that is,
/// whose receive was cancelled before it took them.
async fn drop_receives<S, R, RF>(rounds: usize, send: S, recv: R) -> usize
where
    S: AsyncFnMut(&[std::os::fd::BorrowedFd<'_>]) -> io::Result<usize>,
    R: Fn() -> RF,
    RF: Future<Output = percore_runtime::BufResult<(usize, Vec<OwnedFd>), Vec<u8>>>,
{
    let mut send = send;
    let (_read_end, write_end) = pipe();
    for round in 0..rounds {
        let mut receive = Box::pin(recv());
        // Submit it. A message a cancelled receive left queued may come at
        // once (the readiness backend cancels before it tries): its fds
        // close with the dropped output.
        if let Poll::Ready((res, _)) = poll_once(&mut receive).await {
            assert_eq!(res.unwrap().1.len(), 2);
            continue;
        }
        send(&[write_end.as_fd(), write_end.as_fd()]).await.unwrap();
        if round % 2 == 1 {
            percore_runtime::time::sleep(Duration::from_micros(200)).await;
        }
        drop(receive);
    }
    // What the cancelled receives left queued: taken and closed here.
    let mut queued = 0;
    loop {
        let receive = recv();
        match percore_runtime::time::timeout(Duration::from_millis(50), receive).await {
            Ok((res, _)) => {
                let (_, fds) = res.unwrap();
                assert_eq!(fds.len(), 2);
                queued += 1;
            }
            Err(_) => return queued,
        }
    }
}

#[test]
fn a_thousand_receives_dropped_in_flight_or_after_completion_leak_no_fd() {
    const ROUNDS: usize = 1_000;
    let _serial = serial();
    let before = open_fds();
    percore_runtime::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let queued = drop_receives(
            ROUNDS,
            async |fds| a.write_with_fds(vec![1], fds).await.0,
            || b.read_with_fds(Vec::with_capacity(8), 4),
        )
        .await;
        eprintln!("stream: {queued} of {ROUNDS} sends were still queued");
        assert!(queued < ROUNDS, "no receive got its fds before the drop");

        let (c, d) = UnixDatagram::pair().unwrap();
        let queued = drop_receives(
            ROUNDS,
            async |fds| c.send_with_fds(vec![1], fds).await.0,
            || d.recv_with_fds(Vec::with_capacity(8), 4),
        )
        .await;
        eprintln!("datagram: {queued} of {ROUNDS} sends were still queued");
        assert!(queued < ROUNDS, "no receive got its fds before the drop");
    })
    .unwrap();
    assert_eq!(open_fds(), before, "fd delta");
}
