//! A child spawned while rings, listeners, connections, a buffer ring, files,
//! eventfds (two cores) and other children's pidfds and pipes are open
//! inherits none of them: only its fds 0, 1 and 2. On both backends.

mod util;

use std::any::Any;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use percore_net::{BufRing, TcpListener, TcpStream, UdpSocket, UnixStream};
use percore_process::{Command, Stdio};
use percore_runtime::time::sleep;
use percore_runtime::{Driver, Runtime};

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Opens one of each kind of fd percore makes on this core, with ops in
/// flight on some, and returns them to keep them open.
async fn open_everything() -> Vec<Box<dyn Any>> {
    let listener = TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    // A multishot accept in flight, and one accepted connection with its client.
    let mut incoming = listener.incoming();
    let client = TcpStream::connect(addr).await.unwrap();
    let server = incoming.next().await.expect("never ends").unwrap();
    let ring = BufRing::new(16, 4096).unwrap();
    // A multishot receive through the buffer ring, in flight.
    let recv = server.recv_stream(&ring);
    let udp = UdpSocket::bind(localhost()).unwrap();
    let (left, right) = UnixStream::pair().unwrap();
    let file = percore_fs::File::open("/proc/self/status").await.unwrap();
    // Hot: on io_uring it takes a slot of the registered file table.
    for _ in 0..100 {
        let (res, _) = file.read_at(Vec::with_capacity(64), 0).await;
        res.unwrap();
    }
    let kept: Vec<Box<dyn Any>> = vec![
        Box::new(listener),
        Box::new(incoming),
        Box::new(client),
        Box::new(recv),
        Box::new(server),
        Box::new(ring),
        Box::new(udp),
        Box::new(left),
        Box::new(right),
        Box::new(file),
    ];
    kept
}

/// The fds any child inherits: 0, 1, 2, and those this test process
/// itself got without close-on-exec from whoever started it.
fn allowed() -> Vec<i32> {
    static ALLOWED: OnceLock<Vec<i32>> = OnceLock::new();
    ALLOWED
        .get_or_init(|| {
            let mut allowed = vec![0, 1, 2];
            for fd in util::fds_of(std::process::id()) {
                // SAFETY: F_GETFD only reads the fd's flags.
                let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
                if fd > 2 && flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                    allowed.push(fd);
                }
            }
            allowed
        })
        .clone()
}

/// The fds `child` (a `sleep`) holds once it sleeps (at startup, its loader
/// and libc open and close files of their own; an inherited fd stays),
/// described; then kills it.
async fn fds_of(mut child: percore_process::Child) -> Vec<(i32, String)> {
    let pid = child.id().expect("running");
    for _ in 0..10_000 {
        if util::in_nanosleep(pid) {
            break;
        }
        sleep(Duration::from_millis(1)).await;
    }
    assert!(util::in_nanosleep(pid), "sleep {pid} never slept");
    let fds = util::fds_of(pid)
        .into_iter()
        .map(|fd| (fd, util::fd_target(pid, fd)))
        .collect();
    child.kill().await.unwrap();
    fds
}

fn check(driver: Driver) {
    let allowed = allowed();
    let runtime = match Runtime::builder().cores(2).driver(driver).build() {
        Ok(runtime) => runtime,
        Err(err) if driver == Driver::IoUring => {
            eprintln!("io_uring unavailable here, only epoll checked: {err}");
            return;
        }
        Err(err) => panic!("{err}"),
    };
    // Core 1 opens its set and keeps it open until told to stop.
    let opened = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (opened_there, stop_there) = (opened.clone(), stop.clone());
    let there = runtime
        .spawn_on(1, move || async move {
            let kept = open_everything().await;
            opened_there.store(true, Ordering::Release);
            while !stop_there.load(Ordering::Acquire) {
                sleep(Duration::from_millis(1)).await;
            }
            drop(kept);
        })
        .unwrap();

    let found = runtime
        .run_on(0, move || async move {
            let _kept = open_everything().await;
            while !opened.load(Ordering::Acquire) {
                sleep(Duration::from_millis(1)).await;
            }
            // Cross-core wake-ups (eventfds, or MSG_RING) in use.
            for _ in 0..10 {
                let core =
                    percore_runtime::spawn_on(1, || async { percore_runtime::current_core() })
                        .unwrap()
                        .await
                        .unwrap();
                assert_eq!(core, 1);
            }
            // Another child, alive, with its pidfd and three pipes open here.
            let mut other = Command::new("sleep")
                .arg("100")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();

            let quiet = Command::new("sleep")
                .arg("100")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let quiet = fds_of(quiet).await;
            let piped = Command::new("sleep")
                .arg("100")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let piped = fds_of(piped).await;
            other.kill().await.unwrap();
            (quiet, piped)
        })
        .unwrap();
    stop.store(true, Ordering::Release);
    futures_executor_block_on(there);
    drop(runtime);

    for (what, fds) in [("stdio null", &found.0), ("stdio piped", &found.1)] {
        let numbers: Vec<i32> = fds.iter().map(|(fd, _)| *fd).collect();
        assert_eq!(
            numbers, allowed,
            "{driver:?}, {what}: the child inherited more than its stdio: {fds:#?}"
        );
    }
}

/// Waits for a remote join handle from a plain thread.
fn futures_executor_block_on<T>(handle: percore_runtime::RemoteJoinHandle<T>) -> T {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut handle = std::pin::pin!(handle);
    loop {
        if let std::task::Poll::Ready(out) = handle.as_mut().poll(&mut cx) {
            return out.expect("core 1's task");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

use std::future::Future as _;

/// One test for both backends, so the baseline of fds this process got from
/// its parent is taken before any runtime exists.
#[test]
fn a_child_inherits_only_its_stdio_on_both_backends() {
    allowed();
    check(Driver::IoUring);
    check(Driver::Epoll);
}
