//! Tasks, timers and core-local channels on one core.
//!
//! `cargo run -p percore-examples --example hello`

use std::time::Duration;

use futures_util::StreamExt;
use percore::sync::mpsc;
use percore::time::{self, Instant};

#[percore::main]
async fn main() {
    let start = Instant::now();
    let (tx, mut rx) = mpsc::channel(8);
    for worker in 0..4u64 {
        let tx = tx.clone();
        // Tasks may hold `!Send` state: they never leave this core.
        let label = std::rc::Rc::new(format!("worker {worker}"));
        drop(percore::spawn(async move {
            time::sleep(Duration::from_millis(10 * (4 - worker))).await;
            tx.send(format!("{label} done after {:?}", start.elapsed()))
                .await
                .expect("the receiver outlives the workers");
        }));
    }
    drop(tx);
    while let Some(line) = rx.next().await {
        println!("{line}");
    }
    let stats = percore::stats();
    println!(
        "core {}: {} tasks spawned, {} polls, {} timers fired, {} io_uring_enter calls",
        stats.core, stats.spawned, stats.polls, stats.timers_fired, stats.enters
    );
}
