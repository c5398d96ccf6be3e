//! `Op<T>` and `MultiOp<T>`: the futures of submitted SQEs.

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;

use crate::driver::{self, cqe_result, Key, Lifecycle, MultishotCode, OpCode, Orphan, Started};
use crate::executor::{self, Core};
use crate::task::raw as task;

/// An op the core's backend cannot run from its SQE: its
/// [`fallback`](OpCode::fallback) call on the blocking pool, or `err` with the
/// op's name.
#[cold]
pub(super) fn start_fallback<T: OpCode>(
    data: &mut T,
    err: io::Error,
    holds: bool,
    cx: &Context<'_>,
) -> io::Result<Started> {
    let Some(job) = data.fallback() else {
        return Err(io::Error::new(
            err.kind(),
            format!("{}: {err}", std::any::type_name::<T>()),
        ));
    };
    let waiting = Lifecycle::Waiting(Some(task::op_waker(cx.waker())));
    executor::with_driver(|driver| {
        let started = driver.start_fallback(waiting, job);
        if holds && started.is_ok() {
            driver.holding += 1;
        }
        started
    })
}

pub(super) fn release_without_driver<T>(data: T) {
    if driver::leaked() {
        std::mem::forget(data);
    }
}

/// The future of one submitted operation.
///
/// The SQE is pushed on first poll, so an `Op` dropped unpolled costs nothing.
/// Dropping it in flight is safe: its data moves into the op table, an
/// `ASYNC_CANCEL` is submitted, and the data is completed and dropped when the
/// last CQE arrives — an fd the op created is closed then, not leaked.
///
/// An op that completes with `EINTR` is submitted again rather than
/// reported: the kernel returns it only when the op did nothing (std's
/// `read_exact` and `write_all` retry it the same way).
///
/// `Op` is `!Send`: it belongs to the ring of the core that polled it.
///
/// # Panics
///
/// Polling panics outside a percore runtime.
///
/// # Examples
///
/// ```
/// use percore_runtime::op::Nop;
/// use percore_runtime::Op;
///
/// percore_runtime::run(async {
///     let res = Op::new(Nop::new()).await;
///     assert_eq!(res.unwrap(), 0);
/// })
/// .unwrap();
/// ```
#[must_use = "an Op does nothing unless awaited"]
pub struct Op<T: OpCode> {
    data: Option<T>,
    key: Option<Key>,
    /// Enter the kernel right after pushing (`submit_now`).
    now: bool,
    /// A device op (`device`): when it was submitted, once it is.
    device: Device,
    /// In flight and counted in the driver's `holding` ops (it completes on
    /// its own, so a paused clock waits for it).
    holds: bool,
    /// Interrupted (`EINTR`) and not submitted again yet: `key` is `None`,
    /// as before the first poll.
    restarting: bool,
    /// [`cancel`](Op::cancel) was called after the op was first submitted:
    /// it is not submitted again after an `EINTR`, and ends with
    /// `ECANCELED` instead.
    cancelled: bool,
    _not_send: PhantomData<*const ()>,
}

// `T` is never pinned: the `OpCode` contract keeps kernel-visible memory on the
// heap, so moving `T` is fine.
impl<T: OpCode> Unpin for Op<T> {}

impl<T: OpCode> Op<T> {
    /// Wraps `data` as a future; nothing is submitted until it is polled.
    pub fn new(data: T) -> Op<T> {
        Op {
            data: Some(data),
            key: None,
            now: false,
            device: Device::No,
            holds: false,
            restarting: false,
            cancelled: false,
            _not_send: PhantomData,
        }
    }

    /// Submits the entry to the kernel right after the task that pushed it
    /// yields (one `io_uring_enter` of its own, unless no other task waits to
    /// run: then the tick's closing enter submits it anyway), instead of with
    /// the rest of the tick's batch.
    ///
    /// For ops that go to a device, such as `O_DIRECT` reads and writes: every
    /// moment an entry waits in the submission queue the device runs below its
    /// queue depth. Ops the kernel completes at once (buffered reads, sockets)
    /// are faster batched, the default.
    pub fn submit_now(mut self) -> Op<T> {
        self.now = true;
        self
    }

