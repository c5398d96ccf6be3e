//! The core-local primitives under the real runtime, with timers in the mix.

use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use percore_runtime::sync::{mpsc, oneshot, Event, Mutex, Semaphore};
use percore_runtime::{spawn, time};

#[test]
fn mutex_serialises_tasks_that_sleep_while_holding_it() {
    percore_runtime::run(async {
        let log = Rc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..5)
            .map(|i| {
                let log = log.clone();
                spawn(async move {
                    let mut guard = log.lock().await;
                    guard.push(("in", i));
                    time::sleep(Duration::from_millis(1)).await;
                    guard.push(("out", i));
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let log = log.lock().await;
        for pair in log.chunks(2) {
            assert_eq!(
                pair[0].1, pair[1].1,
                "nobody entered while another held the lock"
            );
        }
        assert_eq!(log.len(), 10);
    })
    .unwrap();
}

#[test]
fn semaphore_bounds_concurrency() {
    percore_runtime::run(async {
        let permits = Rc::new(Semaphore::new(3));
        let running = Rc::new(std::cell::Cell::new(0));
        let peak = Rc::new(std::cell::Cell::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (permits, running, peak) = (permits.clone(), running.clone(), peak.clone());
                spawn(async move {
                    let _permit = permits.acquire().await.unwrap();
                    running.set(running.get() + 1);
                    peak.set(peak.get().max(running.get()));
                    time::sleep(Duration::from_millis(1)).await;
                    running.set(running.get() - 1);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(peak.get(), 3);
    })
    .unwrap();
}

#[test]
fn channels_event_and_oneshot_between_tasks() {
    percore_runtime::run(async {
        let (tx, rx) = mpsc::channel(4);
        let producer = spawn(async move {
            for i in 0..1000u32 {
                tx.send(i).await.unwrap();
            }
        });
        let got: Vec<u32> = rx.collect().await;
        producer.await.unwrap();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());

        let event = Rc::new(Event::new());
        let (done_tx, done_rx) = oneshot::channel();
        let waiter = event.clone();
        let waiting = spawn(async move {
            waiter.wait().await;
            let _ = done_tx.send("seen");
        });
        time::sleep(Duration::from_millis(1)).await;
        assert!(!waiting.is_finished(), "the waiter waits for the event");
        event.set();
        assert_eq!(done_rx.await, Ok("seen"));
        waiting.await.unwrap();
    })
    .unwrap();
}
