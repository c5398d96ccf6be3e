//! `Io` against the kernel: reads through a tiny ring that runs dry, tails
//! kept across reads, writes gathered, nothing held while idle.

use std::future::poll_fn;
use std::pin::Pin;

use hyper::rt::{Read, ReadBuf, Write};
use percore_net::{TcpListener, TcpStream};

use super::{pool, Io};

/// A connected pair: (client, server side wrapped in an `Io`).
async fn pair() -> (TcpStream, Io) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, Io::new(server))
}

/// Reads through `io` into `chunk`-byte reads until end of stream.
async fn read_to_end(io: &mut Io, chunk: usize) -> Vec<u8> {
    let mut got = Vec::new();
    loop {
        let mut buf = vec![0u8; chunk];
        let n = poll_fn(|cx| {
            let mut read = ReadBuf::new(&mut buf);
            let polled = Pin::new(&mut *io).poll_read(cx, read.unfilled());
            polled.map(|res| res.map(|()| read.filled().len()))
        })
        .await
        .unwrap();
        if n == 0 {
            return got;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// One read of at most `max` bytes; `None` if it would wait.
async fn try_read(io: &mut Io, max: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; max];
    poll_fn(|cx| {
        let mut read = ReadBuf::new(&mut buf);
        let polled = Pin::new(&mut *io).poll_read(cx, read.unfilled());
        std::task::Poll::Ready(match polled {
            std::task::Poll::Ready(res) => {
                res.unwrap();
                Some(read.filled().to_vec())
            }
            std::task::Poll::Pending => None,
        })
    })
    .await
}

/// One read of at most `max` bytes, waiting for them.
async fn read_some(io: &mut Io, max: usize) -> Vec<u8> {
    loop {
        if let Some(got) = try_read(io, max).await {
            return got;
        }
        percore_runtime::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[test]
fn with_the_ring_dry_a_read_waits_without_a_buffer_and_loses_nothing() {
    pool::TEST_SHAPE.with(|shape| shape.set(Some((2, 64))));
    percore_runtime::run(async {
        // Two connections each keep the tail of a ring buffer: the ring is dry.
        let (a_client, mut a) = pair().await;
        let (b_client, mut b) = pair().await;
        for client in [&a_client, &b_client] {
            let (res, _) = client.write_all(vec![b'x'; 10]).await;
            res.unwrap();
        }
        assert_eq!(read_some(&mut a, 1).await, b"x");
        assert_eq!(read_some(&mut b, 1).await, b"x");
        let ring = pool::ring().unwrap();
        assert_eq!(ring.available(), 0, "both buffers are held");

        // A third connection still reads, by poll and one-shot receive.
        let (c_client, mut c) = pair().await;
        assert_eq!(try_read(&mut c, 64).await, None, "nothing sent yet");
        let (res, _) = c_client.write_all(b"hello".to_vec()).await;
        res.unwrap();
        assert_eq!(read_some(&mut c, 64).await, b"hello");
        assert_eq!(try_read(&mut c, 64).await, None, "waiting again");

        // The tails come out whole; the buffers go back.
        assert_eq!(read_some(&mut a, 64).await, vec![b'x'; 9]);
        assert_eq!(read_some(&mut b, 64).await, vec![b'x'; 9]);
        assert_eq!(ring.available(), ring.capacity());
        let (res, _) = c_client.write_all(b"world".to_vec()).await;
        res.unwrap();
        assert_eq!(read_some(&mut c, 64).await, b"world");
    })
    .unwrap();
    pool::TEST_SHAPE.with(|shape| shape.set(None));
}

fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + seed * 7) as u8).collect()
}

#[test]
fn bytes_come_whole_and_in_order_through_a_two_buffer_ring() {
    // Two 64-byte buffers shared by eight busy connections: multishot
    // receives end with ENOBUFS and are re-armed over and over.
    pool::TEST_SHAPE.with(|shape| shape.set(Some((2, 64))));
    percore_runtime::run(async {
        let mut tasks = Vec::new();
        for seed in 0..8 {
            let (client, mut io) = pair().await;
            let data = pattern(seed, 256 * 1024);
            let expected = data.clone();
            tasks.push(percore_runtime::spawn(async move {
                // Reads of 7 bytes: most ring buffers leave a tail.
                let got = read_to_end(&mut io, 7 + seed).await;
                assert_eq!(got.len(), expected.len(), "connection {seed}");
                assert!(got == expected, "connection {seed}: bytes differ");
            }));
            drop(percore_runtime::spawn(async move {
                let (res, _) = client.write_all(data).await;
                res.unwrap();
                client.shutdown(std::net::Shutdown::Write).await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let ring = pool::ring().unwrap();
        assert_eq!(ring.available(), ring.capacity(), "every buffer is back");
    })
    .unwrap();
    pool::TEST_SHAPE.with(|shape| shape.set(None));
}

#[test]
fn idle_connections_hold_no_buffer() {
    percore_runtime::run(async {
        let mut held = Vec::new();
        for _ in 0..64 {
            let (client, mut io) = pair().await;
            let (res, _) = client.write_all(b"ping".to_vec()).await;
            res.unwrap();
            // One read takes the ping; the next waits for more.
            let mut buf = [0u8; 16];
            let n = poll_fn(|cx| {
                let mut read = ReadBuf::new(&mut buf);
                let polled = Pin::new(&mut io).poll_read(cx, read.unfilled());
                polled.map(|res| res.map(|()| read.filled().len()))
            })
            .await
            .unwrap();
            assert_eq!(&buf[..n], b"ping");
            let waiting = poll_fn(|cx| {
                let mut read = ReadBuf::new(&mut buf);
                let polled = Pin::new(&mut io).poll_read(cx, read.unfilled());
                std::task::Poll::Ready(polled.is_pending())
            })
            .await;
            assert!(waiting, "nothing more to read yet");
            held.push((client, io));
        }
        let ring = pool::ring().unwrap();
        assert_eq!(
            ring.available(),
            ring.capacity(),
            "64 connections waiting for their next bytes hold no ring buffer"
        );
    })
    .unwrap();
}

#[test]
fn writes_gather_and_flush_before_shutdown() {
    percore_runtime::run(async {
        let (client, mut io) = pair().await;
        let head = b"HTTP/1.1 200 OK\r\n\r\n";
        let body = vec![b'x'; 200 * 1024];
        let mut sent = 0;
        // A head and a body in one vectored write, then the rest.
        while sent < head.len() + body.len() {
            let n = poll_fn(|cx| {
                let slices = if sent < head.len() {
                    vec![
                        std::io::IoSlice::new(&head[sent..]),
                        std::io::IoSlice::new(&body),
                    ]
                } else {
                    vec![std::io::IoSlice::new(&body[sent - head.len()..])]
                };
                Pin::new(&mut io).poll_write_vectored(cx, &slices)
            })
            .await
            .unwrap();
            assert!(n > 0);
            sent += n;
        }
        let reader = percore_runtime::spawn(async move {
            let mut got = Vec::new();
            loop {
                let (res, buf) = client.read(Vec::with_capacity(64 * 1024)).await;
                if res.unwrap() == 0 {
                    return got;
                }
                got.extend_from_slice(&buf);
            }
        });
        poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx))
            .await
            .unwrap();
        let got = reader.await.unwrap();
        assert_eq!(got.len(), head.len() + body.len());
        assert!(got.starts_with(head) && got[head.len()..] == body[..]);
    })
    .unwrap();
}