    /// Marks an op that goes to a device, such as an `O_DIRECT` read or write:
    /// it is submitted at once ([`submit_now`](Op::submit_now)), and while it
    /// is in flight a core with nothing else to do polls its ring before it
    /// parks, if a device completion is due within the core's
    /// [`Builder::device_spin`](crate::Builder::device_spin) budget. That
    /// spares the completion the wake-up of a halted CPU (about 20 µs on a
    /// VM), at the price of the CPU the core spends polling.
    ///
    /// # Examples
    ///
    /// ```
    /// use percore_runtime::op::Nop;
    /// use percore_runtime::Op;
    ///
    /// percore_runtime::run(async {
    ///     // Any op can be marked; `DmaFile` marks its reads and writes.
    ///     let res = Op::new(Nop::new()).device().await;
    ///     assert_eq!(res.unwrap(), 0);
    /// })
    /// .unwrap();
    /// ```
    pub fn device(mut self) -> Op<T> {
        self.now = true;
        self.device = Device::Idle;
        self
    }

    /// Gives the op a deadline: if it has not completed by `deadline`, it is
    /// cancelled, and completes with an error of kind
    /// [`TimedOut`](io::ErrorKind::TimedOut) — its data (a read's buffer)
    /// coming back as with any error. See [`Deadline`](crate::op::Deadline).
    ///
    /// On io_uring the kernel times it: an `IORING_OP_LINK_TIMEOUT` linked
    /// to the op's SQE, submitted with it, and no timer of the core's. On
    /// the epoll backend, and while the core's clock is paused, a timer on
    /// the core's wheel does. An op that completed returns its result even
    /// if the deadline passed meanwhile; one whose deadline passed already is
    /// still tried once. A [`submit_now`](Op::submit_now) carries over; the
    /// device polling of [`device`](Op::device) does not.
    ///
    /// # Panics
    ///
    /// If the op was polled already (it is submitted then: give it its
    /// deadline before).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::ErrorKind;
    /// use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    /// use std::time::Duration;
    ///
    /// use percore_runtime::op::Read;
    /// use percore_runtime::time::Instant;
    /// use percore_runtime::Op;
    ///
    /// let mut fds = [0; 2];
    /// // SAFETY: `fds` has room for the two fds pipe(2) writes.
    /// assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    /// // SAFETY: both were just made, and are owned by nothing else.
    /// let (rx, _tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    /// percore_runtime::run(async {
    ///     // Nobody writes: the read times out, and its buffer comes back.
    ///     let deadline = Instant::now() + Duration::from_millis(10);
    ///     let read = Read::new(rx.as_raw_fd(), Vec::with_capacity(64), u64::MAX);
    ///     let (res, buf) = Op::new(read).deadline(deadline).await;
    ///     assert_eq!(res.unwrap_err().kind(), ErrorKind::TimedOut);
    ///     assert_eq!(buf.capacity(), 64);
    /// })
    /// .unwrap();
    /// ```
    #[track_caller]
    pub fn deadline(mut self, deadline: crate::time::Instant) -> crate::op::Deadline<T> {
        assert!(
            self.key.is_none(),
            "Op::deadline on an op already submitted: give it its deadline before polling it"
        );
        let data = self.data.take().expect("an Op not polled has its data");
        crate::op::Deadline::new(data, deadline, self.now)
    }

    /// [`deadline`](Op::deadline) `after` from now (from this call, not from
    /// the first poll).
    ///
    /// # Panics
    ///
    /// As [`deadline`](Op::deadline).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use percore_runtime::op::Nop;
    /// use percore_runtime::Op;
    ///
    /// percore_runtime::run(async {
    ///     // A NOP completes at once, long before its timeout.
    ///     let res = Op::new(Nop::new()).timeout(Duration::from_secs(5)).await;
    ///     assert_eq!(res.unwrap(), 0);
    /// })
    /// .unwrap();
    /// ```
    #[track_caller]
    pub fn timeout(self, after: std::time::Duration) -> crate::op::Deadline<T> {
        let now = crate::time::Instant::now();
        let deadline = now
            .checked_add(after)
            .unwrap_or_else(|| now + std::time::Duration::from_secs(86400 * 365 * 30));
        self.deadline(deadline)
    }

