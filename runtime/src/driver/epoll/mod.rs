//! The readiness backend: the same SQEs as io_uring, run with epoll and the
//! blocking pool where io_uring is unavailable.
//!
//! An op's SQE is read field by field ([`RawSqe`]) and run as the system call
//! it stands for ([`emulate`]):
//!
//! - socket ops (`RECV`, `SEND`, `ACCEPT`, `CONNECT`, …) are tried at once
//!   without blocking; one that would block waits for its fd's readiness
//!   (`EPOLLONESHOT`, re-armed while ops wait on the fd) and is tried again;
//! - reads and writes are tried with `RWF_NOWAIT`, so a page-cache hit costs
//!   no thread hop; when that would block, a pollable fd (pipe, socket)
//!   waits for readiness and a regular file goes to the blocking pool;
//! - other file ops (open, statx, fsync, …) run on the blocking pool;
//! - `TIMEOUT` is a deadline of the driver's own, folded into the wait.
//!
//! Completions land in the same op table as CQEs do, with the flags the
//! kernel would set (`F_MORE` for multishot ops, `F_BUFFER` for a buffer
//! picked from a provided-buffer ring, which this backend picks from the
//! ring's memory the way the kernel does). A single-shot op that completes at
//! once never takes a slot. Memory the op owns stays the op's until its
//! completion is posted, so cancel-on-drop keeps every promise it makes on
//! io_uring: a cancelled op that waits for readiness completes with
//! `ECANCELED` at once; one on the blocking pool when its call returns.

mod emulate;
mod fds;
mod provided;
mod waiting;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use io_uring::{opcode as op, squeue};

use super::{Fallback, Key, Lifecycle, Offload, Ops, Started, Wait, DRAIN_LIMIT};
use crate::driver::sqe::RawSqe;
use emulate::Plan;
use fds::{Claim, Fds, Waiter, Waiters};
use provided::Provided;
use waiting::{Outcome, Trying};

/// epoll data of the core's wake eventfd (fds are never negative).
const WAKE_TOKEN: u64 = u64::MAX;
/// `IORING_CQE_F_BUFFER`, `F_MORE`, `F_NOTIF`.
const F_BUFFER: u32 = 1;
const F_MORE: u32 = 1 << 1;
const F_NOTIF: u32 = 1 << 3;
/// `IOSQE_FIXED_FILE`, `IOSQE_IO_DRAIN`, `IOSQE_IO_LINK`, `IOSQE_IO_HARDLINK`,
/// `IOSQE_BUFFER_SELECT`, `IOSQE_CQE_SKIP_SUCCESS`.
const FIXED_FILE: u8 = 1;
const CHAINED: u8 = (1 << 1) | (1 << 2) | (1 << 3);
const BUFFER_SELECT: u8 = 1 << 5;
const SKIP_SUCCESS: u8 = 1 << 6;
/// `IORING_RECV_MULTISHOT` / `IORING_ACCEPT_MULTISHOT` (in `ioprio`), and
/// `IORING_POLL_ADD_MULTI` (in `len`).
const RECV_MULTISHOT: u16 = 1 << 1;
const ACCEPT_MULTISHOT: u16 = 1;
const POLL_ADD_MULTI: u32 = 1;
/// The two directions of readiness.
const IN: u32 = libc::EPOLLIN as u32;
const OUT: u32 = libc::EPOLLOUT as u32;
/// `IORING_TIMEOUT_ABS`.
const TIMEOUT_ABS: u32 = 1;
/// Ops that may finish inside `start` per turn of the loop: as many as a
/// tick polls tasks (`Builder::budget`'s default), so an always-ready loop of
/// ops yields about as often as on io_uring, where every op waits a tick.
const INLINE_BUDGET: u32 = 128;
/// Items a multishot op delivers per readiness event before the others on
/// the core get a turn (it is tried again at once if more is ready).
const BURST: usize = 32;

/// Whether the readiness backend can run `opcode`.
pub(crate) fn is_supported(opcode: u8) -> bool {
    emulate::plan(opcode) != Plan::Unsupported
}

/// Results of ops run on the blocking pool, and the eventfd that wakes the
/// core for them (a duplicate: a job that outlives the core writes its own).
struct PoolDone {
    done: Mutex<Vec<(u64, i32)>>,
    wake: OwnedFd,
}

impl PoolDone {
    fn post(&self, user_data: u64, res: i32) {
        self.done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((user_data, res));
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an fd this struct owns.
        unsafe { libc::write(self.wake.as_raw_fd(), (&raw const one).cast(), 8) };
    }
}

