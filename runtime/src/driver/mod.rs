//! The driver: one io_uring per core, the op table, and the submit/reap loop.
//!
//! Ops are only *pushed* to the submission queue while tasks run; the executor
//! calls [`Driver::turn`] once per tick, which makes one `io_uring_enter` for all
//! of them and, when nothing else is ready, waits in the same call for the first
//! completion or the next timer deadline (`IORING_ENTER_EXT_ARG`).

mod op;
mod setup;
mod sys;
mod table;

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::task::Waker;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring, Probe};

use sys::RingFd;

pub use op::{MultiOp, MultishotCode, Op, OpCode};
pub use setup::{SetupError, TaskRunMode};
pub(crate) use table::{Key, Lifecycle, OpTable, Orphan, Reaped};

/// `user_data` of `ASYNC_CANCEL` requests: their CQEs carry nothing we need.
const CANCEL_TAG: u64 = u64::MAX;
/// `user_data` of the read posted on the wake eventfd.
const WAKE_TAG: u64 = u64::MAX - 1;
/// How long shutdown waits for cancelled ops before leaking their memory.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Counters the driver keeps; merged into [`Stats`](crate::Stats).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IoCounters {
    pub(crate) enters: u64,
    pub(crate) sqes: u64,
    pub(crate) cqes: u64,
    pub(crate) overflows: u64,
    pub(crate) sq_full: u64,
}

/// How long [`Driver::turn`] may block.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Submit and collect what is ready, never block.
    No,
    /// Block until a completion arrives or, if given, the timeout passes.
    Park(Option<Duration>),
}

/// One core's ring and everything in flight on it.
pub(crate) struct Driver {
    ring: IoUring,
    /// How enters name the ring: the registered index when the kernel allows.
    ring_fd: RingFd,
    table: OpTable,
    probe: Probe,
    mode: TaskRunMode,
    /// Tasks whose ops completed; the executor wakes them outside the driver borrow.
    pub(crate) woken: Vec<Waker>,
    /// Orphans whose last CQE arrived; completed (and their output dropped) outside
    /// the driver borrow, since dropping an output may run user code.
    pub(crate) orphans: Vec<(Box<dyn Orphan>, i32, u32)>,
    /// The core's wake eventfd, owned by its `Shared`, which outlives the driver.
    eventfd: RawFd,
    /// The kernel writes the eventfd counter here while the wake read is armed.
    eventfd_buf: Box<u64>,
    eventfd_armed: bool,
    pub(crate) counters: IoCounters,
}

impl Driver {
    pub(crate) fn new(entries: u32, cq_entries: u32, eventfd: RawFd) -> io::Result<Driver> {
        let (ring, mode, probe) = setup::build(entries, cq_entries)?;
        let raw = ring.as_raw_fd();
        let ring_fd = sys::register_ring_fd(raw).unwrap_or(RingFd::Raw(raw));
        Ok(Driver {
            ring,
            ring_fd,
            table: OpTable::default(),
            probe,
            mode,
            woken: Vec::new(),
            orphans: Vec::new(),
            eventfd,
            eventfd_buf: Box::new(0),
            eventfd_armed: false,
            counters: IoCounters::default(),
        })
    }

    pub(crate) fn is_supported(&self, opcode: u8) -> bool {
        self.probe.is_supported(opcode)
    }

    /// The ring's registration interface (files, buffers, buffer rings).
    pub(crate) fn submitter(&self) -> io_uring::Submitter<'_> {
        self.ring.submitter()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn table_mut(&mut self) -> &mut OpTable {
        &mut self.table
    }

    /// Allocates a slot and pushes `sqe` for it. On error nothing was pushed and the
    /// slot is gone again.
    pub(crate) fn start(&mut self, sqe: squeue::Entry, state: Lifecycle) -> io::Result<Key> {
        let key = self.table.insert(state);
        match self.push(&sqe.user_data(key.user_data())) {
            Ok(()) => Ok(key),
            Err(err) => {
                self.table.remove(key);
                Err(err)
            }
        }
    }

    /// Asks the kernel to cancel the op in `key`'s slot. Best effort: the slot stays
    /// until its terminal CQE arrives either way.
    pub(crate) fn cancel(&mut self, key: Key) {
        let sqe = opcode::AsyncCancel::new(key.user_data())
            .build()
            .user_data(CANCEL_TAG);
        // If even this push fails the ring is broken; shutdown's drain still waits
        // for the op, so nothing is freed early.
        let _ = self.push(&sqe);
    }

