//! Dropping a read future in flight is safe: its op-table slot is freed when
//! the cancellation completes, and the file stays usable.

mod util;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};

use std::time::Duration;

use percore_fs::{DmaFile, File};

/// Polls `future` once, so its SQE is pushed, and says whether it finished.
fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    future.poll(&mut cx).is_ready()
}

#[test]
fn dropping_a_read_in_flight_frees_its_slot() {
    let _serial = util::serial();
    let fds_before = util::settled_fd_count();
    percore_runtime::run(async {
        // A pipe with no writer data: the read stays in flight until cancelled.
        let (reader, writer) = std::io::pipe().unwrap();
        let file = File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
        assert_eq!(percore_runtime::stats().in_flight, 0);
        {
            let mut read = pin!(file.read_at(Vec::with_capacity(4096), 0));
            assert!(!poll_once(read.as_mut()), "nothing to read yet");
            // Let the core submit it.
            percore_runtime::yield_now().await;
            assert_eq!(percore_runtime::stats().in_flight, 1);
        } // dropped in flight: cancelled, its buffer kept until the CQE
        assert_eq!(util::settle(1000).await, 0, "the slot was freed");

        // The file still works: data written now is read by a new read.
        use std::io::Write;
        (&writer).write_all(b"after").unwrap();
        let (res, buf) = file.read_at(Vec::with_capacity(16), 0).await;
        assert_eq!(res.unwrap(), 5);
        assert_eq!(buf, b"after");
        drop(writer);
        file.close().await.unwrap();
    })
    .unwrap();
    // Not above: an fd an earlier test's runtime was still closing when
    // this one began may be gone by now (once in CI on epoll: 6 against 8).
    let fds_after = util::fd_count_back_to(fds_before);
    assert!(
        fds_after <= fds_before,
        "no fd leaked: {fds_after} against {fds_before}"
    );
}

#[test]
fn dropping_many_reads_in_flight_on_a_regular_file() {
    let _serial = util::serial();
    let dir = util::TempDir::new("cancel-many");
    let path = dir.join("data");
    std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
    percore_runtime::run(async {
        let file = File::open(&path).await.unwrap();
        for round in 0..100u64 {
            let mut read = pin!(file.read_at(Vec::with_capacity(65536), round * 4096));
            if !poll_once(read.as_mut()) {
                percore_runtime::yield_now().await;
            }
            // Dropped here, in flight or completed but not taken.
        }
        assert_eq!(util::settle(1000).await, 0);
        let (res, buf) = file.read_at(Vec::with_capacity(10), 0).await;
        assert_eq!(res.unwrap(), 10);
        assert_eq!(buf, [7u8; 10]);
    })
    .unwrap();
}

#[test]
fn dropping_direct_reads_in_flight_frees_their_slots_and_ends_the_polling() {
    let _serial = util::serial();
    let dir = util::TempDir::new("cancel-direct");
    let path = dir.join("data");
    std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
    percore_runtime::run(async {
        let file = DmaFile::open(&path).await.unwrap();
        for round in 0..100u64 {
            let mut read = pin!(file.read_at(file.alloc_buffer(4096), round * 4096));
            if !poll_once(read.as_mut()) {
                percore_runtime::yield_now().await;
            }
            // Dropped here, at the device or completed but not taken.
        }
        assert_eq!(util::settle(1000).await, 0);
        // No device op is in flight any more: an idle core sleeps at once.
        let before = percore_runtime::stats();
        percore_runtime::time::sleep(Duration::from_millis(20)).await;
        let after = percore_runtime::stats();
        assert!(after.parks > before.parks);
        assert_eq!(
            after.spins, before.spins,
            "the core polled for dropped reads"
        );
        let (res, buf) = file.read_at(file.alloc_buffer(4096), 8192).await;
        assert_eq!(res.unwrap(), 4096);
        assert!(buf.iter().all(|&b| b == 7));
    })
    .unwrap();
}

#[test]
fn dropping_before_the_first_poll_submits_nothing() {
    let _serial = util::serial();
    percore_runtime::run(async {
        let file = File::open("Cargo.toml").await.unwrap();
        let sqes = percore_runtime::stats().sqes;
        drop(file.read_at(Vec::with_capacity(64), 0));
        assert_eq!(percore_runtime::stats().sqes, sqes);
        assert_eq!(percore_runtime::stats().in_flight, 0);
    })
    .unwrap();
}
