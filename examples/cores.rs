//! One pinned worker per core, each running its own future.
//!
//! `cargo run -p percore-examples --example cores`

use std::io;
use std::time::Duration;

fn main() -> io::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = percore::Runtime::builder().cores(cores).pin(true).build()?;
    let reports = runtime.run_on_all(|core| async move {
        let handles: Vec<_> = (0..10_000u64)
            .map(|i| percore::spawn(async move { i % 7 }))
            .collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.unwrap_or(0);
        }
        percore::time::sleep(Duration::from_millis(1)).await;
        format!(
            "core {core} (thread on core {}): sum {sum}, {} io_uring_enter calls",
            percore::current_core(),
            percore::stats().enters
        )
    })?;
    for line in reports {
        println!("{line}");
    }
    Ok(())
}
