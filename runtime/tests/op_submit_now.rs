//! `Op::submit_now`: the entry reaches the kernel before the next task runs,
//! not with the tick's closing enter.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use percore_runtime::op::Nop;
use percore_runtime::{spawn, stats, Op};

mod util;

/// Enters seen by a second task that runs right after the first one pushed a
/// NOP. The first spawns the second once its op is pushed, so the second is
/// the only task ready then, whatever the poll order (seeded or not).
fn enters_seen_after_a_push(now: bool) -> u64 {
    percore_runtime::run(async move {
        let first = spawn(async move {
            let before = stats().enters;
            let op = Op::new(Nop::new());
            let mut op = pin!(if now { op.submit_now() } else { op });
            let first_poll = poll_fn(|cx| Poll::Ready(op.as_mut().poll(cx))).await;
            assert!(first_poll.is_pending(), "pushed");
            let second = spawn(async move { stats().enters });
            op.await.unwrap();
            second.await.unwrap() - before
        });
        first.await.unwrap()
    })
    .unwrap()
}

#[test]
fn a_pushed_op_waits_for_the_tick_by_default() {
    if !util::io_uring_or_skip("a_pushed_op_waits_for_the_tick_by_default") {
        return;
    }
    assert_eq!(enters_seen_after_a_push(false), 0);
}

#[test]
fn submit_now_enters_before_the_next_task() {
    if !util::io_uring_or_skip("submit_now_enters_before_the_next_task") {
        return;
    }
    assert_eq!(enters_seen_after_a_push(true), 1);
}

/// With no other task waiting, the tick's own enter submits it: no extra call.
#[test]
fn submit_now_alone_costs_no_extra_enter() {
    let enters = |now: bool| {
        percore_runtime::run(async move {
            let before = stats().enters;
            for _ in 0..100 {
                let op = Op::new(Nop::new());
                let op = if now { op.submit_now() } else { op };
                op.await.unwrap();
            }
            stats().enters - before
        })
        .unwrap()
    };
    assert_eq!(enters(true), enters(false));
}
