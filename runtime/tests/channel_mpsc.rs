//! `channel::mpsc` between percore cores and plain threads, both ways.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use futures_util::StreamExt;
use percore_runtime::channel::{mpsc, SendError, TryRecvError, TrySendError};

const PRODUCERS: u64 = 4;
const EACH: u64 = 250_000;

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

/// Checks `(producer, i)` pairs arrive once each and in order per producer.
#[derive(Default)]
struct Tally {
    next: [u64; PRODUCERS as usize],
}

impl Tally {
    fn see(&mut self, (producer, i): (u64, u64)) {
        let next = &mut self.next[producer as usize];
        assert_eq!(i, *next, "producer {producer}: values once each, in order");
        *next += 1;
    }

    fn assert_complete(&self) {
        assert_eq!(self.next, [EACH; PRODUCERS as usize]);
    }
}

#[test]
fn threads_to_core_four_producers_in_order() {
    let (tx, mut rx) = mpsc::channel(64);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    futures_executor::block_on(tx.send((id, i))).expect("receiver is alive");
                }
            })
        })
        .collect();
    drop(tx);
    let tally = percore_runtime::run(async move {
        let mut tally = Tally::default();
        while let Some(pair) = rx.recv().await {
            tally.see(pair);
        }
        tally
    })
    .unwrap();
    for producer in producers {
        producer.join().unwrap();
    }
    tally.assert_complete();
}

#[test]
fn cores_to_thread_four_producers_in_order() {
    let (tx, mut rx) = mpsc::channel(64);
    let consumer = thread::spawn(move || {
        futures_executor::block_on(async {
            let mut tally = Tally::default();
            while let Some(pair) = rx.recv().await {
                tally.see(pair);
            }
            tally
        })
    });
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|id| {
            let tx = tx.clone();
            thread::spawn(move || {
                percore_runtime::run(async move {
                    for i in 0..EACH {
                        tx.send((id, i)).await.expect("receiver is alive");
                    }
                })
                .unwrap();
            })
        })
        .collect();
    drop(tx);
    for producer in producers {
        producer.join().unwrap();
    }
    consumer.join().unwrap().assert_complete();
}

#[test]
fn tasks_of_one_core_wait_for_room_in_turn() {
    let (tx, rx) = mpsc::channel(2);
    let consumer =
        thread::spawn(move || futures_executor::block_on(rx.collect::<Vec<(u64, u64)>>()));
    percore_runtime::run(async move {
        let tasks: Vec<_> = (0..PRODUCERS)
            .map(|id| {
                let tx = tx.clone();
                percore_runtime::spawn(async move {
                    for i in 0..1000 {
                        tx.send((id, i)).await.unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for task in tasks {
            task.await.unwrap();
        }
    })
    .unwrap();
    let mut next = [0; PRODUCERS as usize];
    for (id, i) in consumer.join().unwrap() {
        assert_eq!(next[id as usize], i);
        next[id as usize] += 1;
    }
    assert_eq!(next, [1000; PRODUCERS as usize]);
}

#[test]
fn a_full_channel_refuses_try_send_and_parks_send() {
    let (tx, mut rx) = mpsc::channel(4);
    assert_eq!(tx.capacity(), 4);
    for i in 0..4 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(tx.try_send(4), Err(TrySendError::Full(4)));
    assert_eq!(rx.len(), 4);

    let (wakes, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    {
        let mut send = pin!(tx.send(4));
        assert!(send.as_mut().poll(&mut cx).is_pending());
        assert_eq!(rx.try_recv(), Ok(0));
        assert_eq!(wakes.0.load(SeqCst), 1, "a receive wakes the parked sender");
        assert_eq!(send.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
    }
    let rest: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(rest, [1, 2, 3, 4]);
}

#[test]
fn waiting_senders_are_woken_oldest_first_and_a_dropped_one_passes_it_on() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(0).unwrap();
    let (first_wakes, first_waker) = counting_waker();
    let (second_wakes, second_waker) = counting_waker();
    let mut second = pin!(tx.send(2));
    {
        let mut first = pin!(tx.send(1));
        assert!(first
            .as_mut()
            .poll(&mut Context::from_waker(&first_waker))
            .is_pending());
        assert!(second
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker))
            .is_pending());
        assert_eq!(rx.try_recv(), Ok(0));
        assert_eq!(first_wakes.0.load(SeqCst), 1);
        assert_eq!(second_wakes.0.load(SeqCst), 0, "one slot, one wake");
        // `first` is dropped here, woken but unsent.
    }
    assert_eq!(second_wakes.0.load(SeqCst), 1, "the wakeup passed on");
    assert_eq!(
        second
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker)),
        Poll::Ready(Ok(()))
    );
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn a_core_waiting_on_an_empty_channel_is_woken_by_a_thread() {
    let (tx, mut rx) = mpsc::channel(2);
    let producer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        tx.try_send(7).unwrap();
    });
    let got = percore_runtime::run(async move { (rx.recv().await, rx.recv().await) }).unwrap();
    producer.join().unwrap();
    assert_eq!(got, (Some(7), None));
}

#[test]
fn dropping_all_senders_lets_the_receiver_drain_then_end() {
    let (tx, mut rx) = mpsc::channel(4);
    let tx2 = tx.clone();
    tx.try_send(0).unwrap();
    tx2.try_send(1).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(0));
    tx2.try_send(2).unwrap();
    drop(tx2);
    percore_runtime::run(async move {
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    })
    .unwrap();
}

