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
            if stats.driver == percore_runtime::Driver::IoUring {
                assert!(stats.sq_full > 0, "the SQ really was full: {stats:?}");
            }
            assert_eq!(stats.in_flight, 0);
        })
        .unwrap();
}

#[test]
fn a_cq_smaller_than_the_ops_in_flight_delivers_every_completion() {
    const PIPES: usize = 300;
    // Its own ring sizes, and no faults (`PERCORE_FAULTS`): each read must
    // take its 8 bytes in one op to be matched with its pipe.
    Builder::new()
        .faults("none")
        .unwrap()
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
            if stats.driver == percore_runtime::Driver::IoUring {
                assert!(
                    stats.overflows > 0,
                    "the CQ overflowed, yet nothing was lost: {stats:?}"
                );
            }
        })
        .unwrap();
}

#[test]
fn completions_reaped_while_pushing_to_a_full_sq_wake_their_tasks() {
    // Eight NOPs fill the 8-entry SQ; pushing the read next forces a submit and a
    // reap *while the task is being polled*. The NOPs' completion must still wake
    // the task, though the only op left in flight (the read) never completes.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = Builder::new().ring_entries(8).block_on(async {
            let (rx, _tx) = util::pipe();
            let nops = join_all((0..8).map(|_| Op::new(Nop::new())));
            let read = Op::new(Read::new(rx.as_raw_fd(), Vec::with_capacity(8), u64::MAX));
            match futures_util::future::select(Box::pin(nops), read).await {
                futures_util::future::Either::Left((results, _read)) => results.len(),
                futures_util::future::Either::Right(_) => 0,
            }
        });
        let _ = done_tx.send(result.map_err(|e| e.to_string()));
    });
    let finished = done_rx.recv_timeout(std::time::Duration::from_secs(20));
    assert_eq!(
        finished.expect("the task was woken, not left asleep"),
        Ok(8)
    );
}