/// One core's epoll instance and the ops it runs.
pub(crate) struct Poller {
    epoll: OwnedFd,
    eventfd: RawFd,
    events: Vec<libc::epoll_event>,
    /// Ops waiting for readiness, by slot.
    waiting: Waiters,
    /// Per fd: the ops waiting on it, its registration, its claim.
    fds: Fds,
    /// Multishot ops to try at the next turn (just started).
    retry: Vec<u64>,
    /// Completions to hand to the op table at the next turn.
    ready: Vec<(u64, i32, u32)>,
    pool: Arc<PoolDone>,
    offload: Offload,
    /// Ops on the blocking pool, by `user_data`.
    offloaded: HashMap<u64, Option<Arc<OwnedFd>>>,
    /// `TIMEOUT` ops: deadline and `user_data`.
    timeouts: Vec<(Instant, u64)>,
    /// The registered file table's stand-in: duplicates of the installed fds.
    files: Vec<Option<Arc<OwnedFd>>>,
    /// Provided-buffer rings and their groups (a core has one or two: a
    /// search of a few entries beats a hash).
    rings: Vec<(u16, Provided)>,
    /// Ops that may still finish inside `start` before the next turn.
    inline_left: u32,
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl Poller {
    pub(crate) fn new(eventfd: RawFd, offload: Offload) -> io::Result<Poller> {
        let context =
            |what: &str, err: io::Error| io::Error::new(err.kind(), format!("{what}: {err}"));
        // SAFETY: no memory preconditions; the result is checked.
        let epoll = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
            .map_err(|err| context("epoll_create1", err))?;
        // SAFETY: just created, owned by nothing else.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: WAKE_TOKEN,
        };
        // SAFETY: `event` is valid for the call; both fds are open.
        cvt(unsafe {
            libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, eventfd, &mut event)
        })
        .map_err(|err| context("epoll_ctl(ADD) of the core's eventfd", err))?;
        // SAFETY: the caller keeps `eventfd` open longer than this call.
        let wake = unsafe { BorrowedFd::borrow_raw(eventfd) }
            .try_clone_to_owned()
            .map_err(|err| context("dup of the core's eventfd", err))?;
        let poller = Poller {
            epoll,
            eventfd,
            events: Vec::with_capacity(256),
            waiting: Waiters::default(),
            fds: Fds::default(),
            retry: Vec::new(),
            ready: Vec::new(),
            pool: Arc::new(PoolDone {
                done: Mutex::new(Vec::new()),
                wake,
            }),
            offload,
            offloaded: HashMap::default(),
            timeouts: Vec::new(),
            files: Vec::new(),
            rings: Vec::new(),
            inline_left: INLINE_BUDGET,
        };
        // Only now: a poller that failed to start must not leave a queue that
        // nothing drains.
        FD_EVENTS.with(|events| *events.borrow_mut() = Some(Vec::new()));
        Ok(poller)
    }

    /// The fd an SQE names: its own, or the one installed in its fixed slot.
    fn resolve(&self, sqe: &RawSqe) -> io::Result<(RawFd, Option<Arc<OwnedFd>>)> {
        if sqe.flags & FIXED_FILE == 0 {
            return Ok((sqe.fd, None));
        }
        match self.files.get(sqe.fd as usize) {
            Some(Some(file)) => Ok((file.as_raw_fd(), Some(file.clone()))),
            _ => Err(io::Error::from_raw_os_error(libc::EBADF)),
        }
    }

    /// Runs or starts the op `entry` describes (see the module docs).
    pub(crate) fn start(
        &mut self,
        ops: &mut Ops,
        entry: squeue::Entry,
        state: Lifecycle,
    ) -> io::Result<Started> {
        ops.counters.sqes += 1;
        if fd_events_pending() {
            self.sync_claims();
        }
        let mut sqe = RawSqe::of(&entry);
        let socket_op = matches!(sqe.opcode, op::Send::CODE | op::Recv::CODE);
        let state = if socket_op && sqe.flags == 0 {
            match self.start_claimed(ops, &sqe, state) {
                Ok(started) => return Ok(started),
                Err(state) => state,
            }
        } else {
            state
        };
        let plan = emulate::plan(sqe.opcode);
        if plan == Plan::Unsupported || sqe.flags & CHAINED != 0 {
            let what = if plan == Plan::Unsupported {
                emulate::name(sqe.opcode)
            } else {
                "linked or drained SQEs (IOSQE_IO_LINK, IOSQE_IO_DRAIN)".to_string()
            };
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{what}: not available on the epoll backend, which this core runs because \
                     io_uring is unavailable or PERCORE_DRIVER/Builder::driver chose epoll"
                ),
            ));
        }
        let streaming = matches!(state, Lifecycle::Streaming { .. });
        if sqe.opcode == op::Close::CODE && sqe.file_index != 0 {
            // Closing a fixed slot.
            let closed = self.files_update(sqe.file_index - 1, -1);
            let res = closed.map_or_else(|err| -err.raw_os_error().unwrap_or(libc::EBADF), |()| 0);
            return Ok(self.finish_now(ops, sqe.flags, state, res));
        }
        let (fd, file) = match self.resolve(&sqe) {
            Ok(found) => found,
            Err(err) => {
                let res = -err.raw_os_error().unwrap_or(libc::EBADF);
                return Ok(self.finish_now(ops, sqe.flags, state, res));
            }
        };
        if matches!(sqe.opcode, op::Accept::CODE | op::Connect::CODE) {
            // No flag makes these two calls non-blocking: the socket's mode must.
            let res = self.set_nonblocking(fd);
            if res < 0 {
                return Ok(self.finish_now(ops, sqe.flags, state, res));
            }
        }
        match plan {
            Plan::Inline => {
                let res = emulate::attempt(&sqe, fd, None);
                Ok(self.finish_now(ops, sqe.flags, state, res))
            }
            Plan::Blocking => Ok(self.offload_op(ops, sqe, state, fd, file)),
            Plan::Timeout => Ok(self.start_timeout(ops, sqe, state)),
            Plan::Ready { .. } | Plan::ReadWrite { .. }
                if streaming || sqe.flags & BUFFER_SELECT != 0 =>
            {
                // Multishot (or a selected buffer): tried at the next turn, like
                // the kernel, which posts its first CQE after the submit.
                let key = ops.table.insert(state);
                sqe.user_data = key.user_data();
                let events = self.events_of(&sqe);
                self.waiting.insert(Waiter {
                    sqe,
                    fd,
                    events,
                    connecting: false,
                    sent: 0,
                    _file: file,
                });
                self.retry.push(sqe.user_data);
                Ok(Started::Pending(key))
            }
            Plan::Ready { .. } | Plan::ReadWrite { .. } => {
                self.start_single(ops, sqe, state, fd, file, plan)
            }
            Plan::Unsupported => unreachable!("refused above"),
        }
    }

    /// Makes `fd` non-blocking, once per claimed socket (a listener that
    /// accepts one connection per op would pay an `fcntl` each time).
    fn set_nonblocking(&mut self, fd: RawFd) -> i32 {
        if self.fds.claim(fd).is_some_and(|claim| claim.nonblocking) {
            return 0;
        }
        let res = emulate::set_nonblocking(fd);
        if let (0, Some(claim)) = (res, self.fds.claim_mut(fd)) {
            claim.nonblocking = true;
        }
        res
    }

    /// epoll events an op waits for.
    fn events_of(&self, sqe: &RawSqe) -> u32 {
        match emulate::plan(sqe.opcode) {
            Plan::Ready { events: 0 } => sqe.op_flags & 0xffff,
            Plan::Ready { events } | Plan::ReadWrite { events } => events,
            _ => 0,
        }
    }

    /// The hot path: a single-shot `SEND` or `RECV`, with no SQE flags, on a
    /// socket percore-net owns. As [`start_single`](Self::start_single) does
    /// it, with fewer questions: the fd is the SQE's, no file is direct, and a
    /// receive needs no buffer picked. `state` comes back if the op is not of
    /// that kind (a multishot op, or an fd not claimed): untried.
    #[inline]
    fn start_claimed(
        &mut self,
        ops: &mut Ops,
        sqe: &RawSqe,
        state: Lifecycle,
    ) -> Result<Started, Lifecycle> {
        if matches!(state, Lifecycle::Streaming { .. }) {
            return Err(state);
        }
        let (fd, send) = (sqe.fd, sqe.opcode == op::Send::CODE);
        let events = if send { OUT } else { IN };
        let mut res = -libc::EAGAIN;
        {
            let Some(claim) = self.fds.claim_mut(fd) else {
                return Err(state);
            };
            if claim.may_be_ready(events) {
                res = if send {
                    // SAFETY: the op owns the buffer the SQE names until its
                    // completion (the `OpCode` contract), posted after this call.
                    unsafe { emulate::send(fd, sqe.addr, sqe.len, sqe.op_flags) }
                } else {
                    // SAFETY: as above.
                    unsafe { emulate::recv(fd, sqe.addr, sqe.len, sqe.op_flags) }
                };
            }
            let short = res > 0 && (res as u32) < sqe.len;
            if res == -libc::EAGAIN || short {
                // Drained (tokio's rule for epoll: so is a socket a read found
                // short of what it asked).
                claim.ready &= !events;
            }
            if res != -libc::EAGAIN && !(send && short) && self.inline_left > 0 {
                self.inline_left -= 1;
                state.discard();
                return Ok(Started::Done { res, flags: 0 });
            }
        }
        let plan = Plan::Ready { events };
        Ok(self.settle(ops, *sqe, state, fd, None, plan, events, res))
    }

    /// A single-shot socket op, read or write: tried now; waits only if it
    /// would block.
    fn start_single(
        &mut self,
        ops: &mut Ops,
        sqe: RawSqe,
        state: Lifecycle,
        fd: RawFd,
        file: Option<Arc<OwnedFd>>,
        plan: Plan,
    ) -> io::Result<Started> {
        let events = self.events_of(&sqe);
        let claim = self.fds.claim(fd).copied();
        if matches!(plan, Plan::ReadWrite { .. }) && claim.is_none() && emulate::is_direct(fd) {
            // O_DIRECT goes to the device whatever the flags: `RWF_NOWAIT`
            // would still wait for it, on the core.
            return Ok(self.offload_op(ops, sqe, state, fd, file));
        }
        let res = if claim.is_none_or(|claim| claim.may_be_ready(events)) {
            emulate::attempt(&sqe, fd, None)
        } else {
            -libc::EAGAIN
        };
        self.fds.note_result(fd, events, sqe.opcode, res, sqe.len);
        Ok(self.settle(ops, sqe, state, fd, file, plan, events, res))
    }

    /// What follows a single-shot op's first try, `res`: the op finishes
    /// with it, or goes on to wait for `events` (the rest of a stream send
    /// that went out in part, a connect under way), or to the blocking pool.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &mut self,
        ops: &mut Ops,
        sqe: RawSqe,
        state: Lifecycle,
        fd: RawFd,
        file: Option<Arc<OwnedFd>>,
        plan: Plan,
        events: u32,
        res: i32,
    ) -> Started {
        let mut connecting = false;
        let mut sent = 0;
        let res = if sqe.opcode == op::Send::CODE
            && res > 0
            && (res as u32) < sqe.len
            && emulate::is_stream(fd)
        {
            // Part went out: the rest waits for room, as on io_uring.
            sent = res as u32;
            -libc::EAGAIN
        } else {
            res
        };
        match res {
            res if res == -libc::EINPROGRESS && sqe.opcode == op::Connect::CODE => {
                connecting = true
            }
            res if res == -libc::EAGAIN => {}
            res if matches!(plan, Plan::ReadWrite { .. })
                && (res == -libc::EOPNOTSUPP || res == -libc::EINVAL) =>
            {
                // No non-blocking form for this file: the plain call, off the core.
                return self.offload_op(ops, sqe, state, fd, file);
            }
            res => return self.finish_now(ops, sqe.flags, state, res),
        }
        let key = ops.table.insert(state);
        let mut sqe = sqe;
        sqe.user_data = key.user_data();
        match self.watch(fd, sqe.user_data, events) {
            Ok(()) => {
                self.waiting.insert(Waiter {
                    sqe,
                    fd,
                    events,
                    connecting,
                    sent,
                    _file: file,
                });
            }
            // A regular file cannot be polled: its read or write blocks on the
            // disk, so it goes to the pool.
            Err(err) if err.raw_os_error() == Some(libc::EPERM) => {
                self.offloaded.insert(sqe.user_data, file.clone());
                self.spawn_job(sqe, fd, file);
            }
            Err(err) => {
                let res = -err.raw_os_error().unwrap_or(libc::EIO);
                self.post(sqe.user_data, sqe.flags, res, 0);
            }
        }
        Started::Pending(key)
    }

    /// Posts the result of an op that ran inside `start`: handed back at once
    /// if single-shot, else through a slot like any completion.
    #[inline(always)]
    fn finish_now(&mut self, ops: &mut Ops, sqe_flags: u8, state: Lifecycle, res: i32) -> Started {
        if !matches!(state, Lifecycle::Streaming { .. }) && self.inline_left > 0 {
            self.inline_left -= 1;
            state.discard();
            return Started::Done { res, flags: 0 };
        }
        // A multishot op, or the tick's budget of ops finished at once is
        // spent: the result waits for the next turn, so a task whose every op
        // completes at once (reads from the page cache) still lets the
        // others, and the loop, run.
        let key = ops.table.insert(state);
        self.post(key.user_data(), sqe_flags, res, 0);
        Started::Pending(key)
    }

    fn offload_op(
        &mut self,
        ops: &mut Ops,
        mut sqe: RawSqe,
        state: Lifecycle,
        fd: RawFd,
        file: Option<Arc<OwnedFd>>,
    ) -> Started {
        let key = ops.table.insert(state);
        sqe.user_data = key.user_data();
        self.offloaded.insert(sqe.user_data, file.clone());
        self.spawn_job(sqe, fd, file);
        Started::Pending(key)
    }

    /// Runs an op's [`fallback`](super::OpCode::fallback) call on the
    /// blocking pool, in a slot like any op on the pool.
    pub(crate) fn start_job(&mut self, ops: &mut Ops, state: Lifecycle, job: Fallback) -> Started {
        ops.counters.sqes += 1;
        let key = ops.table.insert(state);
        let user_data = key.user_data();
        self.offloaded.insert(user_data, None);
        let pool = self.pool.clone();
        (self.offload)(Box::new(move || {
            let res = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
                Ok(Ok(n)) => n.min(i32::MAX as u32) as i32,
                Ok(Err(err)) => -err.raw_os_error().unwrap_or(libc::EIO),
                Err(_) => -libc::EIO,
            };
            pool.post(user_data, res);
        }));
        Started::Pending(key)
    }

    /// Runs `sqe` on the blocking pool; its result comes back through `pool`.
    ///
    /// The job gets its own duplicate of the fd (a fixed file's already is
    /// one): a cancel does not stop a call on the pool, and the op's owner may
    /// close the fd as soon as the op is dropped — a write could otherwise
    /// land in whatever file takes the number next, while the job waits in
    /// the pool's queue.
    fn spawn_job(&mut self, sqe: RawSqe, fd: RawFd, file: Option<Arc<OwnedFd>>) {
        let pool = self.pool.clone();
        let own = match file {
            Some(file) => Ok(Some(file)),
            None if fd >= 0 => {
                // SAFETY: the op was just started by its owner, which holds
                // `fd` open for this call.
                unsafe { BorrowedFd::borrow_raw(fd) }
                    .try_clone_to_owned()
                    .map(|dup| Some(Arc::new(dup)))
            }
            // `AT_FDCWD`: a path relative to the working directory.
            None => Ok(None),
        };
        let own = match own {
            Ok(own) => own,
            Err(err) => {
                let res = -err.raw_os_error().unwrap_or(libc::EMFILE);
                self.offloaded.remove(&sqe.user_data);
                return self.ready.push((sqe.user_data, res, 0));
            }
        };
        (self.offload)(Box::new(move || {
            let fd = own.as_ref().map_or(fd, |own| own.as_raw_fd());
            let res = emulate::blocking(&sqe, fd);
            drop(own);
            pool.post(sqe.user_data, res);
        }));
    }

    fn start_timeout(&mut self, ops: &mut Ops, mut sqe: RawSqe, state: Lifecycle) -> Started {
        if sqe.addr == 0 || sqe.off != 0 {
            // A timeout that counts completions has no stand-in here.
            return self.finish_now(ops, sqe.flags, state, -libc::EINVAL);
        }
        // SAFETY: the op owns the `__kernel_timespec` at `addr` until its
        // completion (the `OpCode` contract).
        let (secs, nanos) = unsafe {
            let ts = sqe.addr as *const i64;
            (ts.read(), ts.add(1).read())
        };
        let span = Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32);
        let now = Instant::now();
        let deadline = if sqe.op_flags & TIMEOUT_ABS != 0 {
            let mut mono = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `mono` is valid for the kernel to write.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut mono) };
            let at = Duration::new(mono.tv_sec as u64, mono.tv_nsec as u32);
            now + span.saturating_sub(at)
        } else {
            now + span
        };
        let key = ops.table.insert(state);
        sqe.user_data = key.user_data();
        self.timeouts.push((deadline, sqe.user_data));
        Started::Pending(key)
    }

    /// Queues a completion for the next turn (unless `CQE_SKIP_SUCCESS` hides it).
    #[inline]
    fn post(&mut self, user_data: u64, sqe_flags: u8, res: i32, flags: u32) {
        waiting::post(&mut self.ready, user_data, sqe_flags, res, flags);
    }

    /// Makes sure `fd`'s registration reports `events` for op `user_data`.
    fn watch(&mut self, fd: RawFd, user_data: u64, events: u32) -> io::Result<()> {
        let epoll = self.epoll.as_raw_fd();
        let Some(state) = self.fds.entry(fd) else {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        };
        if let Some(claim) = &mut state.claim {
            // A socket percore-net owns: registered once, for good.
            if !claim.registered {
                register_edge(epoll, fd)?;
                claim.registered = true;
            }
        } else {
            let wanted = state.armed | events;
            if wanted != state.armed {
                arm(epoll, fd, wanted)?;
                state.armed = wanted;
            }
        }
        state.ops.push(user_data);
        Ok(())
    }

    /// Forgets that op `user_data` waits on `fd`. An unclaimed fd left
    /// without ops forgets its registration too: its fd may be closed and its
    /// number reused before the next wait, which then re-registers it
    /// (`arm`), never trusting a stale one.
    fn unwatch(&mut self, fd: RawFd, user_data: u64) {
        if let Some(state) = self.fds.get_mut(fd) {
            state.ops.retain(|&op| op != user_data);
            if state.ops.is_empty() && state.claim.is_none() {
                state.armed = 0;
            }
        }
    }

    /// Asks for the op in `key`'s slot to end: one waiting for readiness or a
    /// deadline ends now with `ECANCELED`; one on the blocking pool ends when
    /// its call returns.
    pub(crate) fn cancel(&mut self, key: Key) {
        let user_data = key.user_data();
        if let Some(waiter) = self.waiting.remove(user_data) {
            self.unwatch(waiter.fd, user_data);
            self.retry.retain(|&op| op != user_data);
            // A send cut short reports what went out, as io_uring does.
            let res = if waiter.sent > 0 {
                waiter.sent as i32
            } else {
                -libc::ECANCELED
            };
            self.ready.push((user_data, res, 0));
        } else if let Some(at) = self.timeouts.iter().position(|&(_, op)| op == user_data) {
            self.timeouts.swap_remove(at);
            self.ready.push((user_data, -libc::ECANCELED, 0));
        }
    }

    /// Tries the op `user_data` again; posts what it produced.
    fn try_op(&mut self, user_data: u64) -> Outcome {
        let Some(waiter) = self.waiting.get_mut(user_data) else {
            return Outcome::Done;
        };
        let mut trying = Trying {
            fds: &mut self.fds,
            rings: &mut self.rings,
            ready: &mut self.ready,
        };
        match trying.run(waiter) {
            Outcome::More => {
                self.retry.push(user_data);
                Outcome::Again
            }
            outcome => outcome,
        }
    }

    /// Retries the ops waiting on `fd` that `revents` concerns, then re-arms
    /// its registration for those still waiting.
    fn ready_fd(&mut self, fd: RawFd, revents: u32) {
        let Some(state) = self.fds.get_mut(fd) else {
            return;
        };
        let edge = match &mut state.claim {
            Some(claim) => {
                claim.saw(revents);
                claim.registered
            }
            None => false,
        };
        if state.ops.is_empty() {
            return;
        }
        state.armed = 0;
        let broken = revents & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0;
        // In place: trying an op neither starts one nor touches a list of ops.
        let mut at = 0;
        while let Some(&user_data) = self.fds.get(fd).and_then(|state| state.ops.get(at)) {
            let waits = match self.waiting.get(user_data) {
                None => false,
                Some(waiter) if !broken && waiter.events & revents == 0 => true,
                Some(_) => self.try_op(user_data) != Outcome::Done,
            };
            if waits {
                at += 1;
            } else {
                self.waiting.remove(user_data);
                if let Some(state) = self.fds.get_mut(fd) {
                    state.ops.remove(at);
                }
            }
        }
        let Some(state) = self.fds.get_mut(fd) else {
            return;
        };
        if edge {
            // Registered for both directions, edge-triggered, until released.
            return;
        }
        if state.ops.is_empty() {
            return;
        }
        let waiting = &self.waiting;
        let wanted = state
            .ops
            .iter()
            .filter_map(|&op| waiting.get(op))
            .fold(0, |events, waiter| events | waiter.events);
        if let Err(err) = arm(self.epoll.as_raw_fd(), fd, wanted) {
            // The fd went away under its ops (closed by its owner): fail them.
            let res = -err.raw_os_error().unwrap_or(libc::EIO);
            for user_data in std::mem::take(&mut state.ops) {
                if let Some(waiter) = self.waiting.remove(user_data) {
                    self.post(user_data, waiter.sqe.flags, res, 0);
                }
            }
            return;
        }
        state.armed = wanted;
    }

    /// The ops just started that are tried at the next turn.
    fn run_retries(&mut self) {
        let retry = std::mem::take(&mut self.retry);
        for user_data in retry {
            let Some(waiter) = self.waiting.get(user_data) else {
                continue;
            };
            let (fd, events) = (waiter.fd, waiter.events);
            let watched = self
                .fds
                .get(fd)
                .is_some_and(|state| state.ops.contains(&user_data));
            match self.try_op(user_data) {
                Outcome::Done => {
                    self.waiting.remove(user_data);
                    self.unwatch(fd, user_data);
                }
                // (`try_op` queued an op that wants another go already.)
                Outcome::Again | Outcome::More if !watched => {
                    if let Err(err) = self.watch(fd, user_data, events) {
                        let res = -err.raw_os_error().unwrap_or(libc::EIO);
                        if let Some(waiter) = self.waiting.remove(user_data) {
                            self.post(user_data, waiter.sqe.flags, res, 0);
                        }
                    }
                }
                Outcome::Again | Outcome::More => {}
            }
        }
    }

    /// Takes what the blocking pool finished.
    fn collect_pool(&mut self) {
        let done = std::mem::take(
            &mut *self
                .pool
                .done
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (user_data, res) in done {
            self.offloaded.remove(&user_data);
            self.ready.push((user_data, res, 0));
        }
    }

    /// Posts `ETIME` for every deadline passed; the time to the next one.
    fn fire_timeouts(&mut self) -> Option<Duration> {
        if self.timeouts.is_empty() {
            return None;
        }
        let now = Instant::now();
        let mut next = None::<Duration>;
        let mut i = 0;
        while i < self.timeouts.len() {
            let (deadline, user_data) = self.timeouts[i];
            if deadline <= now {
                self.timeouts.swap_remove(i);
                self.ready.push((user_data, -libc::ETIME, 0));
            } else {
                let left = deadline - now;
                next = Some(next.map_or(left, |n| n.min(left)));
                i += 1;
            }
        }
        next
    }

    /// Runs what is due, waits as `wait` says (only if nothing is), and hands
    /// every completion to the op table.
    pub(crate) fn turn(&mut self, ops: &mut Ops, wait: Wait) -> io::Result<()> {
        self.inline_left = INLINE_BUDGET;
        if fd_events_pending() {
            self.sync_claims();
        }
        self.collect_pool();
        if !self.retry.is_empty() {
            self.run_retries();
        }
        let next_timeout = self.fire_timeouts();
        let timeout = match wait {
            _ if !self.ready.is_empty() || !self.retry.is_empty() => Some(Duration::ZERO),
            Wait::No => Some(Duration::ZERO),
            Wait::Park(None) => next_timeout,
            Wait::Park(Some(t)) => Some(next_timeout.map_or(t, |n| n.min(t))),
        };
        let skip = matches!(timeout, Some(t) if t.is_zero()) && self.waiting.is_empty();
        if !skip {
            self.wait(ops, timeout)?;
        }
        self.collect_pool();
        self.fire_timeouts();
        for (user_data, res, flags) in self.ready.drain(..) {
            ops.complete(user_data, res, flags);
        }
        Ok(())
    }

    /// One `epoll_wait`, and the ops its events concern.
    fn wait(&mut self, ops: &mut Ops, timeout: Option<Duration>) -> io::Result<()> {
        ops.counters.enters += 1;
        let ms = match timeout {
            None => -1,
            // Rounded up: a timer never fires early.
            Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32,
        };
        self.events.clear();
        // SAFETY: the kernel writes at most `capacity` events into the vector's
        // spare capacity.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.capacity() as i32,
                ms,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                return Ok(());
            }
            return Err(io::Error::new(err.kind(), format!("epoll_wait: {err}")));
        }
        // SAFETY: the kernel initialised the first `n` events.
        unsafe { self.events.set_len(n as usize) };
        let events = std::mem::take(&mut self.events);
        for event in &events {
            let (token, revents) = (event.u64, event.events);
            if token == WAKE_TOKEN {
                let mut count: u64 = 0;
                // SAFETY: reads 8 bytes into a live u64; the eventfd is
                // non-blocking, so an empty counter is EAGAIN, not a wait.
                unsafe { libc::read(self.eventfd, (&raw mut count).cast(), 8) };
            } else {
                self.ready_fd(token as RawFd, revents);
            }
        }
        self.events = events;
        Ok(())
    }

    /// Cancels everything waiting, waits for the blocking pool's ops (at most
    /// [`DRAIN_LIMIT`]) and hands every completion over. False if some op on
    /// the pool never returned: its memory must then be leaked.
    pub(crate) fn drain(&mut self, ops: &mut Ops) -> bool {
        for key in ops.table.keys() {
            self.cancel(key);
        }
        let start = Instant::now();
        loop {
            if self.turn(ops, Wait::No).is_err() {
                return false;
            }
            ops.finish_orphans();
            if self.offloaded.is_empty() {
                return true;
            }
            if start.elapsed() > DRAIN_LIMIT {
                return false;
            }
            if self.wait(ops, Some(Duration::from_millis(50))).is_err() {
                return false;
            }
        }
    }

    /// Applies the claims and releases percore-net reported, in order.
    fn sync_claims(&mut self) {
        let events = FD_EVENTS.with(|events| events.borrow_mut().as_mut().map(std::mem::take));
        for event in events.unwrap_or_default() {
            match event {
                FdEvent::Claim(fd) => {
                    if let Some(state) = self.fds.entry(fd) {
                        state.claim = Some(Claim::new());
                    }
                }
                FdEvent::Release(fd) => {
                    let Some(state) = self.fds.get_mut(fd) else {
                        continue;
                    };
                    if state.claim.take().is_some_and(|claim| claim.registered) {
                        // Not closed yet (the release comes first): unregister.
                        // SAFETY: a null event is allowed for DEL since 2.6.9.
                        unsafe {
                            libc::epoll_ctl(
                                self.epoll.as_raw_fd(),
                                libc::EPOLL_CTL_DEL,
                                fd,
                                std::ptr::null_mut(),
                            )
                        };
                    }
                    if state.ops.is_empty() {
                        state.armed = 0;
                    }
                }
            }
        }
    }

    /// Makes the file table `slots` long (all empty).
    pub(crate) fn files_sparse(&mut self, slots: u32) {
        self.files = (0..slots).map(|_| None).collect();
    }

    /// Installs a duplicate of `fd` in slot `index`, or empties it (`fd` −1).
    pub(crate) fn files_update(&mut self, index: u32, fd: RawFd) -> io::Result<()> {
        let Some(slot) = self.files.get_mut(index as usize) else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        if fd < 0 {
            *slot = None;
            return Ok(());
        }
        // SAFETY: the caller holds `fd` open for this call.
        let dup = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
        *slot = Some(Arc::new(dup));
        Ok(())
    }

    /// Picks from the ring at `ring` for buffer group `group`.
    ///
    /// # Safety
    ///
    /// As [`Registrar::register_buf_ring`](super::Registrar::register_buf_ring).
    pub(crate) unsafe fn register_buf_ring(
        &mut self,
        ring: *mut u8,
        entries: u16,
        group: u16,
    ) -> io::Result<()> {
        if self.rings.iter().any(|(id, _)| *id == group) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        if !entries.is_power_of_two() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.rings.push((group, Provided::new(ring, entries)));
        Ok(())
    }

    pub(crate) fn unregister_buf_ring(&mut self, group: u16) {
        self.rings.retain(|(id, _)| *id != group);
    }
}

