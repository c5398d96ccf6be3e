//! `spawn_on`: tasks spawned on another core, awaited anywhere.

use std::io::ErrorKind;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use percore_runtime::{RemoteJoinHandle, Runtime};

fn assert_send_unpin<T: Send + Unpin>(_: &T) {}

#[test]
fn from_a_plain_thread() {
    let runtime = Arc::new(Runtime::builder().cores(2).build().unwrap());
    let inner = Arc::clone(&runtime);
    let (core, value) = std::thread::spawn(move || {
        let handle = inner
            .spawn_on(1, || async {
                percore_runtime::time::sleep(Duration::from_millis(1)).await;
                (percore_runtime::current_core(), 42)
            })
            .unwrap();
        assert_send_unpin(&handle);
        futures_executor::block_on(handle).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!((core, value), (1, 42));
}

#[test]
fn from_core_0_to_core_1_a_thousand_times() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let sum = runtime
        .run_on(0, || async {
            let mut sum = 0u64;
            for i in 0..1_000u64 {
                let handle = percore_runtime::spawn_on(1, move || async move {
                    if i % 2 == 0 {
                        percore_runtime::yield_now().await;
                    }
                    assert_eq!(percore_runtime::current_core(), 1);
                    i
                })
                .unwrap();
                let got = handle.await.unwrap();
                assert_eq!(got, i);
                assert_eq!(percore_runtime::current_core(), 0);
                sum += got;
            }
            sum
        })
        .unwrap();
    assert_eq!(sum, (0..1_000).sum::<u64>());
}

#[test]
fn the_future_may_hold_rc() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let handle: RemoteJoinHandle<usize> = runtime
        .spawn_on(1, || {
            let shared = Rc::new(3);
            let clone = Rc::clone(&shared);
            async move {
                percore_runtime::yield_now().await;
                *shared + *clone + Rc::strong_count(&shared)
            }
        })
        .unwrap();
    assert_eq!(futures_executor::block_on(handle).unwrap(), 8);
}

#[test]
fn spawn_on_the_own_core_and_on_a_single_core_run() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let core = runtime
        .run_on(1, || async {
            let handle =
                percore_runtime::spawn_on(1, || async { percore_runtime::current_core() }).unwrap();
            handle.await.unwrap()
        })
        .unwrap();
    assert_eq!(core, 1);

    percore_runtime::run(async {
        let handle = percore_runtime::spawn_on(0, || async { 5 }).unwrap();
        assert_eq!(handle.await.unwrap(), 5);
        let err = percore_runtime::spawn_on(1, || async {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("core 1"), "{err}");
        assert!(err.to_string().contains("has 1"), "{err}");
    })
    .unwrap();
}

#[test]
fn a_panic_reaches_the_awaiting_side() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let handle = runtime
        .spawn_on(1, || async {
            percore_runtime::yield_now().await;
            panic!("boom on core 1");
        })
        .unwrap();
    let err = futures_executor::block_on(handle).unwrap_err();
    assert!(err.is_panic());
    assert!(err.to_string().contains("boom on core 1"), "{err}");

    // A panic in the closure itself, and one awaited from another core.
    let err = runtime
        .run_on(0, || async {
            percore_runtime::spawn_on(1, || -> std::future::Ready<()> { panic!("in f") })
                .unwrap()
                .await
                .unwrap_err()
        })
        .unwrap();
    assert!(err.is_panic());
    // The core lives on.
    assert_eq!(runtime.run_on(1, || async { 1 }).unwrap(), 1);
}

struct RecordDrop(Arc<AtomicUsize>);

impl Drop for RecordDrop {
    fn drop(&mut self) {
        self.0
            .store(percore_runtime::current_core(), Ordering::SeqCst);
    }
}

