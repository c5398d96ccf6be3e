//! Loom models of `channel::spsc`: every interleaving of one producer thread
//! and one consumer thread, on a ring of one slot so that both sides park.
//!
//! `loom::future::block_on` parks its thread until its waker is woken, and
//! loom reports a deadlock if every thread is parked: so a model that
//! finishes lost no wakeup.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p percore-runtime --test loom_channel --release`.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use loom::future::block_on;
use loom::thread;
use percore_runtime::channel::{spsc, SendError, TryRecvError};

/// Explores every interleaving with at most `bound` preemptions, or
/// `LOOM_MAX_PREEMPTIONS` if set.
fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(bound));
    builder.check(f);
}

/// Counts its drops (a plain std atomic: bookkeeping, not under test).
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// Receives until the channel ends.
async fn drain<T>(rx: &mut spsc::Receiver<T>) -> Vec<T> {
    let mut got = Vec::new();
    while let Some(value) = rx.recv().await {
        got.push(value);
    }
    got
}

#[test]
fn two_values_through_one_slot_arrive_once_in_order() {
    model(4, || {
        let (mut tx, mut rx) = spsc::channel(1);
        let producer = thread::spawn(move || {
            block_on(async {
                for i in 0..2 {
                    tx.send(i).await.unwrap();
                }
            })
        });
        assert_eq!(block_on(drain(&mut rx)), [0, 1]);
        producer.join().unwrap();
    });
}

#[test]
fn three_values_through_one_slot_arrive_once_in_order() {
    model(3, || {
        let (mut tx, mut rx) = spsc::channel(1);
        let producer = thread::spawn(move || {
            block_on(async {
                for i in 0..3 {
                    tx.send(i).await.unwrap();
                }
            })
        });
        assert_eq!(block_on(drain(&mut rx)), [0, 1, 2]);
        producer.join().unwrap();
    });
}

#[test]
fn a_consumer_polling_try_recv_sees_each_value_once() {
    // The consumer spins on `try_recv` instead of parking: values still
    // arrive once, and `Disconnected` comes only after the last one.
    model(5, || {
        let (mut tx, mut rx) = spsc::channel(1);
        let producer = thread::spawn(move || {
            block_on(async {
                for i in 0..2 {
                    tx.send(i).await.unwrap();
                }
            })
        });
        let mut got = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(value) => got.push(value),
                Err(TryRecvError::Empty) => thread::yield_now(),
                Err(TryRecvError::Disconnected) => break,
            }
        }
        assert_eq!(got, [0, 1]);
        producer.join().unwrap();
    });
}

#[test]
fn dropping_the_receiver_wakes_a_waiting_sender_and_drops_each_value_once() {
    model(4, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = spsc::channel(1);
        let counted = drops.clone();
        let producer = thread::spawn(move || {
            block_on(async {
                let mut sent = 0;
                for _ in 0..3 {
                    match tx.send(Counted(counted.clone())).await {
                        Ok(()) => sent += 1,
                        Err(SendError(value)) => drop(value),
                    }
                }
                sent
            })
        });
        let first = block_on(rx.recv());
        assert!(first.is_some(), "the sender is alive until it sent three");
        drop(first);
        drop(rx);
        let sent = producer.join().unwrap();
        assert!(sent >= 1);
        assert_eq!(drops.load(SeqCst), 3, "each value dropped exactly once");
    });
}
