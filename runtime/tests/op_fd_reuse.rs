//! An fd closed while the driver knows it, and its number reused by a new
//! file: a wait on the new file must see the new file's readiness. On epoll
//! the old file's registration goes away with it, so the driver must never
//! trust what it kept about the number; on io_uring nothing is kept. Both
//! backends run it.

use std::os::fd::AsRawFd;
use std::time::Duration;

use percore_runtime::op::Read;
use percore_runtime::time::timeout;
use percore_runtime::{Builder, Driver, Op};

mod util;

fn reads_through_a_reused_number(driver: Driver) {
    Builder::new()
        .driver(driver)
        .block_on(async {
            let mut numbers = Vec::new();
            for round in 0..50u8 {
                // A read that waits on an empty pipe, cancelled in flight: the
                // driver was watching this number when the pipe closes.
                let (old, old_writer) = util::pipe();
                let waiting = percore_runtime::spawn(Op::new(Read::new(
                    old.as_raw_fd(),
                    Vec::with_capacity(8),
                    u64::MAX,
                )));
                percore_runtime::yield_now().await;
                waiting.abort();
                assert!(waiting.await.is_err(), "aborted while it waited");
                // A raw fd must stay open until its op completes (`op` docs);
                // the cancelled read completes within a few turns.
                for _ in 0..10_000 {
                    if percore_runtime::stats().in_flight == 0 {
                        break;
                    }
                    percore_runtime::yield_now().await;
                }
                assert_eq!(percore_runtime::stats().in_flight, 0);
                drop((old, old_writer));

                // The next pipe takes the same numbers.
                let (reader, writer) = util::pipe();
                numbers.push(reader.as_raw_fd());
                let read = percore_runtime::spawn(Op::new(Read::new(
                    reader.as_raw_fd(),
                    Vec::with_capacity(8),
                    u64::MAX,
                )));
                percore_runtime::yield_now().await;
                util::write_fd(&writer, &[round]);
                // A bound only for a hang (a lost wakeup), far above any wait here.
                let (res, buf) = timeout(Duration::from_secs(10), read)
                    .await
                    .expect("the read completes: the new pipe's data woke it")
                    .expect("the read task");
                assert_eq!(res.expect("a read from the pipe"), 1);
                assert_eq!(buf, [round]);
            }
            numbers.dedup();
            assert!(numbers.len() < 50, "fd numbers were reused: {numbers:?}");
        })
        .expect("a runtime starts");
}

#[test]
fn epoll_registers_a_reused_number_afresh() {
    reads_through_a_reused_number(Driver::Epoll);
}

#[test]
fn io_uring_reads_through_a_reused_number() {
    reads_through_a_reused_number(Driver::IoUring);
}
