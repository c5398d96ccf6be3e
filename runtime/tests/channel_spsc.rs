//! `channel::spsc` between a percore core and a plain thread, both ways.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use futures_util::StreamExt;
use percore_runtime::channel::{spsc, SendError, TryRecvError, TrySendError};

const MILLION: u64 = 1_000_000;

/// Counts its drops in a shared counter.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

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

#[test]
fn thread_to_core_a_million_values_in_order() {
    let (mut tx, mut rx) = spsc::channel(64);
    let producer = thread::spawn(move || {
        for i in 0..MILLION {
            futures_executor::block_on(tx.send(i)).expect("receiver is alive");
        }
    });
    let received = percore_runtime::run(async move {
        let mut next = 0;
        while let Some(i) = rx.recv().await {
            assert_eq!(i, next, "values arrive once each, in order");
            next += 1;
        }
        next
    })
    .unwrap();
    producer.join().unwrap();
    assert_eq!(received, MILLION);
}

#[test]
fn core_to_thread_a_million_values_in_order() {
    let (mut tx, mut rx) = spsc::channel(64);
    let consumer = thread::spawn(move || {
        futures_executor::block_on(async {
            let mut next = 0;
            while let Some(i) = rx.recv().await {
                assert_eq!(i, next, "values arrive once each, in order");
                next += 1;
            }
            next
        })
    });
    percore_runtime::run(async move {
        for i in 0..MILLION {
            tx.send(i).await.expect("receiver is alive");
        }
    })
    .unwrap();
    assert_eq!(consumer.join().unwrap(), MILLION);
}

#[test]
fn a_full_channel_refuses_try_send_and_parks_send() {
    let (mut tx, mut rx) = spsc::channel(4);
    assert_eq!(tx.capacity(), 4);
    for i in 0..4 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(tx.try_send(4), Err(TrySendError::Full(4)));

    let (wakes, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut send = pin!(tx.send(4));
        assert!(send.as_mut().poll(&mut cx).is_pending());
        assert_eq!(wakes.0.load(SeqCst), 0);
        assert_eq!(rx.try_recv(), Ok(0));
        assert_eq!(wakes.0.load(SeqCst), 1, "a receive wakes the parked sender");
        assert_eq!(send.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
    }
    let rest: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(rest, [1, 2, 3, 4]);
}

#[test]
fn capacity_is_rounded_up_to_a_power_of_two() {
    let (mut tx, rx) = spsc::channel(5);
    assert_eq!((tx.capacity(), rx.capacity()), (8, 8));
    for i in 0..8 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(rx.len(), 8);
    assert_eq!(tx.try_send(8), Err(TrySendError::Full(8)));
}

#[test]
fn a_core_waiting_on_a_full_channel_is_woken_by_a_thread() {
    let (mut tx, mut rx) = spsc::channel(1);
    let consumer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        let mut got = Vec::new();
        while got.len() < 3 {
            match rx.try_recv() {
                Ok(v) => got.push(v),
                Err(TryRecvError::Empty) => thread::sleep(Duration::from_millis(1)),
                Err(TryRecvError::Disconnected) => break,
            }
        }
        got
    });
    percore_runtime::run(async move {
        for i in 0..3 {
            tx.send(i).await.unwrap();
        }
    })
    .unwrap();
    assert_eq!(consumer.join().unwrap(), [0, 1, 2]);
}

#[test]
fn a_core_waiting_on_an_empty_channel_is_woken_by_a_thread() {
    let (mut tx, mut rx) = spsc::channel(2);
    let producer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        tx.try_send(7).unwrap();
    });
    let got = percore_runtime::run(async move { (rx.recv().await, rx.recv().await) }).unwrap();
    producer.join().unwrap();
    assert_eq!(got, (Some(7), None));
}

#[test]
fn dropping_the_sender_lets_the_receiver_drain_then_end() {
    let (mut tx, mut rx) = spsc::channel(4);
    for i in 0..3 {
        tx.try_send(i).unwrap();
    }
    drop(tx);
    percore_runtime::run(async move {
        for i in 0..3 {
            assert_eq!(rx.recv().await, Some(i));
        }
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    })
    .unwrap();
}