    /// Pushes one SQE. A full SQ is submitted (and the CQ reaped, if the kernel asks
    /// for room) until the entry fits: never dropped, never a panic.
    fn push(&mut self, sqe: &squeue::Entry) -> io::Result<()> {
        let mut stuck = 0;
        loop {
            // SAFETY: every pointer in an entry built by this crate points into data
            // owned by an `Op` or by the op table (see `OpCode`'s contract), which
            // stays alive until the op's terminal CQE.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                self.counters.sqes += 1;
                return Ok(());
            }
            self.counters.sq_full += 1;
            let before = self.ring.submission().len();
            self.enter(0, None)?;
            self.reap();
            if self.ring.submission().len() >= before {
                stuck += 1;
                if stuck > 10_000 {
                    return Err(io::Error::other(
                        "io_uring submission queue stays full: the kernel accepts no entries",
                    ));
                }
            } else {
                stuck = 0;
            }
        }
    }

    /// Submits everything queued, waits as `wait` says, and reaps all completions
    /// into `woken` and `orphans`.
    pub(crate) fn turn(&mut self, wait: Wait) -> io::Result<()> {
        match wait {
            Wait::No => {
                if self.needs_enter() {
                    self.enter(0, None)?;
                }
            }
            Wait::Park(timeout) => {
                self.arm_eventfd()?;
                self.enter(1, timeout)?;
            }
        }
        self.reap();
        Ok(())
    }

    /// Whether an enter is needed without waiting: entries to submit, deferred
    /// completion work to run (`IORING_SQ_TASKRUN`), or an overflow to flush.
    fn needs_enter(&mut self) -> bool {
        let mut sq = self.ring.submission();
        sq.sync();
        !sq.is_empty() || sq.taskrun() || sq.cq_overflow()
    }

    /// One `io_uring_enter`. Interrupts and timeouts are not errors; `EBUSY`/`EAGAIN`
    /// (the CQ or its overflow list is full) are answered by reaping.
    fn enter(&mut self, want: u32, timeout: Option<Duration>) -> io::Result<()> {
        self.counters.enters += 1;
        if self.ring.submission().cq_overflow() {
            self.counters.overflows += 1;
        }
        let to_submit = self.ring.submission().len() as u32;
        let result = sys::enter(self.ring_fd, to_submit, want, timeout);
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.raw_os_error() {
                Some(libc::EINTR) | Some(libc::ETIME) => Ok(()),
                Some(libc::EBUSY) | Some(libc::EAGAIN) => {
                    self.reap();
                    Ok(())
                }
                _ => Err(io::Error::new(err.kind(), format!("io_uring_enter: {err}"))),
            },
        }
    }

    fn arm_eventfd(&mut self) -> io::Result<()> {
        if self.eventfd_armed {
            return Ok(());
        }
        let buf: *mut u64 = &mut *self.eventfd_buf;
        let sqe = opcode::Read::new(types::Fd(self.eventfd), buf.cast(), 8)
            .build()
            .user_data(WAKE_TAG);
        self.push(&sqe)?;
        self.eventfd_armed = true;
        Ok(())
    }

    /// Moves every available CQE into the op table.
    fn reap(&mut self) {
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            self.counters.cqes += 1;
            match cqe.user_data() {
                CANCEL_TAG => {}
                WAKE_TAG => self.eventfd_armed = false,
                user_data => match self.table.complete(user_data, cqe.result(), cqe.flags()) {
                    Reaped::Nothing => {}
                    Reaped::Wake(waker) => self.woken.push(waker),
                    Reaped::Orphan(orphan, res, flags) => self.orphans.push((orphan, res, flags)),
                },
            }
        }
    }

    /// Cancels everything in flight and waits for the kernel to let go of it. If it
    /// does not within [`DRAIN_LIMIT`], the memory it may still write is leaked, never
    /// freed.
    fn drain(&mut self) -> bool {
        for key in self.table.keys() {
            self.cancel(key);
        }
        if self.eventfd_armed {
            let sqe = opcode::AsyncCancel::new(WAKE_TAG)
                .build()
                .user_data(CANCEL_TAG);
            let _ = self.push(&sqe);
        }
        let start = Instant::now();
        while self.table.has_kernel_work() || self.eventfd_armed {
            if start.elapsed() > DRAIN_LIMIT {
                return false;
            }
            if self.enter(1, Some(Duration::from_millis(50))).is_err() {
                return false;
            }
            self.reap();
            for (mut orphan, res, flags) in self.orphans.drain(..) {
                orphan.cqe(res, flags, true);
            }
        }
        true
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.woken.clear();
        if !self.drain() {
            // The kernel may still write into orphaned buffers and the wake counter:
            // leak them, and record that `Op`s dropped later must leak too.
            std::mem::forget(std::mem::take(&mut self.table));
            std::mem::forget(std::mem::replace(&mut self.eventfd_buf, Box::new(0)));
            op::mark_leaked();
        }
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("mode", &self.mode)
            .field("in_flight", &self.table.len())
            .finish_non_exhaustive()
    }
}
