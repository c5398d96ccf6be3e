//! `channel::mesh`: every core to every other, in order, exactly once.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use futures_util::StreamExt;
use percore_runtime::channel::mesh::{shard_of, Mesh};
use percore_runtime::channel::{SendError, TryRecvError};
use percore_runtime::Runtime;

/// Messages each core's tasks handle before letting the other task run.
const YIELD_EVERY: u64 = 1024;

/// Sends `total` messages `(sender, seq)` through a mesh of `cores` cores,
/// spread evenly over the ordered pairs, and checks that each receiver gets
/// every peer's messages once each, in order.
fn all_to_all(cores: usize, total: u64, capacity: usize) {
    let pairs = (cores * (cores - 1)) as u64;
    let per_pair = total / pairs;
    let runtime = Runtime::builder()
        .cores(cores)
        .stall_threshold(None)
        .build()
        .unwrap();
    let mesh = Mesh::<(usize, u64)>::new(cores, capacity);
    let start = Instant::now();
    let received = runtime
        .run_on_all(move |core| {
            let half = mesh.take(core).expect("taken once per core");
            async move {
                let (mut tx, mut rx) = half.split();
                let peers: Vec<usize> = (0..cores).filter(|&peer| peer != core).collect();
                let sending = percore_runtime::spawn(async move {
                    for seq in 0..per_pair {
                        for &peer in &peers {
                            tx.send_to(peer, (core, seq)).await.expect("peer is alive");
                        }
                        if seq % YIELD_EVERY == 0 {
                            percore_runtime::yield_now().await;
                        }
                    }
                });
                let mut next = vec![0u64; cores];
                let mut count = 0u64;
                while let Some((from, (sender, seq))) = rx.recv().await {
                    assert_eq!(from, sender, "reported sender is the real one");
                    assert_ne!(from, core, "nobody sent to itself");
                    assert_eq!(
                        seq, next[from],
                        "core {core}: in order, once each from {from}"
                    );
                    next[from] += 1;
                    count += 1;
                    if count % YIELD_EVERY == 0 {
                        percore_runtime::yield_now().await;
                    }
                }
                sending.await.unwrap();
                next
            }
        })
        .unwrap();
    let elapsed = start.elapsed();
    let mut sum = 0;
    for (core, next) in received.iter().enumerate() {
        for (from, &n) in next.iter().enumerate() {
            let expected = if from == core { 0 } else { per_pair };
            assert_eq!(n, expected, "core {core} got all of core {from}'s messages");
            sum += n;
        }
    }
    assert_eq!(sum, per_pair * pairs);
    eprintln!("{cores} cores, {sum} messages: {elapsed:?}");
}

#[test]
fn two_cores_ten_million_messages() {
    all_to_all(2, 10_000_000, 1024);
}

/// Channels of one value: every send waits for the peer.
#[test]
fn two_cores_small_channels() {
    all_to_all(2, 100_000, 1);
}

#[test]
fn three_cores_300k_messages() {
    all_to_all(3, 300_000, 256);
}

#[test]
fn send_to_owner_reaches_the_owner() {
    const KEYS: u64 = 1000;
    let cores = 3;
    let runtime = Runtime::builder().cores(cores).build().unwrap();
    // Room for every key of a pair: each core sends everything, then receives.
    let mesh = Mesh::<u64>::new(cores, KEYS as usize);
    let got = runtime
        .run_on_all(move |core| {
            let mut half = mesh.take(core).unwrap();
            async move {
                for key in 0..KEYS {
                    half.send_to_owner(&key, key).await.unwrap();
                }
                let owned = (0..KEYS).filter(|k| shard_of(k, cores) == core).count();
                let mut got = Vec::new();
                for _ in 0..owned * cores {
                    let (from, key) = half.recv().await.unwrap();
                    assert_eq!(shard_of(&key, cores), core, "key {key} from {from}");
                    got.push(key);
                }
                got
            }
        })
        .unwrap();
    let total: usize = got.iter().map(Vec::len).sum();
    assert_eq!(
        total,
        KEYS as usize * cores,
        "every key arrived once per sender"
    );
}

#[test]
fn shard_of_is_stable_and_spread() {
    let mut counts = [0usize; 4];
    for key in 0..10_000u64 {
        let core = shard_of(&key, 4);
        assert_eq!(core, shard_of(&key, 4));
        counts[core] += 1;
    }
    for count in counts {
        assert!((2250..2750).contains(&count), "uneven shards: {counts:?}");
    }
    assert_eq!(shard_of("k", 1), 0);
    assert_eq!(shard_of("key", 3), shard_of(&String::from("key"), 3));
}

