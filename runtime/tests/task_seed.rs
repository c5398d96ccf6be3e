//! Seeded schedules: the seed decides the order ready tasks are polled in.

use std::cell::RefCell;
use std::rc::Rc;

use percore_runtime::{spawn, yield_now, Builder};

/// The order in which 100 tasks, spawned together, are first polled and then
/// polled again after each yields once.
fn poll_order(builder: Builder) -> Vec<u32> {
    builder
        .block_on(async {
            let order = Rc::new(RefCell::new(Vec::new()));
            let tasks: Vec<_> = (0..100)
                .map(|i| {
                    let order = order.clone();
                    spawn(async move {
                        order.borrow_mut().push(i);
                        yield_now().await;
                        order.borrow_mut().push(100 + i);
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            order.take()
        })
        .unwrap()
}

#[test]
fn the_same_seed_gives_the_same_poll_order() {
    let first = poll_order(Builder::new().seed(1));
    let second = poll_order(Builder::new().seed(1));
    assert_eq!(first.len(), 200);
    assert_eq!(first, second);
}

#[test]
fn two_seeds_give_different_poll_orders() {
    let one = poll_order(Builder::new().seed(1));
    let two = poll_order(Builder::new().seed(2));
    assert_ne!(one, two);
    let mut sorted = one.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..200).collect::<Vec<_>>(),
        "every poll happened once"
    );
}

#[test]
fn a_seeded_order_is_shuffled_and_an_unseeded_one_is_not() {
    let fifo: Vec<u32> = (0..200).collect();
    // An explicit seed wins over PERCORE_SEED, which may be set for this run.
    let seeded = poll_order(Builder::new().seed(3));
    assert_ne!(seeded, fifo, "a seed shuffles the order");
    if std::env::var_os("PERCORE_SEED").is_none() {
        assert_eq!(poll_order(Builder::new()), fifo, "without a seed: FIFO");
    }
}

#[test]
fn each_core_of_a_seeded_runtime_replays_its_order() {
    let order = || {
        let runtime = Builder::new().cores(2).seed(9).build().unwrap();
        runtime
            .run_on_all(|_| async {
                let order = Rc::new(RefCell::new(Vec::new()));
                let tasks: Vec<_> = (0..50)
                    .map(|i| {
                        let order = order.clone();
                        spawn(async move { order.borrow_mut().push(i) })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
                order.take()
            })
            .unwrap()
    };
    let first = order();
    assert_eq!(first, order());
    assert_ne!(first[0], first[1], "the cores draw different orders");
}

#[test]
fn yield_now_still_lets_every_ready_task_run_first_under_a_seed() {
    for seed in 0..20 {
        Builder::new()
            .seed(seed)
            .block_on(async {
                let ran = Rc::new(RefCell::new(0));
                for _ in 0..50 {
                    let ran = ran.clone();
                    drop(spawn(async move { *ran.borrow_mut() += 1 }));
                }
                yield_now().await;
                assert_eq!(
                    *ran.borrow(),
                    50,
                    "seed {seed}: all ran before the yield returned"
                );
            })
            .unwrap();
    }
}
