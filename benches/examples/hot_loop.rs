//! A fixed amount of runtime work for `valgrind --tool=callgrind`, which
//! counts instructions the same way however busy the machine is: the way to
//! see a hot-path change that timing noise hides.
//!
//! ```sh
//! cargo build --release -p percore-bench --example hot_loop
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/hot.out target/release/examples/hot_loop
//! ```
//!
//! Build it at two commits and compare the "Collected" totals. The work:
//! 200,000 spawns and joins, 128,000 `yield_now`s over 64 tasks, and 64,000
//! NOPs through the ring, with the stall detector on (the default).

use percore::op::Nop;
use percore::{spawn, yield_now, Op};

fn main() -> std::io::Result<()> {
    percore::run(async {
        for _ in 0..20 {
            let tasks: Vec<_> = (0..10_000u32).map(|i| spawn(async move { i })).collect();
            for task in tasks {
                task.await.expect("a task that returns a number");
            }
        }
        let yielders: Vec<_> = (0..64)
            .map(|_| {
                spawn(async {
                    for _ in 0..2_000 {
                        yield_now().await;
                    }
                })
            })
            .collect();
        for task in yielders {
            task.await.expect("a yielding task");
        }
        let ops: Vec<_> = (0..64)
            .map(|_| {
                spawn(async {
                    for _ in 0..1_000 {
                        Op::new(Nop::new()).await.expect("a NOP");
                    }
                })
            })
            .collect();
        for task in ops {
            task.await.expect("a task of NOPs");
        }
    })
}