    /// Asks the kernel to cancel the op, if it is in flight, and keeps it:
    /// polling on gives its result — `ECANCELED` (kind
    /// [`Other`](io::ErrorKind::Other), raw error `ECANCELED`) if the cancel
    /// came first, or what the op did if it completed anyway (a receive may
    /// have received). For an op whose result must not be lost, unlike
    /// dropping it, which cancels it and discards its result. Best effort
    /// and idempotent; does nothing before the op is submitted or after its
    /// completion arrived. An op interrupted (`EINTR`), which is otherwise
    /// submitted again, is not once cancelled: it ends with `ECANCELED`.
    ///
    /// # Panics
    ///
    /// Outside a percore runtime, if the op is in flight.
    pub fn cancel(&mut self) {
        let Some(key) = self.key else {
            // Between an `EINTR` and its next submission: there is none.
            self.cancelled |= self.restarting;
            return;
        };
        self.cancelled = true;
        executor::with_driver(|driver| {
            if let Some(Lifecycle::Waiting(_)) = driver.table_mut().get_mut(key) {
                driver.cancel(key);
            }
        });
    }
}

/// Whether an op is a device op, and since when it is in flight.
#[derive(Clone, Copy)]
enum Device {
    No,
    /// A device op not submitted yet.
    Idle,
    /// A device op in flight since then, counted in the core's `DeviceOps`.
    Since(Instant),
}

impl<T: OpCode> Future for Op<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = self.get_mut();
        let Some(mut data) = this.data.take() else {
            panic!("`Op` polled after it completed");
        };
        let Some(key) = this.key else {
            if this.cancelled {
                return Poll::Ready(data.complete(cqe_result(-libc::ECANCELED), 0));
            }
            let sqe = data.sqe();
            let holds = data.completes_on_its_own();
            let waiting = Lifecycle::Waiting(Some(task::op_waker(cx.waker())));
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
            let key = match started {
                Ok(Started::Pending(key)) => key,
                // The readiness backend ran it at once.
                Ok(Started::Done { res, .. }) if res == -libc::EINTR => {
                    return this.start_again(data, cx)
                }
                // Ready without waiting: a unit of the task's budget (`coop`).
                Ok(Started::Done { res, flags }) => {
                    if !executor::with_core(Core::coop_take) {
                        return this.stash(data, res, flags, cx);
                    }
                    return Poll::Ready(data.complete(cqe_result(res), flags));
                }
                Err(err) => return Poll::Ready(data.complete(Err(err), 0)),
            };
            if this.now {
                executor::with_core(|core| {
                    core.flush.set(true);
                    if let Device::Idle = this.device {
                        core.device.started();
                        this.device = Device::Since(Instant::now());
                    }
                });
            }
            this.key = Some(key);
            this.holds = holds;
            this.restarting = false;
            this.data = Some(data);
            return Poll::Pending;
        };
        let holds = this.holds;
        let done = executor::with_core(|core| {
            let mut driver = core.driver.borrow_mut();
            let driver = &mut *driver;
            let ops = &mut driver.ops;
            let done = match ops.table.get_mut(key) {
                Some(Lifecycle::Waiting(waker)) => {
                    if !waker
                        .as_ref()
                        .is_some_and(|w| task::same_task(w, cx.waker()))
                    {
                        *waker = Some(task::op_waker(cx.waker()));
                    }
                    None
                }
                // A unit of the task's budget (`coop`); with none left, the
                // result stays in its slot and the task yields.
                Some(Lifecycle::Completed { .. }) if !core.coop_take() => {
                    core.coop_defer(&mut ops.woken, cx.waker());
                    None
                }
                Some(&mut Lifecycle::Completed { res, flags }) => {
                    ops.table.free_completed(key);
                    Some((res, flags))
                }
                // The slot is ours until we take the result; anything else is a bug
                // in the driver, reported as an error rather than a hang.
                _ => Some((-libc::EIO, 0)),
            };
            if holds && done.is_some() {
                driver.holding -= 1;
            }
            done
        });
        match done {
            Some((res, flags)) => {
                this.key = None;
                this.holds = false;
                if let Device::Since(at) = this.device {
                    executor::with_core(|core| core.device.completed(at.elapsed()));
                }
                if res == -libc::EINTR {
                    return this.start_again(data, cx);
                }
                Poll::Ready(data.complete(cqe_result(res), flags))
            }
            None => {
                this.data = Some(data);
                Poll::Pending
            }
        }
    }
}

