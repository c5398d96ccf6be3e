//! Every core's counters on a Prometheus endpoint: one `SO_REUSEPORT`
//! listener per core answers `GET /metrics` with [`percore::all_stats`] in
//! Prometheus' text format (`percore_polls_total{core="0"} 1234`, …), from
//! whichever core takes the scrape. `SIGTERM` or Ctrl-C stops it.
//!
//! ```sh
//! cargo run --release -p percore-examples --example metrics -- --addr 127.0.0.1:9100 --cores 2
//! curl -s 127.0.0.1:9100/metrics
//! ```
//!
//! A thread that holds the `Runtime` reads the same figures with
//! `Runtime::stats()`.

use std::sync::{Arc, Mutex};

use percore::net::TcpListener;
use percore::shutdown::Shutdown;
use percore_examples::metrics::{bind, serve, Flags};

fn main() -> std::io::Result<()> {
    let flags = Flags::parse(std::env::args().skip(1))?;
    let (addr, listeners) = bind(flags.addr, flags.cores)?;
    let listeners = Arc::new(Mutex::new(listeners));
    let runtime = percore::Runtime::builder().cores(flags.cores).build()?;
    let shutdown = Shutdown::new();
    runtime.run_on(0, {
        let shutdown = shutdown.clone();
        move || async move { shutdown.begin_on_signals() }
    })??;
    println!(
        "metrics: serving http://{addr}/metrics ({} cores)",
        flags.cores
    );
    runtime.run_on_all(move |_core| {
        let listener = listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let shutdown = shutdown.clone();
        async move {
            if let Some(listener) = listener {
                serve(TcpListener::from_std(listener), shutdown).await;
            }
        }
    })?;
    for stats in runtime.stats() {
        println!(
            "metrics: core {} polled {} times, {} enters",
            stats.core, stats.polls, stats.enters
        );
    }
    Ok(())
}