/// Registers `fd` edge-triggered for both directions, for good (switching
/// it over if it was registered one-shot before it was claimed).
fn register_edge(epoll: RawFd, fd: RawFd) -> io::Result<()> {
    let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
    ctl(
        epoll,
        fd,
        events,
        [libc::EPOLL_CTL_ADD, libc::EPOLL_CTL_MOD],
        libc::EEXIST,
    )
}

/// `epoll_ctl` of `fd` for `events` with `ops[0]`, then with `ops[1]` if the
/// first fails with `retry_on` (ADD of an fd epoll knows, MOD of one it does
/// not).
fn ctl(
    epoll: RawFd,
    fd: RawFd,
    events: u32,
    ops: [libc::c_int; 2],
    retry_on: i32,
) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `event` is valid for the call; epoll_ctl checks the fds.
    let rc = unsafe { libc::epoll_ctl(epoll, ops[0], fd, &mut event) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(retry_on) {
        return Err(err);
    }
    // SAFETY: as above.
    cvt(unsafe { libc::epoll_ctl(epoll, ops[1], fd, &mut event) }).map(drop)
}

/// Socket lifetimes percore-net reported and the poller has not applied yet.
#[derive(Clone, Copy, Debug)]
enum FdEvent {
    Claim(RawFd),
    Release(RawFd),
}