impl<T: OpCode> Op<T> {
    /// An op the readiness backend finished at once while its task has no
    /// cooperative budget left: the result waits in a slot, completed, for
    /// the next poll, and the task yields.
    #[cold]
    fn stash(&mut self, data: T, res: i32, flags: u32, cx: &Context<'_>) -> Poll<T::Output> {
        let key = executor::with_core(|core| {
            let mut driver = core.driver.borrow_mut();
            core.coop_stash(&mut driver.ops, res, flags, cx.waker())
        });
        self.key = Some(key);
        self.data = Some(data);
        Poll::Pending
    }

    /// An op interrupted (`EINTR`) before it did anything: its data goes back
    /// unsubmitted, and the task is polled again, which submits it anew —
    /// unless it was cancelled meanwhile: then it ends with `ECANCELED`.
    #[cold]
    fn start_again(&mut self, data: T, cx: &Context<'_>) -> Poll<T::Output> {
        if self.cancelled {
            return Poll::Ready(data.complete(cqe_result(-libc::ECANCELED), 0));
        }
        self.restarting = true;
        if let Device::Since(_) = self.device {
            self.device = Device::Idle; // counted as completed; starts anew
        }
        self.data = Some(data);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

pub(super) struct SingleOrphan<T>(pub(super) Option<T>);

impl<T: OpCode> Orphan for SingleOrphan<T> {
    fn cqe(&mut self, res: i32, flags: u32, last: bool) {
        if let (true, Some(data)) = (last, self.0.take()) {
            drop(data.complete(cqe_result(res), flags));
        }
    }
}

impl<T: OpCode> Drop for Op<T> {
    fn drop(&mut self) {
        let (Some(key), Some(data)) = (self.key.take(), self.data.take()) else {
            return;
        };
        if !executor::has_core() {
            return release_without_driver(data);
        }
        if let Device::Since(_) = self.device {
            executor::with_core(|core| core.device.left());
        }
        let holds = self.holds;
        let completed = executor::with_driver(|driver| {
            if holds {
                driver.holding -= 1;
            }
            let table = driver.table_mut();
            match table.get_mut(key) {
                Some(state @ Lifecycle::Waiting(_)) => {
                    *state = Lifecycle::Orphaned(Box::new(SingleOrphan(Some(data))));
                    driver.cancel(key);
                    None
                }
                Some(Lifecycle::Completed { res, flags }) => {
                    let done = (*res, *flags);
                    table.remove(key);
                    Some((data, done))
                }
                _ => Some((data, (-libc::ECANCELED, 0))),
            }
        });
        // Completed but never taken: finish it here so what it produced is released.
        if let Some((data, (res, flags))) = completed {
            drop(data.complete(cqe_result(res), flags));
        }
    }
}

impl<T: OpCode> std::fmt::Debug for Op<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op")
            .field("op", &std::any::type_name::<T>())
            .field("submitted", &self.key.is_some())
            .finish()
    }
}

/// The stream of a multishot operation: one item per CQE, ending after the CQE
/// without `IORING_CQE_F_MORE`.
///
/// Dropping it in flight cancels the op; items that arrive afterwards are made
/// and dropped by the driver ([`MultishotCode::next`]), so nothing leaks.
///
/// # Panics
///
/// Polling panics outside a percore runtime.
#[must_use = "a MultiOp does nothing unless polled"]
pub struct MultiOp<T: MultishotCode> {
    data: Option<T>,
    key: Option<Key>,
    done: bool,
    _not_send: PhantomData<*const ()>,
}

impl<T: MultishotCode> Unpin for MultiOp<T> {}

impl<T: MultishotCode> MultiOp<T> {
    /// Wraps `data` as a stream; nothing is submitted until it is polled.
    pub fn new(data: T) -> MultiOp<T> {
        MultiOp {
            data: Some(data),
            key: None,
            done: false,
            _not_send: PhantomData,
        }
    }
}

impl<T: MultishotCode> MultiOp<T> {
    /// The op's data back, once the stream has ended (its last CQE arrived) or
    /// if it was never polled; `None` while the kernel may still use it, and
    /// then the op is dropped as usual (cancelled, its data kept until the end).
    ///
    /// For ops whose last CQE hands the memory back, such as a zero-copy send's
    /// notification.
    pub fn into_inner(mut self) -> Option<T> {
        if self.done || self.key.is_none() {
            return self.data.take();
        }
        None
    }

