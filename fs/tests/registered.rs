//! `DmaFile` buffers from the core's registered memory: fixed reads and writes
//! without the caller doing anything, byte for byte like plain ones, next to
//! `FixedBuffers` pools that share the ring's buffer table.

mod util;

use std::os::unix::process::CommandExt;

use percore_fs::{DmaBuffer, DmaFile, File, FixedBuffers};
use percore_runtime::{registered, IoBuf};

/// Blocks written and read through registered buffers (whole and sliced) hold
/// the same bytes as through heap buffers and `std`.
#[test]
fn registered_buffers_round_trip() {
    if !util::io_uring_or_skip("registered_buffers_round_trip") {
        return;
    }
    let dir = util::TempDir::new("registered-rw");
    let path = dir.join("f");
    percore_runtime::run(async {
        let file = DmaFile::create(&path).await.unwrap();
        let block = file.block_size();
        let mut buf = file.alloc_buffer(4 * block);
        assert!(buf.is_registered(), "{buf:?}");
        assert!(registered::index_of(buf.as_ptr(), buf.capacity()).is_some());
        buf.resize(4 * block, 0);
        for (i, chunk) in buf.chunks_mut(block).enumerate() {
            chunk.fill(b'a' + i as u8);
        }
        let (res, buf) = file.write_all_at(buf, 0).await;
        res.unwrap();
        drop(buf);
        file.sync_all().await.unwrap();

        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), 4 * block);
        assert!(on_disk[block..2 * block].iter().all(|&b| b == b'b'));

        // The third block into the second block of a registered buffer.
        let mut buf = file.alloc_buffer(2 * block);
        buf.resize(block, 0);
        let (n, back) = file.read_at(buf.slice(..2 * block), 2 * block as u64).await;
        assert_eq!(n.unwrap(), block);
        let buf = back.into_inner();
        assert!(buf[block..].iter().all(|&b| b == b'c'));

        // The same through a heap buffer.
        let heap = DmaBuffer::new(block, file.mem_alignment().max(block));
        assert!(!heap.is_registered());
        let (n, heap) = file.read_at(heap, 3 * block as u64).await;
        assert_eq!(n.unwrap(), block);
        assert!(heap.iter().all(|&b| b == b'd'));

        // A buffered `File` reads and writes registered memory too.
        let plain = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .await
            .unwrap();
        let mut buf = DmaBuffer::new_registered(100, 8);
        assert!(buf.is_registered());
        buf.extend_from_slice(b"registered, buffered");
        let (res, buf) = plain.write_all_at(buf, 10).await;
        res.unwrap();
        let (res, back) = plain
            .read_exact_at(DmaBuffer::new_registered(20, 8), 10)
            .await;
        res.unwrap();
        assert_eq!(&back[..20], &buf[..]);
    })
    .unwrap();
}

/// A registered buffer dropped on another thread, after its runtime ended,
/// frees nothing twice; new buffers keep working.
#[test]
fn buffers_outlive_their_runtime() {
    if !util::io_uring_or_skip("buffers_outlive_their_runtime") {
        return;
    }
    let dir = util::TempDir::new("registered-outlive");
    let path = dir.join("f");
    std::fs::write(&path, vec![7u8; 1 << 16]).unwrap();
    let kept = percore_runtime::run(async {
        let file = DmaFile::open(&path).await.unwrap();
        let (n, buf) = file.read_at(file.alloc_buffer(4096), 0).await;
        assert_eq!(n.unwrap(), 4096);
        buf
    })
    .unwrap();
    assert!(kept.is_registered());
    assert!(kept.iter().all(|&b| b == 7));
    std::thread::spawn(move || drop(kept)).join().unwrap();
    percore_runtime::run(async {
        let file = DmaFile::open(&path).await.unwrap();
        let (n, buf) = file.read_at(file.alloc_buffer(4096), 4096).await;
        assert_eq!(n.unwrap(), 4096);
        assert!(buf.is_registered());
        assert!(buf.iter().all(|&b| b == 7));
    })
    .unwrap();
}

