//! `RecvStream::stop` while the stream receives through its one-shot
//! fallback (its ring has no buffer to give): the stream ends, and every byte
//! written before or after the stop is read exactly once — from the stopped
//! stream, or from a later `read`.

use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use futures_util::StreamExt;
use percore_net::{BufRing, RecvStream, UnixStream};
use percore_runtime::Builder;

/// Every wait of a test is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

/// Polls `received` once, so its receive is in flight; nothing may have
/// arrived yet.
async fn arm(received: &mut RecvStream) {
    let polled = poll_fn(|cx| Poll::Ready(received.poll_next_unpin(cx))).await;
    assert!(polled.is_pending(), "nothing to receive yet: {polled:?}");
}

/// What a stopped stream still yields, until it ends.
async fn drain(received: &mut RecvStream) -> Vec<u8> {
    let drained = percore_runtime::time::timeout(WAIT, async {
        let mut drained = Vec::new();
        while let Some(buf) = received.next().await {
            let buf = buf.expect("a stopped stream ends without an error");
            assert!(!buf.is_from_ring(), "the ring's one buffer is held");
            drained.extend_from_slice(&buf);
        }
        drained
    })
    .await;
    drained.expect("a stopped stream ends")
}

/// Reads exactly `len` bytes from `b` with `read`.
async fn read_len(b: &UnixStream, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < len {
        let buf = Vec::with_capacity(len - got.len());
        let read = percore_runtime::time::timeout(WAIT, b.read(buf)).await;
        let (n, buf) = read.expect("the bytes left in the socket");
        assert!(n.expect("read") > 0, "end of stream after {got:?}");
        got.extend_from_slice(&buf);
    }
    got
}

/// Puts the stream's ring in the state under test: its one buffer held, so
/// every receive falls back to a one-shot `recv`. Returns the held buffer.
async fn hold_the_only_buffer(
    a: &UnixStream,
    b: &UnixStream,
    ring: &BufRing,
) -> percore_net::RingBuf {
    let mut received = b.recv_stream(ring);
    a.write_all(b"held".to_vec()).await.0.expect("write");
    let held = received.next().await.expect("a buffer").expect("received");
    assert!(held.is_from_ring());
    assert_eq!(ring.available(), 0);
    // The multishot receive is still armed without a buffer: the next bytes
    // end it (ENOBUFS), and one-shot receives take them (a write may come
    // in parts, under `PERCORE_FAULTS`).
    a.write_all(b"one-shot".to_vec()).await.0.expect("write");
    let mut got = held.to_vec();
    while got.len() < b"heldone-shot".len() {
        let buf = received.next().await.expect("a buffer").expect("received");
        assert!(!buf.is_from_ring(), "received by the one-shot fallback");
        got.extend_from_slice(&buf);
    }
    assert_eq!(got, b"heldone-shot");
    held
}

/// Stops one-shot receives `rounds` times: with nothing to receive, with
/// bytes arriving before the stop (while the receive waits), after it, or
/// both.
fn stop_in_the_fallback(runtime: Builder, rounds: usize) {
    runtime
        .block_on(async move {
            let ring = BufRing::new(1, 64).expect("ring");
            let (a, b) = UnixStream::pair().expect("pair");
            let _held = hold_the_only_buffer(&a, &b, &ring).await;
            for round in 0..rounds {
                let before = format!("before {round};");
                let after = format!("after {round};");
                let mut received = b.recv_stream(&ring);
                arm(&mut received).await;
                let mut got = match round % 3 {
                    // Stopped while the one-shot receive waits, nothing sent:
                    // the stream ends all the same.
                    0 => {
                        received.stop();
                        let got = drain(&mut received).await;
                        a.write_all(before.clone().into_bytes())
                            .await
                            .0
                            .expect("write");
                        a.write_all(after.clone().into_bytes())
                            .await
                            .0
                            .expect("write");
                        got
                    }
                    // Bytes arrive while the one-shot receive waits, and after
                    // the stop.
                    1 => {
                        a.write_all(before.clone().into_bytes())
                            .await
                            .0
                            .expect("write");
                        received.stop();
                        a.write_all(after.clone().into_bytes())
                            .await
                            .0
                            .expect("write");
                        drain(&mut received).await
                    }
                    // All of them after the stop, before the stream is drained.
                    _ => {
                        received.stop();
                        a.write_all(before.clone().into_bytes())
                            .await
                            .0
                            .expect("write");
                        a.write_all(after.clone().into_bytes())
                            .await
                            .0
                            .expect("write");
                        drain(&mut received).await
                    }
                };
                drop(received);
                let sent = format!("{before}{after}");
                let rest = read_len(&b, sent.len() - got.len().min(sent.len())).await;
                got.extend_from_slice(&rest);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    sent,
                    "round {round}: every byte once, in order"
                );
            }
            // Nothing more than what was sent.
            drop(a);
            let (n, _) = b.read(Vec::with_capacity(16)).await;
            assert_eq!(n.expect("read"), 0, "end of stream, no byte left over");
        })
        .expect("runtime");
}

#[test]
fn a_stop_in_the_one_shot_fallback_loses_no_byte() {
    stop_in_the_fallback(Builder::new(), 20);
}

/// A one-shot receive that fails with `EINTR` is submitted again: a stop
/// between the two must still end the stream, not leave a receive that
/// waits for the next bytes.
#[test]
fn a_stop_in_the_one_shot_fallback_survives_interrupted_receives() {
    let runtime = Builder::new()
        .faults("seed=7,eintr=0.3@recv,delay=0.3")
        .expect("fault spec");
    stop_in_the_fallback(runtime, 200);
}