#[test]
fn dropping_the_receiver_fails_sends_with_the_value() {
    let (mut tx, rx) = spsc::channel(2);
    tx.try_send(1).unwrap();
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
    assert_eq!(percore_runtime::run(tx.send(3)).unwrap(), Err(SendError(3)));
}

#[test]
fn dropping_the_receiver_wakes_a_sender_waiting_on_another_thread() {
    let (mut tx, rx) = spsc::channel(1);
    tx.try_send(0).unwrap();
    let dropper = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        drop(rx);
    });
    let result = percore_runtime::run(tx.send(1)).unwrap();
    dropper.join().unwrap();
    assert_eq!(result, Err(SendError(1)));
}

#[test]
fn close_refuses_sends_but_keeps_what_was_queued() {
    let (mut tx, mut rx) = spsc::channel(4);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    rx.close();
    assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    percore_runtime::run(async move {
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(
            rx.recv().await,
            None,
            "closed and empty: the end, sender or not"
        );
    })
    .unwrap();
    drop(tx);
}

#[test]
fn the_receiver_drops_queued_values_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, mut rx) = spsc::channel(4);
    for _ in 0..4 {
        tx.try_send(Counted(drops.clone())).unwrap();
    }
    drop(rx.try_recv().unwrap());
    assert_eq!(drops.load(SeqCst), 1);
    drop(rx);
    assert_eq!(
        drops.load(SeqCst),
        4,
        "dropping the receiver drops what is queued"
    );
    let refused = tx.try_send(Counted(drops.clone())).unwrap_err();
    assert_eq!(
        drops.load(SeqCst),
        4,
        "a refused value is given back, not dropped"
    );
    drop(refused);
    drop(tx);
    assert_eq!(drops.load(SeqCst), 5);
}

#[test]
fn values_left_when_both_ends_go_are_dropped_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, mut rx) = spsc::channel(4);
    // Go round the ring a few times so the indices wrap past the slots.
    for _ in 0..10 {
        tx.try_send(Counted(drops.clone())).unwrap();
        tx.try_send(Counted(drops.clone())).unwrap();
        drop(rx.try_recv().unwrap());
        drop(rx.try_recv().unwrap());
    }
    assert_eq!(drops.load(SeqCst), 20);
    for _ in 0..3 {
        tx.try_send(Counted(drops.clone())).unwrap();
    }
    drop(tx);
    assert_eq!(drops.load(SeqCst), 20);
    drop(rx);
    assert_eq!(drops.load(SeqCst), 23);
}

#[test]
fn the_last_end_dropped_on_another_thread_drops_values_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, rx) = spsc::channel(8);
    for _ in 0..5 {
        tx.try_send(Counted(drops.clone())).unwrap();
    }
    thread::spawn(move || drop(rx)).join().unwrap();
    assert_eq!(drops.load(SeqCst), 5);
    drop(tx);
    assert_eq!(drops.load(SeqCst), 5);
}

#[test]
fn the_receiver_is_a_stream_that_ends() {
    let (mut tx, rx) = spsc::channel(8);
    let producer = thread::spawn(move || {
        for i in 0..1000u32 {
            futures_executor::block_on(tx.send(i)).unwrap();
        }
    });
    let all: Vec<u32> = percore_runtime::run(rx.collect()).unwrap();
    producer.join().unwrap();
    assert_eq!(all, (0..1000).collect::<Vec<_>>());
}

#[test]
fn a_dropped_send_future_drops_its_value() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (mut tx, mut rx) = spsc::channel(1);
    tx.try_send(Counted(drops.clone())).unwrap();
    let (_, waker) = counting_waker();
    {
        let mut send = pin!(tx.send(Counted(drops.clone())));
        assert!(send
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
    }
    assert_eq!(
        drops.load(SeqCst),
        1,
        "the unsent value went with its future"
    );
    assert!(rx.try_recv().is_ok());
    assert_eq!(rx.try_recv().err(), Some(TryRecvError::Empty));
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn capacity_zero_panics() {
    let _ = spsc::channel::<u8>(0);
}

#[test]
fn ends_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let (tx, rx) = spsc::channel::<String>(1);
    is_send(&tx);
    is_send(&rx);
}
