//! Many more ops than the ring has entries: every one completes, correctly.

mod util;

use std::rc::Rc;

use percore_fs::File;

#[test]
fn a_tiny_ring_serves_a_thousand_concurrent_reads() {
    let dir = util::TempDir::new("pressure");
    let path = dir.join("data");
    let data: Vec<u8> = (0..1000u32 * 16).map(|i| (i / 16) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    percore_runtime::Builder::new()
        .ring_entries(4)
        .block_on(async {
            let file = Rc::new(File::open(&path).await.unwrap());
            let reads: Vec<_> = (0..1000u64)
                .map(|i| {
                    let file = file.clone();
                    percore_runtime::spawn(async move {
                        let (res, buf) = file.read_exact_at(Vec::with_capacity(16), i * 16).await;
                        res.unwrap();
                        assert!(buf.iter().all(|&b| b == i as u8), "block {i}");
                    })
                })
                .collect();
            for read in reads {
                read.await.unwrap();
            }
            let stats = percore_runtime::stats();
            if stats.driver == percore_runtime::Driver::IoUring {
                assert!(stats.sq_full > 0, "the SQ did fill up");
            }
        })
        .unwrap();
}
