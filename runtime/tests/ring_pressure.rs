//! A tiny ring under far more ops than it has entries: nothing dropped, no panic.

mod util;

use std::os::fd::AsRawFd;

use futures_util::future::join_all;
use percore_runtime::op::{Nop, Read};
use percore_runtime::{spawn, Builder, Op};

#[test]
fn eight_sq_entries_complete_fifty_thousand_concurrent_ops() {
    Builder::new()
        .ring_entries(8)
        .stall_threshold(None)
        .block_on(async {
            let handles: Vec<_> = (0..50_000).map(|_| spawn(Op::new(Nop::new()))).collect();
            let mut ok = 0;
            for handle in handles {
                assert_eq!(handle.await.unwrap().unwrap(), 0);
                ok += 1;
            }
            assert_eq!(ok, 50_000);
            let stats = percore_runtime::stats();
            assert!(stats.sqes >= 50_000, "every op was submitted: {stats:?}");
            assert!(stats.sq_full > 0, "the SQ really was full: {stats:?}");
            assert_eq!(stats.in_flight, 0);
        })
        .unwrap();
}

#[test]
fn a_cq_smaller_than_the_ops_in_flight_delivers_every_completion() {
    const PIPES: usize = 300;
    Builder::new()
        .ring_entries(8)
        .cq_entries(16)
        .stall_threshold(None)
        .block_on(async {
            let pipes: Vec<_> = (0..PIPES).map(|_| util::pipe()).collect();
            let reads: Vec<_> = pipes
                .iter()
                .map(|(rx, _)| Op::new(Read::new(rx.as_raw_fd(), Vec::with_capacity(16), u64::MAX)))
                .collect();
            let all = spawn(join_all(reads));
            // Let every read reach the kernel, then make all of them complete at once.
            for _ in 0..4 {
                percore_runtime::yield_now().await;
            }
            assert_eq!(percore_runtime::stats().in_flight, PIPES);
            for (i, (_, tx)) in pipes.iter().enumerate() {
                util::write_fd(tx, format!("{i:08}").as_bytes());
            }
            let results = all.await.unwrap();
            assert_eq!(results.len(), PIPES);
            for (i, (n, buf)) in results.into_iter().enumerate() {
                assert_eq!(n.unwrap(), 8);
                assert_eq!(
                    buf,
                    format!("{i:08}").as_bytes(),
                    "read {i} got its own bytes"
                );
            }
            let stats = percore_runtime::stats();
            assert!(
                stats.overflows > 0,
                "the CQ overflowed, yet nothing was lost: {stats:?}"
            );
        })
        .unwrap();
}
