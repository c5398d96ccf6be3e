//! Loom models of `channel::mpsc`: every interleaving of two sender threads
//! and one receiver, on a queue of one slot so that senders wait for room
//! (the `Waiters` list and its fence) and the receiver waits for values (the
//! `AtomicWaker`).
//!
//! `loom::future::block_on` parks its thread until its waker is woken, and
//! loom reports a deadlock if every thread is parked: so a model that
//! finishes lost no wakeup.
//!
//! The queue itself is `crossbeam-queue`'s `ArrayQueue` over std atomics,
//! which loom does not see: to loom each push and pop is one step, done in
//! program order. What is checked is the protocol around it (the counts,
//! `closed`, the waker slot and the waiter list), not the queue's insides.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p percore-runtime --test loom_mpsc --release`.
#![cfg(loom)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::Context;

use futures_util::task::noop_waker;
use loom::future::block_on;
use loom::thread;
use percore_runtime::channel::{mpsc, SendError};

/// Explores every interleaving with at most `bound` preemptions, or
/// `LOOM_MAX_PREEMPTIONS` if set.
fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(bound));
    builder.check(f);
}

/// Counts its drops (a plain std atomic: bookkeeping, not under test).
#[derive(Debug)]
struct Counted(u32, Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.fetch_add(1, SeqCst);
    }
}

/// Receives until the channel ends.
async fn drain<T>(rx: &mut mpsc::Receiver<T>) -> Vec<T> {
    let mut got = Vec::new();
    while let Some(value) = rx.recv().await {
        got.push(value);
    }
    got
}

#[test]
fn two_senders_through_one_slot_each_value_once_in_sender_order() {
    // Sender 0 sends two values, sender 1 one; with one slot someone waits
    // for room. The receiver sees `None` only after the last sender's drop,
    // and by then every value.
    model(2, || {
        let (tx0, mut rx) = mpsc::channel(1);
        let tx1 = tx0.clone();
        let first = thread::spawn(move || {
            block_on(async {
                tx0.send((0, 0)).await.unwrap();
                tx0.send((0, 1)).await.unwrap();
            })
        });
        let second = thread::spawn(move || block_on(tx1.send((1, 0))).unwrap());
        let got = block_on(drain(&mut rx));
        first.join().unwrap();
        second.join().unwrap();
        assert_eq!(got.len(), 3, "each value once: {got:?}");
        let of = |id| got.iter().filter(move |(s, _)| *s == id).map(|(_, i)| *i);
        assert_eq!(of(0).collect::<Vec<_>>(), [0, 1], "sender 0 in order");
        assert_eq!(of(1).collect::<Vec<_>>(), [0]);
    });
}

#[test]
fn dropping_the_receiver_fails_waiting_senders_with_their_own_value() {
    // Both senders race for one slot; the receiver is dropped (which also
    // empties it). Whoever waits is woken and gets its value back; each value
    // is dropped exactly once (queued ones with the receiver, or with the
    // channel if pushed after the receiver's drop emptied it).
    model(3, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx0, rx) = mpsc::channel(1);
        let senders: Vec<_> = (0..2)
            .map(|id| {
                let tx = tx0.clone();
                let drops = drops.clone();
                thread::spawn(move || match block_on(tx.send(Counted(id, drops))) {
                    Ok(()) => true,
                    Err(SendError(value)) => {
                        assert_eq!(value.0, id, "the error holds our own value");
                        false
                    }
                })
            })
            .collect();
        drop(tx0);
        drop(rx);
        for sender in senders {
            sender.join().unwrap();
        }
        assert_eq!(drops.load(SeqCst), 2, "each value dropped exactly once");
    });
}

#[test]
fn close_wakes_a_waiting_sender_and_keeps_the_queued_value() {
    // The slot is full before the sender starts, so it waits (or sees
    // `closed` first). `close` fails it; the queued value is still received.
    model(3, || {
        let (tx, mut rx) = mpsc::channel(1);
        tx.try_send(0).unwrap();
        let sender = thread::spawn(move || block_on(tx.send(1)));
        rx.close();
        assert_eq!(sender.join().unwrap(), Err(SendError(1)));
        assert_eq!(block_on(drain(&mut rx)), [0]);
    });
}

#[test]
fn a_send_dropped_after_its_wakeup_passes_it_on() {
    // A send parks as the oldest waiter (a no-op waker: nobody polls it
    // again) and is then dropped, racing with a second sender that waits for
    // real and with the receiver freeing the slot. If the dropped send was
    // the one woken, its drop must wake the second sender, or that one sleeps
    // forever (a loom deadlock).
    model(3, || {
        let (tx0, rx) = mpsc::channel(1);
        tx0.try_send(0).unwrap();
        let tx1 = tx0.clone();
        let waker = noop_waker();
        let mut quitter = Box::pin(tx0.send(9));
        let polled = quitter.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(polled.is_pending(), "the slot is full");
        let waiter = thread::spawn(move || block_on(tx1.send(1)).unwrap());
        let receiver = thread::spawn(move || {
            let mut rx = rx;
            block_on(drain(&mut rx))
        });
        drop(quitter);
        drop(tx0);
        waiter.join().unwrap();
        assert_eq!(receiver.join().unwrap(), [0, 1]);
    });
}
