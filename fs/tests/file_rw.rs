//! The rest of `File`: vectored I/O, append, sync_range, fallocate, set_len,
//! close, and the whole-file helpers read, write and copy.

mod util;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use percore_fs::{File, OpenOptions};
use percore_runtime::IoBuf;

#[test]
fn vectored_reads_and_writes() {
    let dir = util::TempDir::new("vectored");
    let path = dir.join("data");
    percore_runtime::run(async {
        let file = File::create(&path).await.unwrap();
        let bufs = vec![b"hello ".to_vec(), b"vectored ".to_vec(), b"world".to_vec()];
        let (n, bufs) = file.write_vectored_at(bufs, 3).await;
        assert_eq!(n.unwrap(), 20);
        assert_eq!(bufs.len(), 3);
        assert_eq!(std::fs::read(&path).unwrap(), b"\0\0\0hello vectored world");

        let bufs = vec![
            Vec::with_capacity(3),
            Vec::with_capacity(6),
            Vec::with_capacity(100),
        ];
        let (n, bufs) = file.read_vectored_at(bufs, 0).await;
        assert_eq!(n.unwrap(), 23);
        assert_eq!(bufs[0], b"\0\0\0");
        assert_eq!(bufs[1], b"hello ");
        assert_eq!(bufs[2], b"vectored world");
    })
    .unwrap();
}

#[test]
fn partial_buffers_and_slices() {
    let dir = util::TempDir::new("slices");
    let path = dir.join("data");
    percore_runtime::run(async {
        let file = File::create(&path).await.unwrap();
        // Only the slice's bytes are written.
        let (res, buf) = file
            .write_all_at(b"0123456789".to_vec().slice(2..5), 0)
            .await;
        res.unwrap();
        assert_eq!(buf.into_inner().len(), 10);
        assert_eq!(std::fs::read(&path).unwrap(), b"234");
        // A read appends after the buffer's initialised bytes.
        let mut buf = Vec::with_capacity(8);
        buf.extend_from_slice(b"ab");
        let (n, buf) = file.read_at(buf, 0).await;
        assert_eq!(n.unwrap(), 3);
        assert_eq!(buf, b"ab234");
        // At end of file a read returns 0.
        let (n, _) = file.read_at(Vec::with_capacity(8), 100).await;
        assert_eq!(n.unwrap(), 0);
    })
    .unwrap();
}

#[test]
fn append_sync_allocate_and_set_len() {
    let dir = util::TempDir::new("append");
    let path = dir.join("log");
    percore_runtime::run(async {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .await
            .unwrap();
        for line in ["one\n", "two\n"] {
            // O_APPEND: the offset is ignored, each write goes to the end.
            file.write_all_at(line.as_bytes().to_vec(), 0)
                .await
                .0
                .unwrap();
        }
        file.sync_data().await.unwrap();
        file.sync_range(
            0,
            0,
            libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        )
        .await
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\n");
        file.close().await.unwrap();

        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .await
            .unwrap();
        file.fallocate(0, 1 << 20, 0).await.unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 1 << 20);
        assert!(meta.blocks() * 512 >= 1 << 20);
        file.fallocate(0, 4 << 20, libc::FALLOC_FL_KEEP_SIZE)
            .await
            .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);

        file.set_len(5).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\nt");
        file.set_len(10).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\nt\0\0\0\0\0");
        assert_eq!(file.metadata().await.unwrap().len(), 10);
        file.close().await.unwrap();
    })
    .unwrap();
}

#[test]
fn read_write_and_copy_whole_files() {
    let dir = util::TempDir::new("whole");
    let (src, dst) = (dir.join("src"), dir.join("dst"));
    // Bigger than copy's 1 MiB chunk and not a multiple of it.
    let data: Vec<u8> = (0..(3 << 20) + 12345).map(|i| (i % 251) as u8).collect();
    percore_runtime::run(async {
        percore_fs::write(&src, data.clone()).await.unwrap();
        assert_eq!(std::fs::read(&src).unwrap(), data);
        assert_eq!(percore_fs::read(&src).await.unwrap(), data);

        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o640)).unwrap();
        let n = percore_fs::copy(&src, &dst).await.unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(std::fs::read(&dst).unwrap(), data);
        assert_eq!(std::fs::metadata(&dst).unwrap().mode() & 0o777, 0o640);

        percore_fs::write(&dst, b"short".to_vec()).await.unwrap();
        assert_eq!(std::fs::read(&dst).unwrap(), b"short");
        assert_eq!(
            percore_fs::read(dir.join("empty-missing"))
                .await
                .unwrap_err()
                .kind(),
            std::io::ErrorKind::NotFound
        );
        std::fs::write(dir.join("empty"), b"").unwrap();
        assert!(percore_fs::read(dir.join("empty"))
            .await
            .unwrap()
            .is_empty());
        let err = percore_fs::copy(dir.path(), dir.join("x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    })
    .unwrap();
}

#[test]
fn from_std_and_back() {
    let dir = util::TempDir::new("from-std");
    let path = dir.join("f");
    std::fs::write(&path, b"std").unwrap();
    percore_runtime::run(async {
        let file = File::from_std(std::fs::File::open(&path).unwrap());
        assert_eq!(file.path(), path);
        let (n, buf) = file.read_at(Vec::with_capacity(3), 0).await;
        assert_eq!((n.unwrap(), &buf[..]), (3, &b"std"[..]));
        let std = file.into_std();
        assert_eq!(std.metadata().unwrap().len(), 3);
    })
    .unwrap();
}
