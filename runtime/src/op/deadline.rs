//! `Deadline<T>`: an op with a deadline ([`Op::deadline`](crate::Op::deadline)).

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::future::{release_without_driver, start_fallback, SingleOrphan};
use crate::driver::{cqe_result, linked_result, Key, Lifecycle, OpCode, Started};
use crate::executor::{self, Core};
use crate::task::raw as task;
use crate::time::{self, Instant, Sleep};

/// The future of an op with a deadline, from [`Op::deadline`](crate::Op::deadline)
/// or [`Op::timeout`](crate::Op::timeout): the op's output, or if the op did
/// not complete by the deadline, the output of the op failed with
/// [`io::ErrorKind::TimedOut`] (its data, such as a read's buffer, comes back
/// as with any error).
///
/// On io_uring the kernel times the op: its SQE is linked (`IOSQE_IO_LINK`)
/// to an `IORING_OP_LINK_TIMEOUT`, submitted with it, which cancels it at the
/// deadline; the core keeps no timer for it. On the epoll backend, and while
/// the core's clock is paused (the kernel knows only real time), a timer on
/// the core's wheel cancels the op instead.
///
/// An op that completed returns its result, even if the deadline passed
/// meanwhile (a read that got its data, a send cut short that reports what
/// went out); an op whose deadline passed before it was first polled is
/// still tried once. Dropping it in flight is as safe as dropping an
/// [`Op`](crate::Op): nothing the kernel may still write is freed, and the
/// op's slot is freed only once both its CQE and its timeout's arrived.
///
/// # Panics
///
/// Polling panics outside a percore runtime.
#[must_use = "a Deadline does nothing unless awaited"]
pub struct Deadline<T: OpCode> {
    data: Option<T>,
    key: Option<Key>,
    deadline: Instant,
    timing: Timing,
    /// Enter the kernel right after pushing (`Op::submit_now`).
    now: bool,
    /// In flight and counted in the driver's `holding` ops.
    holds: bool,
    _not_send: PhantomData<*const ()>,
}

/// How the op in flight is timed.
enum Timing {
    /// By the kernel: the slot is `Linked` (or plain `Waiting`, if the fault
    /// layer failed the op instead of running it, and then untimed), or by
    /// nothing (a result kept back for the cooperative budget).
    Kernel,
    /// By a timer on the core's wheel; `cancelled` once it fired and the op
    /// was asked to stop.
    Wheel { sleep: Sleep, cancelled: bool },
}

// As `Op`: `T` is never pinned, and `Sleep` is `Unpin`.
impl<T: OpCode> Unpin for Deadline<T> {}

impl<T: OpCode> Deadline<T> {
    pub(super) fn new(data: T, deadline: Instant, now: bool) -> Deadline<T> {
        Deadline {
            data: Some(data),
            key: None,
            deadline,
            timing: Timing::Kernel,
            now,
            holds: false,
            _not_send: PhantomData,
        }
    }

