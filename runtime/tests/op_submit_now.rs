//! `Op::submit_now`: the entry reaches the kernel before the next task runs,
//! not with the tick's closing enter.

use std::cell::Cell;
use std::rc::Rc;

use percore_runtime::op::Nop;
use percore_runtime::{spawn, stats, Op};

/// Enters seen by a second task that runs right after the first one pushed a NOP.
fn enters_seen_after_a_push(now: bool) -> u64 {
    percore_runtime::run(async move {
        let seen = Rc::new(Cell::new(0));
        let before = Rc::new(Cell::new(0));
        let first = spawn({
            let before = Rc::clone(&before);
            async move {
                before.set(stats().enters);
                let op = Op::new(Nop::new());
                let op = if now { op.submit_now() } else { op };
                op.await.unwrap();
            }
        });
        let second = spawn({
            let seen = Rc::clone(&seen);
            async move { seen.set(stats().enters) }
        });
        first.await.unwrap();
        second.await.unwrap();
        seen.get() - before.get()
    })
    .unwrap()
}

#[test]
fn a_pushed_op_waits_for_the_tick_by_default() {
    assert_eq!(enters_seen_after_a_push(false), 0);
}

#[test]
fn submit_now_enters_before_the_next_task() {
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
