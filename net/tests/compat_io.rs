//! `Compat` under the futures-io and tokio traits: data arrives whole and in
//! order, flush waits for the kernel, close sends end of stream, and dropping
//! it mid-operation is safe.

#![cfg(all(feature = "futures-io", feature = "tokio"))]

use std::net::SocketAddr;
use std::time::Duration;

use percore_net::{TcpListener, TcpStream, UnixStream};
use percore_runtime::{spawn, time::timeout};

const BYTES: usize = 3 << 20;

fn pattern() -> Vec<u8> {
    (0..BYTES).map(|i| (i % 253) as u8).collect()
}

#[test]
fn futures_io_copies_megabytes_through_small_buffers() {
    use futures_util::io::{AsyncReadExt, AsyncWriteExt};
    percore_runtime::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let mut writer = a.into_compat_with_capacity(4096);
        let mut reader = b.into_compat_with_capacity(1000);
        let sent = spawn(async move {
            writer.write_all(&pattern()).await.unwrap();
            writer.flush().await.unwrap();
            writer.close().await.unwrap();
        });
        // A plain loop: futures' `read_to_end` re-zeroes its spare capacity on
        // every `Pending`, which in debug builds takes longer than the copy.
        let mut got = Vec::with_capacity(BYTES);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        sent.await.unwrap();
        assert!(got == pattern(), "byte-exact");
    })
    .unwrap();
}

#[test]
fn tokio_io_echoes_over_tcp() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    percore_runtime::run(async {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut io = stream.into_compat();
            let mut line = String::new();
            let mut reader = tokio::io::BufReader::new(&mut io);
            reader.read_line(&mut line).await.unwrap();
            io.write_all(line.to_uppercase().as_bytes()).await.unwrap();
            io.shutdown().await.unwrap();
        });
        let mut io = TcpStream::connect(addr).await.unwrap().into_compat();
        io.write_all(b"hello tokio\n").await.unwrap();
        io.flush().await.unwrap();
        let mut reply = String::new();
        io.read_to_string(&mut reply).await.unwrap();
        assert_eq!(reply, "HELLO TOKIO\n");
        server.await.unwrap();
    })
    .unwrap();
}

#[test]
fn dropping_compat_mid_read_and_mid_write_is_safe() {
    use futures_util::io::{AsyncReadExt, AsyncWriteExt};
    percore_runtime::run(async {
        let (a, _peer_a) = UnixStream::pair().unwrap();
        let mut reader = a.into_compat();
        // A read with nothing to receive: in flight when dropped.
        let mut buf = [0u8; 16];
        let read = timeout(Duration::from_millis(2), reader.read(&mut buf)).await;
        assert!(read.is_err(), "nothing was sent");
        drop(reader);
        // A write the peer never reads: the kernel's buffers fill, then drop.
        let (b, _peer_b) = UnixStream::pair().unwrap();
        let mut writer = b.into_compat();
        let big = vec![1u8; 8 << 20];
        let write = timeout(Duration::from_millis(20), writer.write_all(&big)).await;
        assert!(write.is_err(), "the peer does not read, so the write waits");
        drop(writer);
    })
    .unwrap();
}