    /// The instant the op is cancelled at if it has not completed.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Submits the op (see [`Op::poll`](crate::Op)): linked to a timeout on
    /// io_uring, else timed on the wheel.
    fn start(&mut self, mut data: T, cx: &mut Context<'_>) -> Poll<T::Output> {
        let sqe = data.sqe();
        let holds = data.completes_on_its_own();
        let waker = task::op_waker(cx.waker());
        let deadline = self.deadline.into_std();
        let linked = executor::with_core(|core| {
            if core.clock.is_paused() {
                return None;
            }
            let after = deadline.saturating_duration_since(core.clock.now());
            let mut driver = core.driver.borrow_mut();
            let started = driver.start_linked(sqe.clone(), after, Some(waker.clone()))?;
            if holds && started.is_ok() {
                driver.holding += 1;
            }
            Some(started)
        });
        match linked {
            Some(Ok(key)) => {
                self.timing = Timing::Kernel;
                return self.submitted(key, holds, data);
            }
            Some(Err(err)) => return Poll::Ready(data.complete(Err(err), 0)),
            None => {}
        }
        let waiting = Lifecycle::Waiting(Some(waker));
        let started = executor::with_driver(|driver| {
            let started = driver.start(sqe, waiting);
            if holds && matches!(started, Ok(Started::Pending(_))) {
                driver.holding += 1;
            }
            started
        });
        let started = match started {
            Err(err) if err.kind() == io::ErrorKind::Unsupported => {
                start_fallback(&mut data, err, holds, cx)
            }
            started => started,
        };
        match started {
            Ok(Started::Pending(key)) => {
                let mut sleep = time::sleep_until(self.deadline);
                let cancelled = Pin::new(&mut sleep).poll(cx).is_ready();
                if cancelled {
                    executor::with_driver(|driver| driver.cancel(key));
                }
                self.timing = Timing::Wheel { sleep, cancelled };
                self.submitted(key, holds, data)
            }
            Ok(Started::Done { res, .. }) if res == -libc::EINTR => self.start_again(data, cx),
            Ok(Started::Done { res, flags }) => {
                // Ready without waiting: a unit of the task's budget (`coop`),
                // or with none left, a slot that keeps the result.
                if !executor::with_core(Core::coop_take) {
                    let key = executor::with_core(|core| {
                        let mut driver = core.driver.borrow_mut();
                        core.coop_stash(&mut driver.ops, res, flags, cx.waker())
                    });
                    self.timing = Timing::Kernel;
                    self.key = Some(key);
                    self.data = Some(data);
                    return Poll::Pending;
                }
                Poll::Ready(data.complete(cqe_result(res), flags))
            }
            Err(err) => Poll::Ready(data.complete(Err(err), 0)),
        }
    }

    fn submitted(&mut self, key: Key, holds: bool, data: T) -> Poll<T::Output> {
        if self.now {
            executor::with_core(|core| core.flush.set(true));
        }
        self.key = Some(key);
        self.holds = holds;
        self.data = Some(data);
        Poll::Pending
    }

