//! Registered files and buffers: READ_FIXED/WRITE_FIXED through a fixed slot.

mod util;

use percore_fs::{File, FixedBuffers, FixedFiles};

#[test]
fn fixed_files_and_buffers_round_trip() {
    let dir = util::TempDir::new("fixed");
    let path = dir.join("data");
    percore_runtime::run(async {
        let files = FixedFiles::new(4).unwrap();
        let bufs = FixedBuffers::new(2, 8192, 4096).unwrap();

        let file = files.register(File::create(&path).await.unwrap()).unwrap();
        // The file itself holds the slot: its own ops use it, and it never
        // takes a second one by becoming hot.
        assert_eq!(file.file().fixed_slot(), Some(file.index()));
        // The core's file table is shared: a second budget works beside the first.
        let more = FixedFiles::new(1).unwrap();
        let other = more.register(File::open(&path).await.unwrap()).unwrap();
        let err = more.register(File::open(&path).await.unwrap()).unwrap_err();
        assert!(err.to_string().contains("full (1 slots)"), "{err}");
        drop(other);
        let mut buf = bufs.get().unwrap();
        let other = bufs.get().unwrap();
        assert!(bufs.get().is_none(), "both lent out");
        assert_ne!(buf.index(), other.index());
        drop(other);

        buf.buffer_mut()
            .extend_from_slice(b"fixed buffers, fixed file");
        let (n, buf) = file.write_fixed_at(buf, 100).await;
        assert_eq!(n.unwrap(), 25);
        drop(buf);
        file.file().sync_data().await.unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[100..], b"fixed buffers, fixed file");

        let (n, buf) = file.read_fixed_at(bufs.get().unwrap(), 106).await;
        assert_eq!(n.unwrap(), 19);
        assert_eq!(&buf[..], b"buffers, fixed file");
        // A plain buffer through the fixed slot, and a fixed buffer through a plain fd.
        let (n, plain) = file.read_at(Vec::with_capacity(5), 100).await;
        assert_eq!((n.unwrap(), &plain[..]), (5, &b"fixed"[..]));
        let plain_file = File::open(&path).await.unwrap();
        let mut buf = buf;
        buf.buffer_mut().clear();
        let (n, buf) = plain_file.read_fixed_at(buf, 100).await;
        assert_eq!(n.unwrap(), 25);
        assert_eq!(&buf[..5], b"fixed");

        // Slots are reused once freed.
        let index = file.index();
        drop(file);
        let again = files.register(File::open(&path).await.unwrap()).unwrap();
        assert_eq!(again.index(), index);
    })
    .unwrap();
}

#[test]
fn a_fixed_buffer_stays_lent_until_a_cancelled_read_completes() {
    use std::future::Future;
    use std::task::{Context, Waker};

    percore_runtime::run(async {
        let bufs = FixedBuffers::new(1, 4096, 4096).unwrap();
        // A pipe with no data: the read stays in flight until cancelled.
        let (reader, writer) = std::io::pipe().unwrap();
        let file = File::from_std(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
        {
            let mut read = std::pin::pin!(file.read_fixed_at(bufs.get().unwrap(), 0));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(read.as_mut().poll(&mut cx).is_pending());
            percore_runtime::yield_now().await;
            assert_eq!(percore_runtime::stats().in_flight, 1);
        } // dropped in flight: the kernel may still write into the buffer
        assert!(
            bufs.get().is_none(),
            "the buffer is not back while the op may run"
        );
        assert_eq!(util::settle(1000).await, 0);
        let buf = bufs
            .get()
            .expect("back in the pool once the cancel completed");
        assert_eq!(buf.len(), 0);
        drop(writer);
    })
    .unwrap();
}
