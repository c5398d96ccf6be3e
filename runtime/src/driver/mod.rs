//! The driver: one io_uring per core, the op table, and the submit/reap loop.
//!
//! Ops are only *pushed* to the submission queue while tasks run; the executor
//! calls [`Driver::turn`] once per tick, which makes one `io_uring_enter` for all
//! of them and, when nothing else is ready, waits in the same call for the first
//! completion or the next timer deadline (`IORING_ENTER_EXT_ARG`).

#[cfg(percore_asan)]
mod asan;
mod op;
mod setup;
mod sys;
mod table;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::task::Waker;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring, Probe};

use sys::RingFd;

use crate::registered::{BufTable, FileTable};

pub use op::{MultiOp, MultishotCode, Op, OpCode};
pub use setup::{SetupError, TaskRunMode};
pub(crate) use table::{Key, Lifecycle, OpTable, Orphan, Reaped};

/// `user_data` of `ASYNC_CANCEL` requests: their CQEs carry nothing we need.
const CANCEL_TAG: u64 = u64::MAX;
/// `user_data` of the read posted on the wake eventfd.
const WAKE_TAG: u64 = u64::MAX - 1;
/// `user_data` of the CQE another core's `MSG_RING` posts to wake this one.
const MSG_WAKE_TAG: u64 = u64::MAX - 2;
/// `user_data` of this core's `MSG_RING` to core `n` is `MSG_SENT_BASE + n`; its
/// CQE arrives only on failure (`CQE_SKIP_SUCCESS`). The low 32 bits are far above
/// any op table index, so no tag is mistaken for an op.
const MSG_SENT_BASE: u64 = u64::MAX - (1 << 24);
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
    pub(crate) msg_rings: u64,
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
    /// Whether the kernel has `IORING_OP_MSG_RING`.
    msg_ring: bool,
    /// Cores this core's `MSG_RING` failed to wake; the executor rings their
    /// eventfds instead.
    pub(crate) failed_rings: Vec<usize>,
    pub(crate) counters: IoCounters,
    /// `Op`s in flight whose op completes on its own
    /// ([`OpCode::completes_on_its_own`]): a paused clock waits for them.
    pub(crate) holding: usize,
    /// The ring's buffer table and registered memory. Declared after `ring`, so
    /// the ring is closed before the memory can be freed.
    buffers: BufTable,
    /// The ring's registered file table.
    files: FileTable,
    /// Where the kernel writes for each op in flight, read back at its CQE.
    #[cfg(percore_asan)]
    asan: asan::Shadow,
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
            mode,
            woken: Vec::new(),
            orphans: Vec::new(),
            eventfd,
            eventfd_buf: Box::new(0),
            eventfd_armed: false,
            msg_ring: probe.is_supported(opcode::MsgRingData::CODE),
            probe,
            failed_rings: Vec::new(),
            counters: IoCounters::default(),
            holding: 0,
            buffers: BufTable::default(),
            files: FileTable::default(),
            #[cfg(percore_asan)]
            asan: asan::Shadow::default(),
        })
    }

    pub(crate) fn is_supported(&self, opcode: u8) -> bool {
        self.probe.is_supported(opcode)
    }

    /// A new fd for this ring, for other cores to target with `MSG_RING`; it
    /// keeps the ring's file alive as long as it is open.
    pub(crate) fn dup_ring_fd(&self) -> io::Result<OwnedFd> {
        // SAFETY: the ring fd is open for as long as `self.ring` lives, which
        // outlasts this call; the clone is a new, independently owned fd.
        let fd = unsafe { BorrowedFd::borrow_raw(self.ring.as_raw_fd()) };
        fd.try_clone_to_owned()
    }

    /// Queues an `IORING_OP_MSG_RING` that posts a wake CQE on the ring behind
    /// `target_ring` (core `target`'s); sent with this core's next enter, no
    /// syscall of its own. False if the kernel lacks the opcode: ring the
    /// target's eventfd instead.
    ///
    /// `target_ring` must stay open until this core's next enter.
    pub(crate) fn msg_ring(&mut self, target_ring: RawFd, target: usize) -> bool {
        if !self.msg_ring {
            return false;
        }
        let sqe = opcode::MsgRingData::new(types::Fd(target_ring), 0, MSG_WAKE_TAG, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(MSG_SENT_BASE + target as u64);
        if self.push(&sqe).is_err() {
            return false;
        }
        self.counters.msg_rings += 1;
        true
    }

    /// The registration interface with the buffer table that shares it.
    pub(crate) fn buffer_table(&mut self) -> (io_uring::Submitter<'_>, &mut BufTable) {
        (self.ring.submitter(), &mut self.buffers)
    }

    /// The registration interface with the file table that shares it.
    pub(crate) fn file_table(&mut self) -> (io_uring::Submitter<'_>, &mut FileTable) {
        (self.ring.submitter(), &mut self.files)
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

    /// Submits what is queued now, without waiting. A failure leaves the
    /// entries queued: the next turn submits them and reports what went wrong.
    pub(crate) fn submit_now(&mut self) {
        let _ = self.enter(0, None);
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
                #[cfg(percore_asan)]
                self.asan.record(sqe);
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
        // Memory freed since the last enter is reported now, before the kernel
        // can write it (and overwrite ASan's record of the free).
        #[cfg(percore_asan)]
        self.asan.sweep();
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
            // Before the op table, and so the op, sees the CQE.
            #[cfg(percore_asan)]
            self.asan.check(cqe.user_data(), cqe.result(), cqe.flags());
            match cqe.user_data() {
                CANCEL_TAG => {}
                WAKE_TAG => self.eventfd_armed = false,
                MSG_WAKE_TAG => {}
                tag @ MSG_SENT_BASE..MSG_WAKE_TAG => {
                    // Only failures post (the target's ring died, or its CQ is full).
                    self.failed_rings.push((tag - MSG_SENT_BASE) as usize);
                }
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

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::{Driver, Wait};

    /// A `MSG_RING` whose target is not a ring fails; the driver reports which
    /// core it could not wake, so the executor rings that core's eventfd instead.
    #[test]
    fn a_failed_msg_ring_names_the_core_to_ring_instead() {
        let not_a_ring = std::fs::File::open("/dev/null").unwrap();
        let wake = std::fs::File::open("/dev/null").unwrap();
        let mut driver = Driver::new(8, 16, wake.as_raw_fd()).unwrap();
        assert!(
            driver.msg_ring(not_a_ring.as_raw_fd(), 7),
            "MSG_RING is probed on 6.1+"
        );
        for _ in 0..100 {
            driver.turn(Wait::No).unwrap();
            if !driver.failed_rings.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(driver.failed_rings, [7]);
        assert_eq!(driver.counters.msg_rings, 1);
    }

    /// A `MSG_RING` to a live ring lands there as a wake CQE, which the target's
    /// driver swallows (it names no op), and posts nothing on the sender.
    #[test]
    fn a_msg_ring_wakes_the_target_ring_and_names_no_op() {
        let wake = std::fs::File::open("/dev/null").unwrap();
        let mut sender = Driver::new(8, 16, wake.as_raw_fd()).unwrap();
        // SAFETY: no memory preconditions; checked below.
        let eventfd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(eventfd >= 0);
        // SAFETY: just created, owned by nothing else.
        let eventfd =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(eventfd) };
        // The target parks with a read posted on an eventfd nobody writes.
        let mut target = Driver::new(8, 16, eventfd.as_raw_fd()).unwrap();
        let target_fd = target.dup_ring_fd().unwrap();
        assert!(sender.msg_ring(target_fd.as_raw_fd(), 1));
        sender.turn(Wait::No).unwrap();
        assert!(sender.failed_rings.is_empty());
        let before = target.counters.cqes;
        // Blocks until the message's CQE is there (the timeout only bounds a bug).
        target
            .turn(Wait::Park(Some(std::time::Duration::from_secs(5))))
            .unwrap();
        assert_eq!(target.counters.cqes, before + 1);
        assert!(target.woken.is_empty() && target.orphans.is_empty());
    }

    /// Under `percore_asan`, a read's target is recorded when it is pushed, and
    /// read back and forgotten when its CQE arrives.
    #[cfg(percore_asan)]
    #[test]
    fn the_asan_shadow_keeps_a_read_until_its_cqe() {
        use io_uring::{opcode, types};

        use super::Lifecycle;

        let wake = std::fs::File::open("/dev/null").unwrap();
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let mut driver = Driver::new(8, 16, wake.as_raw_fd()).unwrap();
        let mut buf = vec![1u8; 64];
        let sqe = opcode::Read::new(types::Fd(zero.as_raw_fd()), buf.as_mut_ptr(), 64).build();
        let key = driver.start(sqe, Lifecycle::Waiting(None)).unwrap();
        assert_eq!(driver.asan.len(), 1);
        for _ in 0..100 {
            driver.turn(Wait::No).unwrap();
            if driver.asan.len() == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(driver.asan.len(), 0);
        assert!(matches!(
            driver.table_mut().remove(key),
            Some(Lifecycle::Completed { res: 64, .. })
        ));
        assert_eq!(buf, [0; 64]);
    }
}
