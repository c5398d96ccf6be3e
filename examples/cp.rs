//! `cp SRC DST`: copy a file with percore::fs, the next read in flight while
//! the last chunk is written, then print the throughput.
//!
//! `cargo run --release -p percore-examples --example cp -- SRC DST`

use std::process::ExitCode;
use std::time::Instant;

use percore::fs::{File, OpenOptions};

/// Bytes per read and write.
const CHUNK: usize = 1 << 20;

async fn copy(src: &str, dst: &str) -> std::io::Result<u64> {
    let src = File::open(src).await?;
    let meta = src.metadata().await?;
    let dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(meta.mode() & 0o7777)
        .open(dst)
        .await?;
    // Reserve the space up front: one extent, no ENOSPC halfway through.
    if !meta.is_empty() {
        dst.fallocate(0, meta.len(), 0).await?;
    }

    let mut pos = 0u64;
    let (res, mut chunk) = src.read_at(Vec::with_capacity(CHUNK), 0).await;
    let mut n = res?;
    let mut spare = Vec::with_capacity(CHUNK);
    while n > 0 {
        let next = pos + n as u64;
        // Both ops are submitted in the same tick: one syscall for the pair.
        let ((wrote, mut written), (read, filled)) =
            futures_util::future::join(dst.write_all_at(chunk, pos), src.read_at(spare, next))
                .await;
        wrote?;
        n = read?;
        written.clear();
        (spare, chunk, pos) = (written, filled, next);
    }
    // The file may have shrunk since we sized it.
    dst.set_len(pos).await?;
    dst.sync_all().await?;
    dst.close().await?;
    src.close().await?;
    Ok(pos)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst] = &args[..] else {
        eprintln!("usage: cp SRC DST");
        return ExitCode::from(2);
    };
    let start = Instant::now();
    match percore::run(copy(src, dst)) {
        Ok(Ok(bytes)) => {
            let secs = start.elapsed().as_secs_f64();
            let mib = bytes as f64 / (1 << 20) as f64;
            eprintln!("{bytes} bytes in {secs:.3} s ({:.0} MiB/s)", mib / secs);
            ExitCode::SUCCESS
        }
        Ok(Err(err)) | Err(err) => {
            eprintln!("cp: {err}");
            ExitCode::FAILURE
        }
    }
}
