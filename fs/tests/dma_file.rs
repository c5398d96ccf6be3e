//! `DmaFile`: alignment from the device, explained misalignment errors, and
//! unaligned ranges served from the covering blocks.

mod util;

use std::io::ErrorKind;

use percore_fs::{DmaBuffer, DmaFile};
use percore_runtime::IoBuf;

#[test]
fn alignment_comes_from_the_device() {
    let dir = util::TempDir::new("dma-align");
    let path = dir.join("f");
    percore_runtime::run(async {
        let file = DmaFile::create(&path).await.unwrap();
        let meta = percore_fs::metadata(&path).await.unwrap();
        let expected = meta.dio_offset_align().map_or(4096, |n| n as usize);
        assert_eq!(file.block_size(), expected);
        let mem = meta.dio_mem_align().map_or(4096, |n| n as usize);
        assert_eq!(file.mem_alignment(), mem);
        let buf = file.alloc_buffer(100);
        assert_eq!(buf.capacity() % file.block_size(), 0);
        assert_eq!(buf.as_ptr() as usize % file.mem_alignment(), 0);
    })
    .unwrap();
}

#[test]
fn misaligned_buffers_get_an_explained_error() {
    let dir = util::TempDir::new("dma-misaligned");
    let path = dir.join("f");
    percore_runtime::run(async {
        let file = DmaFile::create(&path).await.unwrap();
        let block = file.block_size();
        let sqes = percore_runtime::stats().sqes;

        // A buffer one byte past an aligned address (when the device needs more
        // than byte alignment).
        if file.mem_alignment() > 1 {
            let mut big = DmaBuffer::new(4 * block, 4096);
            big.resize(1, 0);
            let (res, _) = file.read_at(big.slice(..block + 1), 0).await;
            let err = res.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            let text = err.to_string();
            assert!(text.contains("misaligned O_DIRECT read"), "{text}");
            assert!(text.contains("buffer address"), "{text}");
            assert!(text.contains(path.to_str().unwrap()), "{text}");
        }

        // A length that is not whole blocks.
        let mut buf = file.alloc_buffer(block);
        buf.resize(block - 1, 7);
        let (res, _) = file.write_at(buf, 0).await;
        let text = res.unwrap_err().to_string();
        assert!(
            text.contains(&format!("length {} is not a multiple", block - 1)),
            "{text}"
        );

        // An offset that is not whole blocks.
        let (res, _) = file.read_at(file.alloc_buffer(block), 3).await;
        let text = res.unwrap_err().to_string();
        assert!(text.contains("offset 3 is not a multiple"), "{text}");
        assert!(text.contains("DmaFile::alloc_buffer"), "{text}");

        // Nothing reached the kernel.
        assert_eq!(percore_runtime::stats().sqes, sqes);
    })
    .unwrap();
}

#[test]
fn read_range_serves_unaligned_ranges() {
    let dir = util::TempDir::new("dma-range");
    let path = dir.join("f");
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    percore_runtime::run(async {
        let file = DmaFile::open(&path).await.unwrap();
        for (pos, len) in [
            (0, 10),
            (1, 4095),
            (4000, 200),
            (4096, 4096),
            (12345, 6000),
            (19990, 100),
            (25000, 10),
        ] {
            let got = file.read_range(pos, len).await.unwrap();
            let start = (pos as usize).min(data.len());
            let end = (start + len).min(data.len());
            assert_eq!(&got[..], &data[start..end], "range {pos}+{len}");
        }
        // A length no buffer can hold is an explained error, not an overflow.
        let err = file.read_range(1, usize::MAX).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let text = err.to_string();
        assert!(
            text.contains("does not fit in memory") && text.contains("/f"),
            "{text}"
        );
        // Whole aligned reads work with any buffer that is aligned, and a short
        // read at the end of the file reports what it got.
        let block = file.block_size();
        let buf = file.alloc_buffer(5 * block);
        let capacity = buf.capacity();
        assert!(capacity >= 5 * block && capacity % block == 0);
        let (n, buf) = file.read_at(buf, 0).await;
        let n = n.unwrap();
        assert_eq!(n, data.len().min(capacity));
        assert_eq!(&buf[..], &data[..n]);
    })
    .unwrap();
}
