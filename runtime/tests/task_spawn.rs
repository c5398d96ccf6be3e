//! Spawning, joining, aborting, panics, wakes from other threads.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use percore_runtime::task::JoinSet;
use percore_runtime::{spawn, yield_now, Builder};

fn quiet() -> Builder {
    Builder::new().stall_threshold(None)
}

#[test]
fn a_million_spawn_join_round_trips() {
    let sum = quiet()
        .block_on(async {
            let mut sum = 0u64;
            for chunk in 0..100u64 {
                let handles: Vec<_> = (0..10_000u64)
                    .map(|i| spawn(async move { chunk * 10_000 + i }))
                    .collect();
                for handle in handles {
                    sum += handle.await.expect("task completes");
                }
            }
            sum
        })
        .unwrap();
    let n = 1_000_000u64;
    assert_eq!(sum, n * (n - 1) / 2);
}

#[test]
fn a_panicking_task_yields_join_error_and_the_core_goes_on() {
    quiet()
        .block_on(async {
            let bad = spawn(async {
                yield_now().await;
                panic!("boom in a task");
            });
            let good = spawn(async {
                yield_now().await;
                7
            });
            let err = bad.await.expect_err("the panic surfaces as an error");
            assert!(err.is_panic());
            assert!(err.to_string().contains("boom in a task"), "{err}");
            assert_eq!(good.await.unwrap(), 7);
            // The core still serves new tasks after the panic.
            assert_eq!(spawn(async { 8 }).await.unwrap(), 8);
        })
        .unwrap();
}

#[test]
fn a_panic_in_the_main_future_is_resumed_after_shutdown() {
    let result = std::panic::catch_unwind(|| quiet().block_on(async { panic!("main panics") }));
    let payload = result.expect_err("run resumes the panic");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"main panics"));
}

#[test]
fn abort_cancels_and_drops_the_future() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    quiet()
        .block_on(async {
            let dropped = Rc::new(Cell::new(false));
            let flag = Flag(dropped.clone());
            let handle = spawn(async move {
                let _flag = flag;
                std::future::pending::<()>().await;
            });
            yield_now().await;
            handle.abort();
            let err = handle.await.expect_err("aborted");
            assert!(err.is_cancelled());
            assert!(dropped.get(), "the future was dropped");
        })
        .unwrap();
}

#[test]
fn abort_after_completion_keeps_the_output() {
    quiet()
        .block_on(async {
            let handle = spawn(async { 5 });
            yield_now().await;
            assert!(handle.is_finished());
            handle.abort();
            assert_eq!(handle.await.unwrap(), 5);
        })
        .unwrap();
}

#[test]
fn a_dropped_handle_detaches() {
    quiet()
        .block_on(async {
            let ran = Rc::new(Cell::new(false));
            let flag = ran.clone();
            drop(spawn(async move {
                yield_now().await;
                flag.set(true);
            }));
            for _ in 0..3 {
                yield_now().await;
            }
            assert!(ran.get(), "a detached task still runs");
        })
        .unwrap();
}

#[test]
fn tasks_left_running_are_dropped_at_shutdown() {
    let dropped = Rc::new(Cell::new(0));
    struct Count(Rc<Cell<i32>>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let counter = dropped.clone();
    quiet()
        .block_on(async move {
            for _ in 0..100 {
                let count = Count(counter.clone());
                drop(spawn(async move {
                    let _count = count;
                    percore_runtime::time::sleep(Duration::from_secs(3600)).await;
                }));
            }
            yield_now().await;
        })
        .unwrap();
    assert_eq!(
        dropped.get(),
        100,
        "every idle task's future was dropped on shutdown"
    );
}

#[test]
fn a_waker_from_a_plain_thread_wakes_its_task() {
    quiet()
        .block_on(async {
            let woken = Arc::new(AtomicUsize::new(0));
            let flag = woken.clone();
            let mut sent = false;
            std::future::poll_fn(|cx| {
                if flag.load(Ordering::SeqCst) == 1 {
                    return std::task::Poll::Ready(());
                }
                if !sent {
                    sent = true;
                    let waker = cx.waker().clone();
                    let flag = flag.clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(20));
                        flag.store(1, Ordering::SeqCst);
                        waker.wake();
                    });
                }
                std::task::Poll::Pending
            })
            .await;
            assert_eq!(woken.load(Ordering::SeqCst), 1);
            assert!(percore_runtime::stats().remote_wakes >= 1);
        })
        .unwrap();
}

#[test]
fn many_wakes_from_another_thread_are_not_lost() {
    quiet()
        .block_on(async {
            let (tx, rx) = std::sync::mpsc::channel::<std::task::Waker>();
            let waker_thread = std::thread::spawn(move || {
                let mut woke = 0;
                while let Ok(waker) = rx.recv() {
                    waker.wake();
                    woke += 1;
                }
                woke
            });
            for _ in 0..10_000 {
                let mut asked = false;
                std::future::poll_fn(|cx| {
                    if asked {
                        return std::task::Poll::Ready(());
                    }
                    asked = true;
                    tx.send(cx.waker().clone()).expect("waker thread alive");
                    std::task::Poll::Pending
                })
                .await;
            }
            drop(tx);
            assert_eq!(waker_thread.join().unwrap(), 10_000);
        })
        .unwrap();
}