#[test]
fn abort_drops_the_future_on_its_core() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let dropped_on = Arc::new(AtomicUsize::new(usize::MAX));
    let record = Arc::clone(&dropped_on);
    let (started_tx, started_rx) = mpsc::channel();
    let handle = runtime
        .spawn_on(1, move || async move {
            let _guard = RecordDrop(record);
            started_tx.send(()).unwrap();
            percore_runtime::time::sleep(Duration::from_secs(3600)).await;
        })
        .unwrap();
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(!handle.is_finished());
    handle.abort();
    let err = futures_executor::block_on(handle).unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(dropped_on.load(Ordering::SeqCst), 1);

    // Aborted from another core, awaited there.
    let dropped_on = Arc::new(AtomicUsize::new(usize::MAX));
    let record = Arc::clone(&dropped_on);
    let cancelled = runtime
        .run_on(0, move || async move {
            let handle = percore_runtime::spawn_on(1, move || async move {
                let _guard = RecordDrop(record);
                percore_runtime::time::sleep(Duration::from_secs(3600)).await;
            })
            .unwrap();
            percore_runtime::time::sleep(Duration::from_millis(5)).await;
            handle.abort();
            handle.await.unwrap_err().is_cancelled()
        })
        .unwrap();
    assert!(cancelled);
    assert_eq!(dropped_on.load(Ordering::SeqCst), 1);

    // Abort after completion keeps the output.
    let handle = runtime.spawn_on(1, || async { 9 }).unwrap();
    while !handle.is_finished() {
        std::thread::yield_now();
    }
    handle.abort();
    assert_eq!(futures_executor::block_on(handle).unwrap(), 9);
}

#[test]
fn a_bad_core_index_is_invalid_input() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let err = runtime.spawn_on(2, || async {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("core 2"), "{err}");
    let err = runtime
        .run_on(0, || async {
            percore_runtime::spawn_on(7, || async {}).unwrap_err()
        })
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("core 7"), "{err}");
    assert!(err.to_string().contains("has 2"), "{err}");
}

#[test]
fn the_handle_outlives_the_runtime() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let handle = runtime
        .spawn_on(1, move || async move {
            started_tx.send(()).unwrap();
            percore_runtime::time::sleep(Duration::from_secs(3600)).await;
        })
        .unwrap();
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // One that never finishes, just sent (it may not have started yet): it
    // resolves too, whether its job ran or was dropped unrun.
    let queued = runtime.spawn_on(0, std::future::pending::<()>).unwrap();
    drop(runtime);

    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let first = futures_executor::block_on(handle);
        let second = futures_executor::block_on(queued);
        let _ = done_tx.send((
            first.is_err_and(|e| e.is_cancelled()),
            second.is_err_and(|e| e.is_cancelled()),
        ));
    });
    let (first, second) = done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the handles resolved");
    assert!(first && second);
}

/// Between cores of one runtime, a parked core is woken by a `MSG_RING` riding
/// on the sender's own enter, not by an eventfd write (a syscall of its own).
#[test]
fn cores_wake_parked_peers_with_msg_ring() {
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let (driver, supported, msg_rings, parks) = runtime
        .run_on(0, || async {
            // Core 1 parks between jobs, and core 0 parks awaiting each one.
            for i in 0..200u64 {
                let handle = percore_runtime::spawn_on(1, move || async move {
                    percore_runtime::time::sleep(Duration::from_millis(i % 2)).await;
                    i
                })
                .unwrap();
                assert_eq!(handle.await.unwrap(), i);
            }
            let stats = percore_runtime::stats();
            let msg_ring = percore_runtime::io_uring::opcode::MsgRingData::CODE;
            (
                stats.driver,
                percore_runtime::is_supported(msg_ring),
                stats.msg_rings,
                stats.parks,
            )
        })
        .unwrap();
    assert!(parks > 0, "core 0 parked awaiting its jobs");
    if driver != percore_runtime::Driver::IoUring {
        // The epoll backend wakes peers through their eventfds.
        assert_eq!(msg_rings, 0);
        return;
    }
    assert!(
        supported,
        "MSG_RING is in every kernel percore supports (5.18+)"
    );
    assert!(
        msg_rings > 0,
        "core 0 woke parked core 1 without MSG_RING ({parks} parks)"
    );
}
