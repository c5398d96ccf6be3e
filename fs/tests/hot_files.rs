//! Hot files: a `File` installs itself in its core's registered file table
//! after 64 ops, reads the same bytes by slot, and leaves the table when
//! closed or dropped (on its core or on another thread), so the file really
//! closes.

mod util;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use percore_fs::File;

/// Whether another open file description can take an exclusive `flock` on
/// `path`: false while any reference to a locked description lives, the
/// io_uring file table's included.
fn lock_is_free(path: &Path) -> bool {
    let other = std::fs::File::open(path).unwrap();
    // SAFETY: flock on an fd `other` keeps open; no memory is passed.
    let rc = unsafe { libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    rc == 0
}

fn lock(file: &File) {
    // SAFETY: as in `lock_is_free`.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
}

/// Reads block `i` (of 100 bytes each, filled with `i`) and checks it.
async fn read_block(file: &File, i: u64) {
    let (n, buf) = file.read_at(Vec::with_capacity(100), i * 100).await;
    assert_eq!(n.unwrap(), 100);
    assert!(buf.iter().all(|&b| b == i as u8), "block {i}");
}

/// A runtime without faults (`PERCORE_FAULTS`): these tests count the ops
/// that make a file hot, and a short read would add some.
fn exact() -> percore_runtime::Builder {
    percore_runtime::Builder::new().faults("none").unwrap()
}

fn data_file(dir: &util::TempDir) -> std::path::PathBuf {
    let path = dir.join("data");
    let data: Vec<u8> = (0..200u32).flat_map(|i| [i as u8; 100]).collect();
    std::fs::write(&path, data).unwrap();
    path
}

#[test]
fn a_file_takes_a_slot_once_hot_and_gives_it_back_on_close() {
    let dir = util::TempDir::new("hot-close");
    let path = data_file(&dir);
    exact()
        .block_on(async {
            let file = File::open(&path).await.unwrap();
            lock(&file);
            for i in 0..64 {
                read_block(&file, i).await;
            }
            assert_eq!(file.fixed_slot(), None, "64 ops: not hot yet");
            read_block(&file, 64).await;
            let slot = file.fixed_slot().expect("hot after 65 ops");
            for i in 65..200 {
                read_block(&file, i).await;
            }
            assert_eq!(file.fixed_slot(), Some(slot));
            file.sync_all().await.unwrap();

            // A second hot file takes another slot.
            let other = File::open(&path).await.unwrap();
            for i in 0..100 {
                read_block(&other, i).await;
            }
            assert_ne!(other.fixed_slot(), Some(slot));
            assert!(other.fixed_slot().is_some());

            assert!(!lock_is_free(&path));
            file.close().await.unwrap();
            assert!(lock_is_free(&path), "closing a hot file closes it");
        })
        .unwrap();
}

#[test]
fn a_hot_file_dropped_on_another_thread_leaves_its_core_table() {
    let dir = util::TempDir::new("hot-remote-drop");
    let path = data_file(&dir);
    let rt = exact().cores(2).build().unwrap();
    let opened = path.clone();
    let file = rt
        .run_on(0, move || async move {
            let file = File::open(&opened).await.unwrap();
            lock(&file);
            for i in 0..100 {
                read_block(&file, i).await;
            }
            assert!(file.fixed_slot().is_some());
            Arc::new(file)
        })
        .unwrap();

    // Core 1 names it by fd, and reads the same bytes.
    let shared = Arc::clone(&file);
    rt.run_on(1, move || async move {
        assert_eq!(shared.fixed_slot(), None, "the slot is core 0's");
        for i in 100..200 {
            read_block(&shared, i).await;
        }
    })
    .unwrap();

    assert!(!lock_is_free(&path));
    drop(file); // here, on a thread that runs no core
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lock_is_free(&path) {
        assert!(Instant::now() < deadline, "core 0 never emptied the slot");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A hot file that outlives its runtime is named by fd in the next one, even
/// where that runtime's table has another file in the same slot.
#[test]
fn a_slot_belongs_to_its_runtime() {
    let dir = util::TempDir::new("hot-next-runtime");
    let first = data_file(&dir);
    let second = dir.join("other");
    std::fs::write(&second, vec![0xEEu8; 20_000]).unwrap();
    let opened = first.clone();
    let (file, slot) = exact()
        .block_on(async move {
            let file = File::open(&opened).await.unwrap();
            for i in 0..100 {
                read_block(&file, i).await;
            }
            let slot = file.fixed_slot().expect("hot");
            (file, slot)
        })
        .unwrap();
    exact()
        .block_on(async move {
            assert_eq!(file.fixed_slot(), None, "the slot was the last runtime's");
            let other = File::open(&second).await.unwrap();
            for _ in 0..100 {
                let (n, buf) = other.read_at(Vec::with_capacity(100), 0).await;
                assert_eq!(n.unwrap(), 100);
                assert!(buf.iter().all(|&b| b == 0xEE));
            }
            assert_eq!(
                other.fixed_slot(),
                Some(slot),
                "the new table starts at the same slot"
            );
            // The old file still reads its own bytes, by fd.
            for i in 100..200 {
                read_block(&file, i).await;
            }
        })
        .unwrap();
}
