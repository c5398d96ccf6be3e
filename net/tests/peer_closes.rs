//! The peer closes while our write is in flight: the write fails with `EPIPE`
//! or `ECONNRESET`, no fd leaks, and the process is not killed by `SIGPIPE`.
//!
//! Rust's std ignores `SIGPIPE` before `main`, which would hide a send that
//! lacks `MSG_NOSIGNAL` (or a `write(2)` on a socket): the rounds run in a
//! child process — this test binary run again — with `SIGPIPE` back at its
//! default action, so such a send kills it, and the parent sees signal 13.

use std::io;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use percore_net::socket2::SockRef;
use percore_net::{TcpListener, TcpStream, UnixStream};
use percore_runtime::{spawn, yield_now, BufResult};

const ROUNDS: usize = 10_000;
/// Set in the child: run the rounds instead of starting a child.
const CHILD: &str = "PERCORE_TEST_PEER_CLOSES_CHILD";
const TEST: &str = "the_peer_closing_mid_write_is_an_error_not_a_sigpipe";

/// Each way a stream writes, on both stream kinds.
#[derive(Clone, Copy, Debug)]
enum Way {
    TcpWrite,
    TcpWriteAll,
    TcpWritev,
    TcpWriteAllZc,
    TcpHalfWriteAll,
    UnixWrite,
    UnixWriteAll,
    UnixWritev,
    UnixWriteWithFds,
}

const WAYS: [Way; 9] = [
    Way::TcpWrite,
    Way::TcpWriteAll,
    Way::TcpWritev,
    Way::TcpWriteAllZc,
    Way::TcpHalfWriteAll,
    Way::UnixWrite,
    Way::UnixWriteAll,
    Way::UnixWritev,
    Way::UnixWriteWithFds,
];

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Writes until a write fails; that error. A write that succeeds is fine
/// while the peer is still there: the loop goes on until it is gone.
async fn write_until_error(
    mut write: impl AsyncFnMut(Vec<u8>) -> BufResult<usize, Vec<u8>>,
) -> io::Error {
    let mut buf = vec![7u8; 64 * 1024];
    loop {
        let (res, back) = write(buf).await;
        buf = back;
        match res {
            Ok(0) => return io::ErrorKind::WriteZero.into(),
            Ok(_) => {}
            Err(err) => return err,
        }
    }
}

/// A `write_all`-style result as a `write` one.
fn all<T>((res, buf): BufResult<(), T>) -> BufResult<usize, T> {
    (res.map(|()| 1), buf)
}

/// The writer's side of a round, in its own task.
async fn unix_writer(way: Way, ours: UnixStream) -> io::Error {
    let ours = &ours;
    match way {
        Way::UnixWrite => write_until_error(async |buf| ours.write(buf).await).await,
        Way::UnixWriteAll => write_until_error(async |buf| all(ours.write_all(buf).await)).await,
        Way::UnixWritev => {
            write_until_error(async |buf| {
                let (res, mut bufs) = ours.writev(vec![buf, vec![8; 512]]).await;
                (res, bufs.swap_remove(0))
            })
            .await
        }
        _ => {
            let null = std::fs::File::open("/dev/null").unwrap();
            let fds = [null.as_fd()];
            write_until_error(async |buf| ours.write_with_fds(buf, &fds).await).await
        }
    }
}

async fn tcp_writer(way: Way, client: TcpStream) -> io::Error {
    let client = &client;
    match way {
        Way::TcpWrite => write_until_error(async |buf| client.write(buf).await).await,
        Way::TcpWriteAll => write_until_error(async |buf| all(client.write_all(buf).await)).await,
        Way::TcpWritev => {
            write_until_error(async |buf| {
                let (res, mut bufs) = client.writev(vec![vec![8; 512], buf]).await;
                (res, bufs.swap_remove(1))
            })
            .await
        }
        Way::TcpWriteAllZc => {
            write_until_error(async |buf| all(client.write_all_zc(buf).await)).await
        }
        _ => {
            let (_read, write) =
                TcpStream::from_std(client.as_fd().try_clone_to_owned().unwrap().into())
                    .into_split();
            write_until_error(async |buf| all(write.write_all(buf).await)).await
        }
    }
}

/// One round: the writer writes more than the socket buffers hold while the
/// peer reads a little, then closes with data unread. The error the writer
/// gets.
async fn round(way: Way, listener: &TcpListener) -> io::Error {
    let small = |sock: SockRef<'_>| sock.set_send_buffer_size(4096).unwrap();
    let (writer, peer) = match way {
        Way::UnixWrite | Way::UnixWriteAll | Way::UnixWritev | Way::UnixWriteWithFds => {
            let (ours, theirs) = UnixStream::pair().unwrap();
            small(SockRef::from(&ours));
            (spawn(unix_writer(way, ours)), Peer::Unix(theirs))
        }
        _ => {
            let client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (server, _) = listener.accept().await.unwrap();
            small(SockRef::from(&client));
            (spawn(tcp_writer(way, client)), Peer::Tcp(server))
        }
    };
    read_then_close(peer).await;
    writer.await.expect("writer task")
}

enum Peer {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Reads once (so the writer is under way), lets the writer fill the
/// buffers and wait, then closes with data unread.
async fn read_then_close(peer: Peer) {
    let (res, _) = match &peer {
        Peer::Tcp(stream) => stream.read(Vec::with_capacity(1024)).await,
        Peer::Unix(stream) => stream.read(Vec::with_capacity(1024)).await,
    };
    assert!(res.unwrap() > 0);
    for _ in 0..3 {
        yield_now().await;
    }
    drop(peer);
}

fn rounds() {
    let before = open_fds();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    percore_runtime::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // A small receive buffer for every accepted connection.
        SockRef::from(&listener).set_recv_buffer_size(4096).unwrap();
        for i in 0..ROUNDS {
            let way = WAYS[i % WAYS.len()];
            let err = round(way, &listener).await;
            let kind = err.kind();
            assert!(
                matches!(
                    kind,
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ),
                "round {i} ({way:?}): {err} ({kind:?})"
            );
            *seen.entry(format!("{way:?}: {kind:?}")).or_default() += 1;
        }
    })
    .unwrap();
    eprintln!("peer_closes: {seen:?}");
    assert_eq!(open_fds(), before, "fd delta after {ROUNDS} rounds");
}

#[test]
fn the_peer_closing_mid_write_is_an_error_not_a_sigpipe() {
    if std::env::var_os(CHILD).is_some() {
        // SAFETY: no other thread of this process is running yet (the
        // harness runs this child's one test alone), and SIG_DFL is a valid
        // disposition.
        let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        assert_ne!(previous, libc::SIG_ERR);
        rounds();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ne!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "the child was killed by SIGPIPE: a send without MSG_NOSIGNAL\n{stdout}\n{stderr}"
    );
    assert!(
        out.status.success(),
        "child: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test\n{stdout}"
    );
    for line in stderr.lines().filter(|l| l.starts_with("peer_closes")) {
        eprintln!("{line}");
    }
}

#[test]
fn a_shut_down_write_side_is_an_error_too() {
    // A plain shutdown (no close) on our side: writing after it is EPIPE.
    percore_runtime::run(async {
        let (a, _b) = UnixStream::pair().unwrap();
        a.shutdown(Shutdown::Write).await.unwrap();
        let (res, _) = a.write(b"late".to_vec()).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    })
    .unwrap();
}
