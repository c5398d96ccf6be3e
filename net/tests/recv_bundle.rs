//! Receive bundles (`IORING_RECVSEND_BUNDLE`, Linux 6.10): one completion of a
//! multishot receive may fill several ring buffers. Every test runs with the
//! feature allowed and with it forced off (`Builder::uring_features`), so the
//! path of older kernels is tested on this one too; on the epoll backend both
//! runs take that path.

mod util;

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use percore_net::{BufRing, RingBuf, TcpListener, TcpStream};
use percore_runtime::{Builder, Driver, Features};

/// Runs `test` on a one-core runtime with `features` allowed.
fn with_features<F: std::future::Future>(features: Features, test: impl FnOnce() -> F) {
    Builder::new()
        .uring_features(features)
        .block_on(test())
        .unwrap();
}

/// `len` bytes that show where each one belongs.
fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed) as u8)
        .collect()
}

/// Waits (bounded) until every buffer of `ring` is back.
async fn all_back(ring: &BufRing) {
    for _ in 0..2_000 {
        if ring.available() == ring.capacity() {
            return;
        }
        percore_runtime::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(ring.available(), ring.capacity(), "every buffer went back");
}

#[test]
fn a_ring_takes_bundles_where_the_core_has_the_feature() {
    for features in [Features::DEFAULT, Features::NONE] {
        with_features(features, || async move {
            let ring = BufRing::new(8, 64).unwrap();
            let stats = percore_runtime::stats();
            let has = stats.uring_features.contains(Features::RECV_BUNDLE);
            assert_eq!(ring.bundles(), has);
            if features == Features::NONE || stats.driver == Driver::Epoll {
                assert!(!ring.bundles(), "forced off, or no ring at all");
            }
        });
    }
}

/// 32 KiB wait on the socket before the receive starts: with bundles a few
/// completions take them all; without, each 1 KiB buffer is a completion.
/// Either way every byte arrives, in order, and every buffer goes back.
#[test]
fn queued_bytes_arrive_in_order_in_few_completions() {
    const LEN: usize = 32 * 1024;
    const BUF: u32 = 1024;
    for features in [Features::DEFAULT, Features::NONE] {
        with_features(features, || async move {
            let ring = BufRing::new(64, BUF).unwrap();
            let listener = TcpListener::from_std(util::std_listener());
            let addr = listener.local_addr().unwrap();
            let written = Arc::new(AtomicBool::new(false));
            let client = {
                let written = Arc::clone(&written);
                std::thread::spawn(move || {
                    let mut stream = std::net::TcpStream::connect(addr).unwrap();
                    stream.write_all(&pattern(7, LEN)).unwrap();
                    written.store(true, Ordering::SeqCst);
                    // Closing ends the server's stream.
                })
            };
            let (stream, _) = listener.accept().await.unwrap();
            for _ in 0..5_000 {
                if written.load(Ordering::SeqCst) {
                    break;
                }
                percore_runtime::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(written.load(Ordering::SeqCst), "the client wrote it all");
            let before = percore_runtime::stats().cqes;
            let mut incoming = stream.recv_stream(&ring);
            let mut got = Vec::with_capacity(LEN);
            let mut buffers = 0;
            while got.len() < LEN {
                let buf = incoming.next().await.unwrap().unwrap();
                assert!(buf.is_from_ring());
                assert!(buf.len() <= BUF as usize);
                got.extend_from_slice(&buf);
                buffers += 1;
            }
            let cqes = percore_runtime::stats().cqes - before;
            assert!(got == pattern(7, LEN), "the bytes arrived in order");
            assert!(buffers >= LEN / BUF as usize);
            if ring.bundles() {
                // The first completion takes one buffer; the next ones take
                // as many as the socket holds (up to what the ring has).
                assert!(
                    cqes < buffers as u64 / 2,
                    "{cqes} completions for {buffers} buffers: bundles"
                );
            } else {
                assert!(
                    cqes >= buffers as u64,
                    "{cqes} completions for {buffers} buffers: one each"
                );
            }
            assert!(incoming.next().await.is_none(), "end of stream");
            drop(incoming);
            all_back(&ring).await;
            client.join().unwrap();
        });
    }
}

/// One small ring shared by eight connections whose tasks hold on to a few
/// buffers each and let them go in a scrambled order: the ring is refilled
/// out of order all the time, and bundles must still name the right
/// buffers. Every connection gets its own bytes back exactly.
#[test]
fn buffers_given_back_out_of_order_keep_bundles_straight() {
    const CONNECTIONS: u32 = 8;
    const LEN: usize = 192 * 1024;
    for features in [Features::DEFAULT, Features::NONE] {
        with_features(features, || async move {
            let ring = BufRing::new(64, 512).unwrap();
            let listener = TcpListener::from_std(util::std_listener());
            let addr = listener.local_addr().unwrap();
            let server = {
                let ring = ring.clone();
                percore_runtime::spawn(async move {
                    let mut tasks = Vec::new();
                    for seed in 0..CONNECTIONS {
                        let (stream, _) = listener.accept().await.unwrap();
                        tasks.push(percore_runtime::spawn(check(stream, ring.clone(), seed)));
                    }
                    for task in tasks {
                        task.await.unwrap();
                    }
                })
            };
            let clients: Vec<_> = (0..CONNECTIONS)
                .map(|_| std::thread::spawn(move || std::net::TcpStream::connect(addr).unwrap()))
                .collect();
            // Accept order decides the seed: each client sends once it knows it.
            let mut streams: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
            let writers: Vec<_> = streams
                .drain(..)
                .map(|mut stream| {
                    std::thread::spawn(move || {
                        use std::io::Read;
                        let mut seed = [0u8; 4];
                        stream.read_exact(&mut seed).unwrap();
                        let seed = u32::from_le_bytes(seed);
                        for chunk in pattern(seed, LEN).chunks(7_000) {
                            stream.write_all(chunk).unwrap();
                        }
                    })
                })
                .collect();
            server.await.unwrap();
            for writer in writers {
                writer.join().unwrap();
            }
            all_back(&ring).await;
        });
    }
}

/// The server side of one connection: names its seed, then checks every
/// byte, holding up to a few buffers and releasing them scrambled.
async fn check(stream: TcpStream, ring: BufRing, seed: u32) {
    let (res, _) = stream.write_all(seed.to_le_bytes().to_vec()).await;
    res.unwrap();
    let expected = pattern(seed, LEN_CHECK);
    let mut incoming = stream.recv_stream(&ring);
    let mut held: VecDeque<RingBuf> = VecDeque::new();
    let mut at = 0;
    let mut lcg = seed.wrapping_mul(747_796_405).wrapping_add(1);
    while let Some(buf) = incoming.next().await {
        let buf = buf.unwrap();
        assert!(
            expected[at..at + buf.len()] == buf[..],
            "connection {seed}: bytes {at}.. are its own, in order"
        );
        at += buf.len();
        held.push_back(buf);
        lcg = lcg.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        // Keep up to 5; drop a random one of them (not the oldest first).
        while held.len() > (lcg >> 16) as usize % 6 {
            let pick = (lcg >> 8) as usize % held.len();
            drop(held.remove(pick));
        }
        if at % 3 == 0 {
            percore_runtime::yield_now().await;
        }
    }
    assert_eq!(at, LEN_CHECK, "connection {seed} got everything");
}

const LEN_CHECK: usize = 192 * 1024;

/// Dropping the stream with buffers of a bundle not yet yielded, and its
/// receive still armed, gives every buffer back (after the cancel's
/// completion), and the core stays healthy.
#[test]
fn dropping_the_stream_mid_bundle_returns_every_buffer() {
    const LEN: usize = 48 * 1024;
    for features in [Features::DEFAULT, Features::NONE] {
        with_features(features, || async move {
            let ring = BufRing::new(128, 1024).unwrap();
            let listener = TcpListener::from_std(util::std_listener());
            let addr = listener.local_addr().unwrap();
            let written = Arc::new(AtomicBool::new(false));
            let client = {
                let written = Arc::clone(&written);
                std::thread::spawn(move || {
                    let mut stream = std::net::TcpStream::connect(addr).unwrap();
                    stream.write_all(&pattern(3, LEN)).unwrap();
                    written.store(true, Ordering::SeqCst);
                    // Held open until the server is done.
                    std::thread::sleep(Duration::from_millis(200));
                })
            };
            let (stream, _) = listener.accept().await.unwrap();
            for _ in 0..5_000 {
                if written.load(Ordering::SeqCst) {
                    break;
                }
                percore_runtime::time::sleep(Duration::from_millis(1)).await;
            }
            let mut incoming = stream.recv_stream(&ring);
            let mut got = 0;
            // Two buffers, then a short pause so more completions queue up.
            for _ in 0..2 {
                got += incoming.next().await.unwrap().unwrap().len();
            }
            percore_runtime::time::sleep(Duration::from_millis(5)).await;
            got += incoming.next().await.unwrap().unwrap().len();
            assert!(got > 0);
            drop(incoming);
            all_back(&ring).await;
            // The ring still works for a new receive on the same socket.
            let mut again = stream.recv_stream(&ring);
            drop(again.next().await);
            drop(again);
            all_back(&ring).await;
            client.join().unwrap();
        });
    }
}