    /// Asks the kernel to end the op, if it is in flight, and keeps the
    /// stream: polling on yields the items that arrived before the cancel
    /// took effect, then the op's last item (`ECANCELED` as an error, for
    /// most ops), then `None`. For a receive whose data must not be lost,
    /// unlike dropping the stream, which discards what is still to come.
    /// Best effort and idempotent; does nothing before the op is submitted
    /// or once it has ended.
    ///
    /// # Panics
    ///
    /// Outside a percore runtime, if the op is in flight.
    pub fn cancel(&mut self) {
        let Some(key) = self.key else { return };
        if self.done {
            return;
        }
        executor::with_driver(|driver| {
            if let Some(Lifecycle::Streaming { done: false, .. }) = driver.table_mut().get_mut(key)
            {
                driver.cancel(key);
            }
        });
    }
}

impl<T: MultishotCode> Stream for MultiOp<T> {
    type Item = T::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let Some(data) = this.data.as_mut() else {
            return Poll::Ready(None);
        };
        let Some(key) = this.key else {
            let sqe = data.sqe();
            let streaming = Lifecycle::Streaming {
                waker: Some(task::op_waker(cx.waker())),
                results: Default::default(),
                done: false,
            };
            return match executor::with_driver(|driver| driver.start(sqe, streaming)) {
                Ok(Started::Pending(key)) => {
                    this.key = Some(key);
                    Poll::Pending
                }
                // Only single-shot ops finish inside `start`.
                Ok(Started::Done { res, flags }) => {
                    this.done = true;
                    Poll::Ready(Some(data.next(cqe_result(res), flags)))
                }
                Err(err) => {
                    this.done = true;
                    Poll::Ready(Some(data.next(Err(err), 0)))
                }
            };
        };
        let next = executor::with_core(|core| {
            let mut driver = core.driver.borrow_mut();
            let ops = &mut driver.ops;
            match ops.table.get_mut(key) {
                Some(Lifecycle::Streaming {
                    waker,
                    results,
                    done,
                }) => match results.front() {
                    // An item spends a unit of the task's budget (`coop`);
                    // with none left, it stays queued and the task yields.
                    Some(_) if !core.coop_take() => {
                        core.coop_defer(&mut ops.woken, cx.waker());
                        None
                    }
                    Some(_) => results.pop_front().map(Some),
                    None if *done => {
                        ops.table.remove(key);
                        Some(None)
                    }
                    None => {
                        if !waker
                            .as_ref()
                            .is_some_and(|w| task::same_task(w, cx.waker()))
                        {
                            *waker = Some(task::op_waker(cx.waker()));
                        }
                        None
                    }
                },
                _ => Some(None),
            }
        });
        match next {
            Some(Some((res, flags))) => Poll::Ready(Some(data.next(cqe_result(res), flags))),
            Some(None) => {
                this.done = true;
                this.key = None;
                Poll::Ready(None)
            }
            None => Poll::Pending,
        }
    }
}

struct MultiOrphan<T>(T);

impl<T: MultishotCode> Orphan for MultiOrphan<T> {
    fn cqe(&mut self, res: i32, flags: u32, _last: bool) {
        drop(self.0.next(cqe_result(res), flags));
    }
}

impl<T: MultishotCode> Drop for MultiOp<T> {
    fn drop(&mut self) {
        let (Some(key), Some(mut data)) = (self.key.take(), self.data.take()) else {
            return;
        };
        if !executor::has_core() {
            return release_without_driver(data);
        }
        // Results already queued are turned into items and dropped, outside the
        // driver borrow; then the op (if still running) becomes an orphan.
        let (queued, done) = executor::with_driver(|driver| {
            let table = driver.table_mut();
            match table.get_mut(key) {
                Some(Lifecycle::Streaming { results, done, .. }) => {
                    let queued = std::mem::take(results);
                    let done = *done;
                    if done {
                        table.remove(key);
                    }
                    (queued, done)
                }
                _ => (Default::default(), true),
            }
        });
        for (res, flags) in queued {
            drop(data.next(cqe_result(res), flags));
        }
        if !done {
            executor::with_driver(|driver| {
                if let Some(state) = driver.table_mut().get_mut(key) {
                    *state = Lifecycle::Orphaned(Box::new(MultiOrphan(data)));
                    driver.cancel(key);
                }
            });
        }
    }
}

impl<T: MultishotCode> std::fmt::Debug for MultiOp<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiOp")
            .field("op", &std::any::type_name::<T>())
            .field("submitted", &self.key.is_some())
            .field("done", &self.done)
            .finish()
    }
}
