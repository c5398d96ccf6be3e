//! The io_uring backend: one ring per core, submit and reap in one enter.
//!
//! Ops are only *pushed* to the submission queue while tasks run; the executor
//! turns the driver once per tick, which makes one `io_uring_enter` for all
//! of them and, when nothing else is ready, waits in the same call for the
//! first completion or the next timer deadline (`IORING_ENTER_EXT_ARG`).

#[cfg(percore_asan)]
mod asan;
mod features;
mod setup;
mod sys;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring, Probe};

use sys::RingFd;

use super::{Key, Ops, Wait, DRAIN_LIMIT};

pub use features::Features;
pub use setup::{SetupError, TaskRunMode};

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

/// One core's ring.
pub(crate) struct Ring {
    ring: IoUring,
    /// How enters name the ring: the registered index when the kernel allows.
    ring_fd: RingFd,
    probe: Probe,
    mode: TaskRunMode,
    /// The core's wake eventfd, owned by its `Shared`, which outlives the driver.
    eventfd: RawFd,
    /// The kernel writes the eventfd counter here while the wake read is armed.
    eventfd_buf: Box<u64>,
    eventfd_armed: bool,
    /// Whether the kernel has `IORING_OP_MSG_RING`.
    msg_ring: bool,
    /// Whether the kernel has `IORING_OP_LINK_TIMEOUT`.
    link_timeout: bool,
    /// The newer features this ring uses: wanted, and probed.
    features: Features,
    /// Where the kernel writes for each op in flight, read back at its CQE.
    #[cfg(percore_asan)]
    asan: asan::Shadow,
}

impl Ring {
    pub(crate) fn new(
        entries: u32,
        cq_entries: u32,
        eventfd: RawFd,
        features: Option<Features>,
    ) -> io::Result<Ring> {
        let wanted = features::wanted(features)?;
        let (ring, mode, probe) = setup::build(entries, cq_entries)?;
        let features = features::probe(&ring, wanted);
        let raw = ring.as_raw_fd();
        let ring_fd = sys::register_ring_fd(raw).unwrap_or(RingFd::Raw(raw));
        crate::trace::event!(
            DEBUG,
            sq_entries = ring.params().sq_entries(),
            cq_entries = ring.params().cq_entries(),
            mode = ?mode,
            registered_fd = matches!(ring_fd, RingFd::Registered(_)),
            msg_ring = probe.is_supported(opcode::MsgRingData::CODE),
            features = %features,
            "io_uring ring set up"
        );
        Ok(Ring {
            ring,
            ring_fd,
            mode,
            eventfd,
            eventfd_buf: Box::new(0),
            eventfd_armed: false,
            msg_ring: probe.is_supported(opcode::MsgRingData::CODE),
            link_timeout: probe.is_supported(opcode::LinkTimeout::CODE),
            features,
            probe,
            #[cfg(percore_asan)]
            asan: asan::Shadow::default(),
        })
    }

    pub(crate) fn is_supported(&self, opcode: u8) -> bool {
        self.probe.is_supported(opcode)
    }

    /// The newer features this ring uses.
    pub(crate) fn features(&self) -> Features {
        self.features
    }