thread_local! {
    /// `Some` while an epoll poller runs on this thread: io_uring cores, and
    /// threads without a core, keep nothing. A queue rather than a call into
    /// the poller, so a release never needs the driver (it may be busy), and
    /// the poller applies every release before it looks at any fd again —
    /// before the number can mean another socket to it.
    static FD_EVENTS: RefCell<Option<Vec<FdEvent>>> = const { RefCell::new(None) };
}

fn note(event: FdEvent) {
    let _ = FD_EVENTS.try_with(|events| {
        if let Ok(mut events) = events.try_borrow_mut() {
            if let Some(events) = events.as_mut() {
                events.push(event);
            }
        }
    });
}

fn fd_events_pending() -> bool {
    FD_EVENTS
        .try_with(|events| {
            events
                .try_borrow()
                .is_ok_and(|events| events.as_ref().is_some_and(|events| !events.is_empty()))
        })
        .unwrap_or(false)
}

/// See [`__private::claim_fd`](crate::__private::claim_fd).
pub(crate) fn claim_fd(fd: RawFd) {
    note(FdEvent::Claim(fd));
}

/// See [`__private::release_fd`](crate::__private::release_fd).
pub(crate) fn release_fd(fd: RawFd) {
    note(FdEvent::Release(fd));
}

impl Drop for Poller {
    fn drop(&mut self) {
        let _ = FD_EVENTS.try_with(|events| *events.borrow_mut() = None);
    }
}

/// Arms `fd`'s one-shot registration for `events` (adding it if epoll does
/// not know it: first use, or closed and reopened under the same number).
fn arm(epoll: RawFd, fd: RawFd, events: u32) -> io::Result<()> {
    let events = events | (libc::EPOLLONESHOT | libc::EPOLLRDHUP) as u32;
    ctl(
        epoll,
        fd,
        events,
        [libc::EPOLL_CTL_MOD, libc::EPOLL_CTL_ADD],
        libc::ENOENT,
    )
}