#[test]
fn run_inside_run_is_an_error() {
    quiet()
        .block_on(async {
            let err = percore_runtime::run(async {}).expect_err("nested runtimes are refused");
            assert!(err.to_string().contains("already running"), "{err}");
        })
        .unwrap();
}

#[test]
fn join_set_gathers_and_cancels_on_first_error() {
    quiet()
        .block_on(async {
            let mut set = JoinSet::new();
            for i in 0..50u32 {
                set.spawn(async move {
                    yield_now().await;
                    Ok::<u32, String>(i)
                });
            }
            assert_eq!(
                set.try_join_all().await.unwrap(),
                (0..50).collect::<Vec<_>>()
            );

            let finished = Rc::new(Cell::new(0));
            let mut set = JoinSet::new();
            for i in 0..10u32 {
                let finished = finished.clone();
                set.spawn(async move {
                    if i == 3 {
                        return Err(format!("task {i} failed"));
                    }
                    percore_runtime::time::sleep(Duration::from_secs(3600)).await;
                    finished.set(finished.get() + 1);
                    Ok(i)
                });
            }
            let err = set.try_join_all().await.expect_err("task 3 fails");
            assert!(err.to_string().contains("task 3 failed"), "{err}");
            yield_now().await;
            assert_eq!(
                finished.get(),
                0,
                "the others were cancelled, not run to the end"
            );
        })
        .unwrap();
}

#[test]
fn yield_now_lets_others_run() {
    quiet()
        .block_on(async {
            let order = Rc::new(std::cell::RefCell::new(Vec::new()));
            let a = order.clone();
            let other = spawn(async move { a.borrow_mut().push("other") });
            order.borrow_mut().push("main before");
            yield_now().await;
            order.borrow_mut().push("main after");
            other.await.unwrap();
            assert_eq!(*order.borrow(), ["main before", "other", "main after"]);
        })
        .unwrap();
}

#[test]
fn spawn_outside_a_runtime_panics_with_a_clear_message() {
    let err = std::panic::catch_unwind(|| drop(spawn(async {}))).expect_err("no runtime");
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("inside a percore runtime"), "{msg}");
}

#[test]
fn a_waker_cloned_and_dropped_on_another_thread_frees_its_task_on_its_core() {
    quiet()
        .block_on(async {
            let baseline = percore_runtime::stats().tasks;
            let (tx, rx) = std::sync::mpsc::channel::<std::task::Waker>();
            let keeper = std::thread::spawn(move || {
                // Holds the clones until the tasks are done, then drops them here.
                let wakers: Vec<_> = rx.iter().collect();
                std::thread::sleep(Duration::from_millis(20));
                drop(wakers);
            });
            for _ in 0..100 {
                let tx = tx.clone();
                let mut polled = false;
                spawn(std::future::poll_fn(move |cx| {
                    if polled {
                        return std::task::Poll::Ready(());
                    }
                    polled = true;
                    // Clone from the borrowed waker on a foreign thread.
                    let borrowed: &std::task::Waker = cx.waker();
                    std::thread::scope(|s| {
                        s.spawn(|| tx.send(borrowed.clone()).unwrap());
                    });
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                }))
                .await
                .unwrap();
            }
            drop(tx);
            assert!(
                percore_runtime::stats().tasks >= baseline + 100,
                "wakers keep tasks alive"
            );
            keeper.join().unwrap();
            for _ in 0..100 {
                if percore_runtime::stats().tasks == baseline {
                    break;
                }
                percore_runtime::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(
                percore_runtime::stats().tasks,
                baseline,
                "every task was freed on its core"
            );
        })
        .unwrap();
}

#[test]
fn a_waker_that_outlives_its_runtime_is_harmless() {
    let (tx, rx) = std::sync::mpsc::channel::<std::task::Waker>();
    quiet()
        .block_on(async move {
            let task = spawn(std::future::poll_fn(move |cx| {
                tx.send(cx.waker().clone()).unwrap();
                std::task::Poll::<()>::Pending
            }));
            yield_now().await;
            drop(task);
        })
        .unwrap();
    let waker = rx.recv().unwrap();
    // The runtime is gone: waking and dropping from another thread must not crash.
    std::thread::spawn(move || {
        waker.wake_by_ref();
        waker.wake();
    })
    .join()
    .unwrap();
}

#[test]
fn finished_tasks_are_freed() {
    quiet()
        .block_on(async {
            let baseline = percore_runtime::stats().tasks;
            let handles: Vec<_> = (0..1000).map(|i| spawn(async move { i })).collect();
            assert_eq!(percore_runtime::stats().tasks, baseline + 1000);
            for handle in handles {
                handle.await.unwrap();
            }
            for _ in 0..1000 {
                drop(spawn(async { yield_now().await }));
            }
            for _ in 0..3 {
                yield_now().await;
            }
            assert_eq!(percore_runtime::stats().tasks, baseline);
        })
        .unwrap();
}