/// Two `FixedBuffers` pools on one core (the ring has one table; each pool takes
/// slots of it) next to registered memory, all reading the right bytes.
#[test]
fn pools_share_the_table() {
    let dir = util::TempDir::new("registered-pools");
    let path = dir.join("f");
    let data: Vec<u8> = (0..1 << 16).map(|i| (i / 4096) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    percore_runtime::run(async {
        let dma = DmaFile::open(&path).await.unwrap();
        let registered_buf = dma.alloc_buffer(4096);
        let first = FixedBuffers::new(2, 4096, 4096).unwrap();
        let second = FixedBuffers::new(3, 4096, 4096).unwrap();
        let (a, b) = (first.get().unwrap(), second.get().unwrap());
        assert_ne!(a.index(), b.index());
        let file = File::open(&path).await.unwrap();
        let (n, a) = file.read_fixed_at(a, 4096).await;
        assert_eq!((n.unwrap(), a[0]), (4096, 1));
        let (n, b) = file.read_fixed_at(b, 2 * 4096).await;
        assert_eq!((n.unwrap(), b[0]), (4096, 2));
        let (n, r) = dma.read_at(registered_buf, 3 * 4096).await;
        assert_eq!((n.unwrap(), r[4095]), (4096, 3));

        // A dropped pool gives its slots back: a new one of the same size fits
        // where it was.
        let index = b.index();
        drop((b, second));
        let third = FixedBuffers::new(3, 4096, 4096).unwrap();
        assert_eq!(third.get().unwrap().index(), index);

        let err = FixedBuffers::new(0, 4096, 4096).unwrap_err();
        assert!(err.to_string().contains("1 to 4096 buffers"), "{err}");
    })
    .unwrap();
}

/// Set in the child process that runs `a_low_memlock_limit_falls_back_to_the_heap`.
const LOW_MEMLOCK: &str = "PERCORE_FS_TEST_LOW_MEMLOCK";

/// Under a 64 KiB `RLIMIT_MEMLOCK` (and without `CAP_IPC_LOCK`, which lifts
/// it), the core cannot register its 2 MiB regions: buffers come from the heap
/// and every read and write still works.
#[test]
fn a_low_memlock_limit_falls_back_to_the_heap() {
    if let Ok(dir) = std::env::var(LOW_MEMLOCK) {
        let limit = libc::rlimit {
            rlim_cur: 64 << 10,
            rlim_max: 64 << 10,
        };
        // SAFETY: setrlimit reads one rlimit struct that lives across the call.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) }, 0);
        let path = std::path::Path::new(&dir).join("f");
        percore_runtime::run(async move {
            let file = DmaFile::create(&path).await.unwrap();
            let mut buf = file.alloc_buffer(4096);
            assert!(!buf.is_registered(), "2 MiB cannot be pinned under 64 KiB");
            buf.resize(4096, b'm');
            let (res, _) = file.write_all_at(buf, 0).await;
            res.unwrap();
            let (n, back) = file.read_at(file.alloc_buffer(4096), 0).await;
            assert_eq!(n.unwrap(), 4096);
            assert!(back.iter().all(|&b| b == b'm'));
            assert!(
                registered::alloc(4096, 4096).is_none(),
                "the pool stays closed"
            );
        })
        .unwrap();
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: dropping CAP_IPC_LOCK by switching to uid 65534 needs root");
        return;
    }
    let dir = util::TempDir::new("registered-memlock");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_low_memlock_limit_falls_back_to_the_heap",
            "--nocapture",
        ])
        .env(LOW_MEMLOCK, dir.path())
        .uid(65534)
        .gid(65534)
        .status();
    match status {
        Ok(status) => assert!(status.success(), "the check as nobody failed: {status}"),
        // The test binary itself is out of nobody's reach (a private target dir).
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("skipped: uid 65534 cannot run this test binary: {err}")
        }
        Err(err) => panic!("could not run the check as nobody: {err}"),
    }
}

/// A read into registered memory dropped in flight keeps its chunk out of the
/// pool until the kernel is done with it (its cancelled completion arrived):
/// no new buffer is handed memory the kernel may still write.
#[test]
fn a_chunk_stays_taken_until_a_cancelled_read_completes() {
    if !util::io_uring_or_skip("a_chunk_stays_taken_until_a_cancelled_read_completes") {
        return;
    }
    use std::future::Future;
    use std::task::{Context, Waker};

    percore_runtime::run(async {
        // A pipe with no data: the read stays in flight until cancelled.
        let (reader, writer) = std::io::pipe().unwrap();
        let file = File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
        let buf = DmaBuffer::new_registered(4096, 4096);
        assert!(buf.is_registered());
        let addr = buf.as_ptr() as usize;
        {
            let mut read = std::pin::pin!(file.read_at(buf, 0));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(read.as_mut().poll(&mut cx).is_pending());
            percore_runtime::yield_now().await;
            assert_eq!(percore_runtime::stats().in_flight, 1);
        } // dropped in flight
        let next = DmaBuffer::new_registered(4096, 4096);
        assert_ne!(
            next.as_ptr() as usize,
            addr,
            "the chunk is still the kernel's"
        );
        assert_eq!(util::settle(1000).await, 0);
        // Now the op's buffer is dropped and its chunk is free (and reused first).
        let again = DmaBuffer::new_registered(4096, 4096);
        assert_eq!(again.as_ptr() as usize, addr);
        assert!(
            again.as_full_slice().iter().all(|&b| b == 0),
            "zeroed again"
        );
        drop(writer);
    })
    .unwrap();
}