    /// An op interrupted (`EINTR`) before it did anything, and before its
    /// deadline: submitted again, with what is left of the time.
    #[cold]
    fn start_again(&mut self, data: T, cx: &Context<'_>) -> Poll<T::Output> {
        self.data = Some(data);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// What a poll of an op in flight found.
enum Step {
    Wait,
    /// The op's CQE: its result as the caller sees it (`-ETIMEDOUT` for an
    /// op the deadline stopped), and flags.
    Done(i32, u32),
}

impl<T: OpCode> Future for Deadline<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = self.get_mut();
        let Some(data) = this.data.take() else {
            panic!("`Deadline` polled after it completed");
        };
        let Some(key) = this.key else {
            return this.start(data, cx);
        };
        let holds = this.holds;
        let cancelled = matches!(
            this.timing,
            Timing::Wheel {
                cancelled: true,
                ..
            }
        );
        let step = executor::with_core(|core| {
            let mut driver = core.driver.borrow_mut();
            let driver = &mut *driver;
            let ops = &mut driver.ops;
            let step = match ops.table.get_mut(key) {
                Some(Lifecycle::Waiting(waker)) => {
                    if !waker
                        .as_ref()
                        .is_some_and(|w| task::same_task(w, cx.waker()))
                    {
                        *waker = Some(task::op_waker(cx.waker()));
                    }
                    Step::Wait
                }
                Some(Lifecycle::Completed { .. }) if !core.coop_take() => {
                    core.coop_defer(&mut ops.woken, cx.waker());
                    Step::Wait
                }
                Some(Lifecycle::Completed { res, flags }) => {
                    // On the wheel, an op cancelled at the deadline.
                    let step = Step::Done(
                        if cancelled {
                            linked_result(*res, true)
                        } else {
                            *res
                        },
                        *flags,
                    );
                    ops.table.remove(key);
                    step
                }
                Some(Lifecycle::Linked(linked)) => match linked.op {
                    // An `EINTR` is the timeout's doing, or the op's own
                    // (submitted again): the timeout's CQE tells which.
                    Some((res, flags)) if res != -libc::EINTR || linked.timer.is_some() => {
                        if !core.coop_take() {
                            core.coop_defer(&mut ops.woken, cx.waker());
                            Step::Wait
                        } else {
                            let step = Step::Done(linked_result(res, linked.fired()), flags);
                            if linked.timer.is_some() {
                                ops.table.remove(key);
                            } else {
                                // The slot waits for the timeout's CQE alone.
                                linked.taken = true;
                                linked.waker = None;
                            }
                            step
                        }
                    }
                    _ => {
                        if !linked
                            .waker
                            .as_ref()
                            .is_some_and(|w| task::same_task(w, cx.waker()))
                        {
                            linked.waker = Some(task::op_waker(cx.waker()));
                        }
                        Step::Wait
                    }
                },
                // The slot is ours until we take the result.
                _ => Step::Done(-libc::EIO, 0),
            };
            if holds && matches!(step, Step::Done(..)) {
                driver.holding -= 1;
            }
            step
        });
        match step {
            Step::Done(res, flags) => {
                this.key = None;
                this.holds = false;
                this.timing = Timing::Kernel; // drops a wheel timer
                if res == -libc::EINTR {
                    return this.start_again(data, cx);
                }
                Poll::Ready(data.complete(cqe_result(res), flags))
            }
            Step::Wait => {
                this.data = Some(data);
                if let Timing::Wheel { sleep, cancelled } = &mut this.timing {
                    if !*cancelled && Pin::new(sleep).poll(cx).is_ready() {
                        // The deadline passed: the op is asked to stop, and
                        // its CQE says what it did.
                        *cancelled = true;
                        executor::with_driver(|driver| driver.cancel(key));
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl<T: OpCode> Drop for Deadline<T> {
    fn drop(&mut self) {
        let (Some(key), Some(data)) = (self.key.take(), self.data.take()) else {
            return;
        };
        if !executor::has_core() {
            return release_without_driver(data);
        }
        let holds = self.holds;
        let completed = executor::with_driver(|driver| {
            if holds {
                driver.holding -= 1;
            }
            let done = match driver.table_mut().get_mut(key) {
                Some(state @ Lifecycle::Waiting(_)) => {
                    *state = Lifecycle::Orphaned(Box::new(SingleOrphan(Some(data))));
                    driver.cancel(key);
                    return None;
                }
                Some(Lifecycle::Completed { res, flags }) => (*res, *flags, true),
                Some(Lifecycle::Linked(linked)) => match linked.op {
                    // In flight: the data waits in the slot for both CQEs.
                    None => {
                        linked.orphan = Some(Box::new(SingleOrphan(Some(data))));
                        linked.waker = None;
                        driver.cancel(key);
                        return None;
                    }
                    // The kernel is done with the data; the slot may still
                    // wait for the timeout's CQE.
                    Some((res, flags)) => {
                        let both = linked.timer.is_some();
                        if !both {
                            linked.taken = true;
                            linked.waker = None;
                        }
                        (res, flags, both)
                    }
                },
                _ => return Some((data, (-libc::ECANCELED, 0))),
            };
            let (res, flags, free) = done;
            if free {
                driver.table_mut().remove(key);
            }
            Some((data, (res, flags)))
        });
        // Completed but never taken: finish it here so what it produced is released.
        if let Some((data, (res, flags))) = completed {
            drop(data.complete(cqe_result(res), flags));
        }
    }
}

impl<T: OpCode> std::fmt::Debug for Deadline<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadline")
            .field("op", &std::any::type_name::<T>())
            .field("deadline", &self.deadline)
            .field("submitted", &self.key.is_some())
            .field(
                "timed_by",
                &match self.timing {
                    Timing::Kernel => "kernel",
                    Timing::Wheel { .. } => "wheel",
                },
            )
            .finish()
    }
}
