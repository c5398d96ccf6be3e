//! Every socket percore-net makes is close-on-exec from the start: made,
//! accepted (one-shot and multishot), paired, or received over `SCM_RIGHTS`.
//! A child another thread spawns meanwhile inherits none of them.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;

use futures_util::StreamExt;
use percore_net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};

fn cloexec(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: fcntl on an open fd has no memory preconditions.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert!(flags >= 0, "F_GETFD: {}", std::io::Error::last_os_error());
    flags & libc::FD_CLOEXEC != 0
}

fn socket_path() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("percore-net-{}-cloexec", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("sock")
}

#[test]
fn every_socket_is_close_on_exec() {
    let path = socket_path();
    percore_runtime::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let _second = TcpStream::connect(addr).await.unwrap();
        let multishot = listener.incoming().next().await.unwrap().unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (pair_a, pair_b) = UnixStream::pair().unwrap();
        let (dgram_a, dgram_b) = UnixDatagram::pair().unwrap();
        let unbound = UnixDatagram::unbound().unwrap();
        let unix_listener = UnixListener::bind(&path).unwrap();
        let unix_client = UnixStream::connect(&path).await.unwrap();
        let (unix_accepted, _) = unix_listener.accept().await.unwrap();
        let (res, _) = pair_a
            .write_with_fds(b"x".to_vec(), &[client.as_fd()])
            .await;
        res.unwrap();
        let (res, _) = pair_b.read_with_fds(Vec::with_capacity(1), 1).await;
        let (_, received) = res.unwrap();
        let fds: [(&str, BorrowedFd<'_>); 14] = [
            ("tcp listener", listener.as_fd()),
            ("tcp connect", client.as_fd()),
            ("tcp accept", accepted.as_fd()),
            ("tcp multishot accept", multishot.as_fd()),
            ("udp", udp.as_fd()),
            ("unix stream pair", pair_a.as_fd()),
            ("unix stream pair", pair_b.as_fd()),
            ("unix datagram pair", dgram_a.as_fd()),
            ("unix datagram pair", dgram_b.as_fd()),
            ("unix datagram unbound", unbound.as_fd()),
            ("unix listener", unix_listener.as_fd()),
            ("unix connect", unix_client.as_fd()),
            ("unix accept", unix_accepted.as_fd()),
            ("received over SCM_RIGHTS", received[0].as_fd()),
        ];
        for (what, fd) in fds {
            assert!(cloexec(fd), "{what} is not close-on-exec");
        }
    })
    .unwrap();
}
