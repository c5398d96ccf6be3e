//! Unix sockets: listener/stream round trip, socketpair, datagrams by path.

use std::path::PathBuf;

use futures_util::StreamExt;
use percore_net::{UnixDatagram, UnixListener, UnixStream};

/// A fresh socket path in a per-test temporary directory.
fn socket_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("percore-net-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("sock")
}

#[test]
fn a_unix_stream_echoes_through_a_listener() {
    let path = socket_path("stream");
    percore_runtime::run(async {
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );
        let server = percore_runtime::spawn(async move {
            let mut incoming = listener.incoming();
            let stream = incoming.next().await.unwrap().unwrap();
            let (res, buf) = stream.read_exact(Vec::with_capacity(5)).await;
            res.unwrap();
            let (res, _) = stream.write_all(buf).await;
            res.unwrap();
        });
        let client = UnixStream::connect(&path).await.unwrap();
        let (res, _) = client.write_all(b"hello".to_vec()).await;
        res.unwrap();
        let (res, buf) = client.read_exact(Vec::with_capacity(5)).await;
        res.unwrap();
        assert_eq!(buf, b"hello");
        server.await.unwrap();
        // The server dropped its end: end of stream.
        let (res, _) = client.read(Vec::with_capacity(1)).await;
        assert_eq!(res.unwrap(), 0);
    })
    .unwrap();
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn split_halves_of_a_pair_work_from_two_tasks_and_reunite() {
    percore_runtime::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (read, write) = a.into_split();
        let writer = percore_runtime::spawn(async move {
            let (res, _) = write.writev(vec![b"ab".to_vec(), b"cd".to_vec()]).await;
            assert_eq!(res.unwrap(), 4);
            write
        });
        let (res, bufs) = b
            .readv(vec![Vec::with_capacity(1), Vec::with_capacity(8)])
            .await;
        let n = res.unwrap();
        assert!(n >= 1);
        let (res, _) = b.write_all(b"xyz".to_vec()).await;
        res.unwrap();
        let (res, got) = read.read_exact(Vec::with_capacity(3)).await;
        res.unwrap();
        assert_eq!(got, b"xyz");
        assert_eq!(bufs[0], b"a");
        let write = writer.await.unwrap();
        let stream = read.reunite(write).unwrap();
        assert!(stream.into_std().is_ok());
    })
    .unwrap();
}

#[test]
fn unix_datagrams_round_trip_by_path_and_connected() {
    let path = socket_path("dgram");
    percore_runtime::run(async {
        let server = UnixDatagram::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        let (res, _) = client.send_to(b"one".to_vec(), &path).await;
        assert_eq!(res.unwrap(), 3);
        let (res, buf) = server.recv_from(Vec::with_capacity(16)).await;
        assert_eq!(res.unwrap().0, 3);
        assert_eq!(buf, b"one");

        client.connect(&path).unwrap();
        let (res, _) = client.send(b"two".to_vec()).await;
        res.unwrap();
        let (res, buf) = server.recv(Vec::with_capacity(16)).await;
        assert_eq!(res.unwrap(), 3);
        assert_eq!(buf, b"two");

        let (x, y) = UnixDatagram::pair().unwrap();
        let (res, _) = x.send(b"pair".to_vec()).await;
        res.unwrap();
        let (res, buf) = y.recv(Vec::with_capacity(16)).await;
        assert_eq!((res.unwrap(), &buf[..]), (4, &b"pair"[..]));
    })
    .unwrap();
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