#[test]
fn take_twice_gives_none() {
    let mesh = Mesh::<()>::new(2, 4);
    let half = mesh.take(1).unwrap();
    assert_eq!(half.core(), 1);
    assert_eq!(half.peers().collect::<Vec<_>>(), [0]);
    assert!(mesh.take(1).is_none());
    assert!(mesh.take(2).is_none(), "no core 2");
    assert!(mesh.take(0).is_some());
}

#[test]
fn dropped_halves_end_recv_after_draining() {
    let mesh = Mesh::new(3, 4);
    let mut halves: Vec<_> = (0..3).map(|core| mesh.take(core).unwrap()).collect();
    let mut zero = halves.remove(0);
    for (i, half) in halves.iter_mut().enumerate() {
        half.try_send_to(0, 10 + i).unwrap();
        half.try_send_to(0, 20 + i).unwrap();
    }
    zero.try_send_to(0, 0).unwrap();
    drop(halves);
    assert_eq!(
        zero.send_to(1, 99).now_or_panic(),
        Err(SendError(99)),
        "core 1 is gone"
    );
    let all: Vec<(usize, usize)> = futures_executor::block_on(zero.by_ref().collect());
    assert_eq!(all, [(0, 0), (1, 10), (2, 11), (1, 20), (2, 21)]);
    assert_eq!(zero.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn recv_is_fair_over_peers() {
    let mesh = Mesh::new(3, 8);
    let mut halves: Vec<_> = (0..3).map(|core| mesh.take(core).unwrap()).collect();
    for _ in 0..3 {
        for from in [2, 1, 0] {
            halves[from].try_send_to(0, from).unwrap();
        }
    }
    let order: Vec<usize> = (0..9).map(|_| halves[0].try_recv().unwrap().0).collect();
    assert_eq!(order, [0, 1, 2, 0, 1, 2, 0, 1, 2]);
    assert_eq!(halves[0].try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn a_waiting_recv_is_woken_by_any_peer() {
    for sender in [1, 2] {
        let mesh = Mesh::new(3, 2);
        let mut halves: Vec<_> = (0..3).map(|core| mesh.take(core).unwrap()).collect();
        let (wakes, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        {
            let mut recv = pin!(halves[0].recv());
            assert!(recv.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(wakes.0.load(SeqCst), 0, "no busy polling");
        let half = &mut halves[sender];
        std::thread::scope(|s| {
            s.spawn(|| half.try_send_to(0, 'x').unwrap());
        });
        assert_eq!(wakes.0.load(SeqCst), 1, "a send from core {sender} wakes");
        assert_eq!(halves[0].try_recv(), Ok((sender, 'x')));
    }
}

#[test]
fn split_halves_send_to_themselves_through_a_channel() {
    let mesh = Mesh::new(2, 2);
    let mut half = mesh.take(0).unwrap();
    half.try_send_to(0, 1).unwrap();
    half.try_send_to(0, 2).unwrap();
    half.try_send_to(0, 3).unwrap(); // the local path is not bounded
    let (mut tx, mut rx) = half.split();
    drop(mesh.take(1));
    tx.try_send_to(0, 4).unwrap();
    tx.try_send_to(0, 5).unwrap();
    assert!(tx.try_send_to(0, 6).is_err(), "the self channel is bounded");
    drop(tx);
    let all: Vec<_> = futures_executor::block_on(rx.by_ref().map(|(_, v)| v).collect::<Vec<_>>());
    assert_eq!(all, [1, 2, 3, 4, 5]);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

trait NowOrPanic: Future + Sized {
    /// Polls once, expecting `Ready`.
    fn now_or_panic(self) -> Self::Output {
        let waker = Waker::noop();
        match pin!(self).poll(&mut Context::from_waker(waker)) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("expected Ready"),
        }
    }
}

impl<F: Future> NowOrPanic for F {}

/// A waker that counts how often it was woken.
#[derive(Default)]
struct CountWakes(AtomicUsize);

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn counting_waker() -> (Arc<CountWakes>, Waker) {
    let count = Arc::new(CountWakes::default());
    (count.clone(), Waker::from(count))
}