#[test]
fn dropping_the_receiver_fails_sends_with_the_value() {
    let (tx, rx) = mpsc::channel(2);
    tx.try_send(1).unwrap();
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
    assert_eq!(percore_runtime::run(tx.send(3)).unwrap(), Err(SendError(3)));
}

#[test]
fn dropping_the_receiver_wakes_senders_waiting_on_other_threads() {
    let (tx, rx) = mpsc::channel(1);
    tx.try_send(0).unwrap();
    let waiters: Vec<_> = (1..=3)
        .map(|i| {
            let tx = tx.clone();
            thread::spawn(move || percore_runtime::run(tx.send(i)).unwrap())
        })
        .collect();
    thread::sleep(Duration::from_millis(20));
    drop(rx);
    let mut failed: Vec<_> = waiters
        .into_iter()
        .map(|waiter| waiter.join().unwrap().unwrap_err().0)
        .collect();
    failed.sort();
    assert_eq!(failed, [1, 2, 3]);
}

#[test]
fn close_refuses_sends_but_keeps_what_was_queued() {
    let (tx, mut rx) = mpsc::channel(4);
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
            "closed and empty: the end, senders or not"
        );
    })
    .unwrap();
    drop(tx);
}

#[test]
fn the_receiver_drops_queued_values_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::channel(4);
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
    let (tx, mut rx) = mpsc::channel(3);
    for _ in 0..10 {
        tx.try_send(Counted(drops.clone())).unwrap();
        drop(rx.try_recv().unwrap());
    }
    for _ in 0..3 {
        tx.try_send(Counted(drops.clone())).unwrap();
    }
    drop(tx);
    assert_eq!(drops.load(SeqCst), 10);
    thread::spawn(move || drop(rx)).join().unwrap();
    assert_eq!(drops.load(SeqCst), 13);
}

#[test]
fn the_receiver_is_a_stream_that_ends() {
    let (tx, rx) = mpsc::channel(8);
    let producers: Vec<_> = (0..2u32)
        .map(|id| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..500u32 {
                    futures_executor::block_on(tx.send(id * 1000 + i)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut all: Vec<u32> = percore_runtime::run(rx.collect()).unwrap();
    for producer in producers {
        producer.join().unwrap();
    }
    all.sort();
    let expected: Vec<u32> = (0..500).chain(1000..1500).collect();
    assert_eq!(all, expected);
}

#[test]
fn a_dropped_send_future_drops_its_value() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::channel(1);
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
    let _ = mpsc::channel::<u8>(0);
}

#[test]
fn ends_are_send_and_the_sender_is_sync() {
    fn is_send<T: Send>(_: &T) {}
    fn is_sync<T: Sync>(_: &T) {}
    let (tx, rx) = mpsc::channel::<String>(1);
    is_send(&tx);
    is_sync(&tx);
    is_send(&rx);
}

#[test]
fn a_dropped_receiver_lets_go_of_its_tasks_waker() {
    let (tx, rx) = mpsc::channel::<u32>(1);
    percore_runtime::run(async move {
        let task = percore_runtime::spawn(async move {
            let mut rx = rx;
            rx.recv().await
        });
        percore_runtime::yield_now().await; // the task waits in `recv`
        assert_eq!(percore_runtime::stats().tasks, 2);
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        // The receiver went with the task; the sender lives on, and must not
        // keep the task's cell alive through a stored waker.
        assert_eq!(
            percore_runtime::stats().tasks,
            1,
            "only the main task is left"
        );
        assert!(tx.try_send(1).is_err());
    })
    .unwrap();
}