    /// How the ring was set up.
    pub(crate) fn mode(&self) -> TaskRunMode {
        self.mode
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
    /// syscall of its own. False if the kernel lacks the opcode.
    pub(crate) fn msg_ring(&mut self, ops: &mut Ops, target_ring: RawFd, target: usize) -> bool {
        if !self.msg_ring {
            return false;
        }
        let sqe = opcode::MsgRingData::new(types::Fd(target_ring), 0, MSG_WAKE_TAG, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(MSG_SENT_BASE + target as u64);
        if self.push(ops, &sqe).is_err() {
            return false;
        }
        ops.counters.msg_rings += 1;
        true
    }

    /// The ring's registration interface (files, buffers, buffer rings).
    pub(crate) fn submitter(&self) -> io_uring::Submitter<'_> {
        self.ring.submitter()
    }

    /// Submits what is queued now, without waiting.
    pub(crate) fn submit_now(&mut self, ops: &mut Ops) {
        let _ = self.enter(ops, 0, None);
    }

    /// Asks the kernel to cancel the op in `key`'s slot.
    pub(crate) fn cancel(&mut self, ops: &mut Ops, key: Key) {
        let sqe = opcode::AsyncCancel::new(key.user_data())
            .build()
            .user_data(CANCEL_TAG);
        // If even this push fails the ring is broken; shutdown's drain still waits
        // for the op, so nothing is freed early.
        let _ = self.push(ops, &sqe);
    }

    /// Pushes one SQE. A full SQ is submitted (and the CQ reaped, if the kernel asks
    /// for room) until the entry fits: never dropped, never a panic.
    #[inline]
    pub(crate) fn push(&mut self, ops: &mut Ops, sqe: &squeue::Entry) -> io::Result<()> {
        let mut stuck = 0;
        loop {
            // SAFETY: every pointer in an entry built by this crate points into data
            // owned by an `Op` or by the op table (see `OpCode`'s contract), which
            // stays alive until the op's terminal CQE.
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                ops.counters.sqes += 1;
                #[cfg(percore_asan)]
                self.asan.record(sqe);
                return Ok(());
            }
            ops.counters.sq_full += 1;
            let before = self.ring.submission().len();
            self.enter(ops, 0, None)?;
            self.reap(ops);
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

    /// Pushes `sqe` (its `user_data` set) linked to an `IORING_OP_LINK_TIMEOUT`
    /// of `timespec` whose CQE carries `user_data ^ LINKED_TIMEOUT`. Both go
    /// into the SQ together or not at all: a link only holds within one
    /// submission. False, with nothing pushed, if the kernel lacks the opcode.
    ///
    /// `timespec` must stay where it is until the timeout's CQE (the kernel
    /// reads it at submission).
    pub(crate) fn push_linked(
        &mut self,
        ops: &mut Ops,
        sqe: squeue::Entry,
        timespec: *const types::Timespec,
    ) -> io::Result<bool> {
        if !self.link_timeout {
            return Ok(false);
        }
        let user_data = sqe.get_user_data();
        let pair = [
            sqe.flags(squeue::Flags::IO_LINK),
            opcode::LinkTimeout::new(timespec)
                .build()
                .user_data(user_data ^ super::table::LINKED_TIMEOUT),
        ];
        let mut stuck = 0;
        loop {
            // SAFETY: as in `push`; the timeout's timespec is kept by the
            // op's slot until its CQE.
            if unsafe { self.ring.submission().push_multiple(&pair) }.is_ok() {
                ops.counters.sqes += 2;
                #[cfg(percore_asan)]
                self.asan.record(&pair[0]);
                return Ok(true);
            }
            ops.counters.sq_full += 1;
            let before = self.ring.submission().len();
            self.enter(ops, 0, None)?;
            self.reap(ops);
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

    /// Submits everything queued, waits as `wait` says, and reaps all completions.
    pub(crate) fn turn(&mut self, ops: &mut Ops, wait: Wait) -> io::Result<()> {
        match wait {
            Wait::No => {
                if self.needs_enter() {
                    self.enter(ops, 0, None)?;
                }
            }
            Wait::Park(timeout) => {
                self.arm_eventfd(ops)?;
                self.enter(ops, 1, timeout)?;
            }
        }
        self.reap(ops);
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
    fn enter(&mut self, ops: &mut Ops, want: u32, timeout: Option<Duration>) -> io::Result<()> {
        ops.counters.enters += 1;
        if self.ring.submission().cq_overflow() {
            ops.counters.overflows += 1;
            // Logarithmic: the 1st, 2nd, 4th, 8th… overflowed enter.
            if ops.counters.overflows.is_power_of_two() {
                crate::trace::event!(
                    WARN,
                    overflows = ops.counters.overflows,
                    cq_entries = self.ring.params().cq_entries(),
                    "completion queue overflowed (completions delivered late); \
                     a bigger CQ (Builder::cq_entries) avoids the extra enters"
                );
            }
        }
        // Memory freed since the last enter is reported now, before the kernel
        // can write it (and overwrite ASan's record of the free).
        #[cfg(percore_asan)]
        self.asan.sweep();
        let to_submit = self.ring.submission().len() as u32;
        #[cfg(feature = "faults")]
        if let Some(errno) = ops.faults.as_mut().and_then(|faults| faults.fail_enter()) {
            // As if the kernel refused: the entries stay queued.
            ops.counters.faults += 1;
            return self.entered(ops, Err(io::Error::from_raw_os_error(errno)));
        }
        let result = sys::enter(self.ring_fd, to_submit, want, timeout);
        self.entered(ops, result)
    }

    /// What an `io_uring_enter` that returned `result` comes to: the errors
    /// that leave the queue as it was are retried by the next enter.
    fn entered(&mut self, ops: &mut Ops, result: io::Result<u32>) -> io::Result<()> {
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.raw_os_error() {
                Some(libc::EINTR) | Some(libc::ETIME) => Ok(()),
                Some(libc::EBUSY) | Some(libc::EAGAIN) => {
                    self.reap(ops);
                    Ok(())
                }
                _ => Err(io::Error::new(err.kind(), format!("io_uring_enter: {err}"))),
            },
        }
    }

    fn arm_eventfd(&mut self, ops: &mut Ops) -> io::Result<()> {
        if self.eventfd_armed {
            return Ok(());
        }
        let buf: *mut u64 = &mut *self.eventfd_buf;
        let sqe = opcode::Read::new(types::Fd(self.eventfd), buf.cast(), 8)
            .build()
            .user_data(WAKE_TAG);
        self.push(ops, &sqe)?;
        self.eventfd_armed = true;
        Ok(())
    }

    /// Moves every available CQE into the op table.
    fn reap(&mut self, ops: &mut Ops) {
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            // Before the op table, and so the op, sees the CQE.
            #[cfg(percore_asan)]
            self.asan.check(cqe.user_data(), cqe.result(), cqe.flags());
            match cqe.user_data() {
                CANCEL_TAG | MSG_WAKE_TAG => ops.counters.cqes += 1,
                WAKE_TAG => {
                    ops.counters.cqes += 1;
                    self.eventfd_armed = false;
                }
                tag @ MSG_SENT_BASE..MSG_WAKE_TAG => {
                    ops.counters.cqes += 1;
                    // Only failures post (the target's ring died, or its CQ is full).
                    ops.failed_rings.push((tag - MSG_SENT_BASE) as usize);
                }
                user_data => ops.complete(user_data, cqe.result(), cqe.flags()),
            }
        }
    }

    /// Cancels everything in flight and waits for the kernel to let go of it.
    pub(crate) fn drain(&mut self, ops: &mut Ops) -> bool {
        for key in ops.table.keys() {
            self.cancel(ops, key);
        }
        if self.eventfd_armed {
            let sqe = opcode::AsyncCancel::new(WAKE_TAG)
                .build()
                .user_data(CANCEL_TAG);
            let _ = self.push(ops, &sqe);
        }
        let start = Instant::now();
        while ops.table.has_kernel_work() || self.eventfd_armed {
            if start.elapsed() > DRAIN_LIMIT {
                return false;
            }
            if self.enter(ops, 1, Some(Duration::from_millis(50))).is_err() {
                return false;
            }
            self.reap(ops);
            ops.finish_orphans();
        }
        true
    }

    /// After a failed drain: the kernel may still write the wake counter.
    pub(crate) fn leak(&mut self) {
        std::mem::forget(std::mem::replace(&mut self.eventfd_buf, Box::new(0)));
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::{Ops, Ring, Wait};

    /// A `MSG_RING` whose target is not a ring fails; the driver reports which
    /// core it could not wake, so the executor rings that core's eventfd instead.
    #[test]
    fn a_failed_msg_ring_names_the_core_to_ring_instead() {
        let not_a_ring = std::fs::File::open("/dev/null").unwrap();
        let wake = std::fs::File::open("/dev/null").unwrap();
        let mut ring = Ring::new(8, 16, wake.as_raw_fd(), None).unwrap();
        let mut ops = Ops::default();
        assert!(
            ring.msg_ring(&mut ops, not_a_ring.as_raw_fd(), 7),
            "MSG_RING is probed on 6.1+"
        );
        for _ in 0..100 {
            ring.turn(&mut ops, Wait::No).unwrap();
            if !ops.failed_rings.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(ops.failed_rings, [7]);
        assert_eq!(ops.counters.msg_rings, 1);
    }

    /// A `MSG_RING` to a live ring lands there as a wake CQE, which the target's
    /// driver swallows (it names no op), and posts nothing on the sender.
    #[test]
    fn a_msg_ring_wakes_the_target_ring_and_names_no_op() {
        let wake = std::fs::File::open("/dev/null").unwrap();
        let mut sender = Ring::new(8, 16, wake.as_raw_fd(), None).unwrap();
        let mut sender_ops = Ops::default();
        // SAFETY: no memory preconditions; checked below.
        let eventfd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(eventfd >= 0);
        // SAFETY: just created, owned by nothing else.
        let eventfd =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(eventfd) };
        // The target parks with a read posted on an eventfd nobody writes.
        let mut target = Ring::new(8, 16, eventfd.as_raw_fd(), None).unwrap();
        let mut target_ops = Ops::default();
        let target_fd = target.dup_ring_fd().unwrap();
        assert!(sender.msg_ring(&mut sender_ops, target_fd.as_raw_fd(), 1));
        sender.turn(&mut sender_ops, Wait::No).unwrap();
        assert!(sender_ops.failed_rings.is_empty());
        let before = target_ops.counters.cqes;
        // Blocks until the message's CQE is there (the timeout only bounds a bug).
        target
            .turn(
                &mut target_ops,
                Wait::Park(Some(std::time::Duration::from_secs(5))),
            )
            .unwrap();
        assert_eq!(target_ops.counters.cqes, before + 1);
        assert!(target_ops.woken.is_empty() && target_ops.orphans.is_empty());
    }

    /// Under `percore_asan`, a read's target is recorded when it is pushed, and
    /// read back and forgotten when its CQE arrives.
    #[cfg(percore_asan)]
    #[test]
    fn the_asan_shadow_keeps_a_read_until_its_cqe() {
        use io_uring::{opcode, types};

        use crate::driver::Lifecycle;

        let wake = std::fs::File::open("/dev/null").unwrap();
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let mut ring = Ring::new(8, 16, wake.as_raw_fd(), None).unwrap();
        let mut ops = Ops::default();
        let mut buf = vec![1u8; 64];
        let key = ops.table.insert(Lifecycle::Waiting(None));
        let sqe = opcode::Read::new(types::Fd(zero.as_raw_fd()), buf.as_mut_ptr(), 64)
            .build()
            .user_data(key.user_data());
        ring.push(&mut ops, &sqe).unwrap();
        assert_eq!(ring.asan.len(), 1);
        for _ in 0..100 {
            ring.turn(&mut ops, Wait::No).unwrap();
            if ring.asan.len() == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(ring.asan.len(), 0);
        assert!(matches!(
            ops.table.remove(key),
            Some(Lifecycle::Completed { res: 64, .. })
        ));
        assert_eq!(buf, [0; 64]);
    }
}
