//! 256 MiB as 4 KiB blocks written in a shuffled order with 64 writes in flight,
//! synced, reopened and verified block by block — through `File` and `DmaFile`.

mod util;

use std::cell::Cell;
use std::rc::Rc;

use percore_fs::{DmaFile, File, OpenOptions};
use util::{checksum, fill_block, Rng, TempDir};

const BLOCK: usize = 4096;
const BLOCKS: u64 = (256 << 20) / BLOCK as u64;
const IN_FLIGHT: usize = 64;

/// The expected checksum of every block, and the order to write them in.
fn plan() -> (Vec<u64>, Vec<u64>) {
    let mut block = vec![0u8; BLOCK];
    let sums = (0..BLOCKS)
        .map(|i| {
            fill_block(&mut block, i);
            checksum(&block)
        })
        .collect();
    let mut order: Vec<u64> = (0..BLOCKS).collect();
    Rng::new(42).shuffle(&mut order);
    (sums, order)
}

/// Runs `worker(next_index)` on `IN_FLIGHT` tasks that share one queue of indices.
async fn in_flight<F, Fut>(order: Rc<Vec<u64>>, worker: F)
where
    F: Fn(u64) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let next = Rc::new(Cell::new(0usize));
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (next, order, worker) = (next.clone(), order.clone(), worker.clone());
            percore_runtime::spawn(async move {
                loop {
                    let i = next.get();
                    if i >= order.len() {
                        break;
                    }
                    next.set(i + 1);
                    worker(order[i]).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("worker task");
    }
}

#[test]
fn buffered_shuffled_blocks_survive_sync_and_reopen() {
    let dir = TempDir::new("blocks-buffered");
    let path = dir.join("data");
    let (sums, order) = plan();
    let order = Rc::new(order);
    percore_runtime::Builder::new()
        .stall_threshold(None)
        .block_on(async {
            let file = Rc::new(File::create(&path).await.unwrap());
            let writer = file.clone();
            in_flight(order.clone(), move |i| {
                let file = writer.clone();
                async move {
                    let mut block = vec![0u8; BLOCK];
                    fill_block(&mut block, i);
                    let (res, _) = file.write_all_at(block, i * BLOCK as u64).await;
                    res.unwrap();
                }
            })
            .await;
            file.sync_all().await.unwrap();
            Rc::try_unwrap(file).unwrap().close().await.unwrap();

            let file = Rc::new(File::open(&path).await.unwrap());
            assert_eq!(file.metadata().await.unwrap().len(), BLOCKS * BLOCK as u64);
            let sums = Rc::new(sums);
            let verified = Rc::new(Cell::new(0u64));
            let (reader, seen) = (file.clone(), verified.clone());
            in_flight(order, move |i| {
                let (file, sums, seen) = (reader.clone(), sums.clone(), seen.clone());
                async move {
                    let (res, block) = file
                        .read_exact_at(Vec::with_capacity(BLOCK), i * BLOCK as u64)
                        .await;
                    res.unwrap();
                    assert_eq!(checksum(&block), sums[i as usize], "block {i}");
                    seen.set(seen.get() + 1);
                }
            })
            .await;
            assert_eq!(verified.get(), BLOCKS);
        })
        .unwrap();
}

#[test]
fn direct_shuffled_blocks_survive_sync_and_reopen() {
    let dir = TempDir::new("blocks-direct");
    let path = dir.join("data");
    let (sums, order) = plan();
    let order = Rc::new(order);
    percore_runtime::Builder::new()
        .stall_threshold(None)
        .block_on(async {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(true).truncate(true);
            let file = Rc::new(DmaFile::open_with(&options, &path).await.unwrap());
            assert_eq!(
                BLOCK % file.block_size(),
                0,
                "a 4 KiB block is whole blocks"
            );
            let writer = file.clone();
            in_flight(order.clone(), move |i| {
                let file = writer.clone();
                async move {
                    let mut block = file.alloc_buffer(BLOCK);
                    block.resize(BLOCK, 0);
                    fill_block(&mut block, i);
                    let (res, _) = file.write_all_at(block, i * BLOCK as u64).await;
                    res.unwrap();
                }
            })
            .await;
            file.sync_all().await.unwrap();
            Rc::try_unwrap(file).unwrap().close().await.unwrap();

            let file = Rc::new(DmaFile::open(&path).await.unwrap());
            let sums = Rc::new(sums);
            let verified = Rc::new(Cell::new(0u64));
            let (reader, seen) = (file.clone(), verified.clone());
            in_flight(order, move |i| {
                let (file, sums, seen) = (reader.clone(), sums.clone(), seen.clone());
                async move {
                    let buf = file.alloc_buffer(BLOCK);
                    let (res, block) = file.read_at(buf, i * BLOCK as u64).await;
                    assert_eq!(res.unwrap(), BLOCK);
                    assert_eq!(checksum(&block), sums[i as usize], "block {i}");
                    seen.set(seen.get() + 1);
                }
            })
            .await;
            assert_eq!(verified.get(), BLOCKS);
        })
        .unwrap();
}
