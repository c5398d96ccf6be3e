//! The driver: the seam between a core's executor and the kernel.
//!
//! The executor talks to its core's driver ([`Io`]) through one small
//! interface: [`start`](Io::start) an op (its SQE), or
//! [`start_linked`](Io::start_linked) one with a linked timeout (io_uring
//! only: its slot takes the timeout's CQE too), [`cancel`](Io::cancel)
//! one, [`turn`](Io::turn) (submit, then reap completions, parking until one
//! arrives, a deadline passes or another thread wakes the core), and the
//! counters. Completions come back up as data — the op table's wakers and
//! orphans — which the executor then wakes and finishes; nothing here knows
//! the executor or tasks.
//!
//! Behind the seam, one of two backends, chosen when the core starts
//! ([`Driver`]):
//!
//! - `uring/`: io_uring. Ops are only *pushed* to the submission queue while
//!   tasks run; one `io_uring_enter` per tick submits them all and, when
//!   nothing else is ready, waits in the same call for the first completion or
//!   the next timer deadline.
//! - `epoll/`: readiness, for where io_uring is blocked. It runs the *same*
//!   SQEs: socket ops are tried at once without blocking and, if the socket is
//!   not ready, retried when epoll says it is; file ops are tried with
//!   `RWF_NOWAIT` (a page-cache hit costs no thread hop) and otherwise run on
//!   the blocking pool; completions land in the same op table.

mod choice;
mod epoll;
#[cfg(feature = "faults")]
pub(crate) mod fault;
mod opcode;
pub(crate) mod sqe;
mod table;
mod uring;

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::task::Waker;
use std::time::Duration;

use io_uring::squeue;

pub use choice::Driver;
pub(crate) use choice::{choose, Offload};
pub(crate) use epoll::{claim_fd, release_fd};
pub(crate) use opcode::{cqe_result, leaked};
pub use opcode::{Fallback, MultishotCode, OpCode};
pub(crate) use table::{linked_result, Key, Lifecycle, Linked, OpTable, Orphan, Reaped};
pub use uring::{Features, SetupError, TaskRunMode};

/// How long shutdown waits for cancelled ops before leaking their memory.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Counters the driver keeps; merged into [`Stats`](crate::Stats).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IoCounters {
    /// Syscalls made to submit, reap or park (`io_uring_enter`, `epoll_wait`).
    pub(crate) enters: u64,
    pub(crate) sqes: u64,
    pub(crate) cqes: u64,
    pub(crate) overflows: u64,
    pub(crate) sq_full: u64,
    pub(crate) msg_rings: u64,
    /// Faults the `faults` layer injected.
    pub(crate) faults: u64,
}

/// How long [`Io::turn`] may block.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Submit and collect what is ready, never block.
    No,
    /// Block until a completion arrives or, if given, the timeout passes.
    Park(Option<Duration>),
}

/// What [`Io::start`] did with an op.
#[derive(Debug)]
pub(crate) enum Started {
    /// In flight in this slot; its completion arrives in a later turn.
    Pending(Key),
    /// Finished already (the readiness backend ran it at once); no slot is
    /// left. Only single-shot ops finish this way.
    Done { res: i32, flags: u32 },
}

/// The op table and what its completions woke: the part of the driver both
/// backends share.
#[derive(Default)]
pub(crate) struct Ops {
    pub(crate) table: OpTable,
    /// Tasks whose ops completed; the executor wakes them outside the driver borrow.
    pub(crate) woken: Vec<Waker>,
    /// Orphans whose last CQE arrived; completed (and their output dropped) outside
    /// the driver borrow, since dropping an output may run user code.
    pub(crate) orphans: Vec<(Box<dyn Orphan>, i32, u32)>,
    /// Cores this core's `MSG_RING` failed to wake; the executor rings their
    /// eventfds instead.
    pub(crate) failed_rings: Vec<usize>,
    pub(crate) counters: IoCounters,
    /// The fault layer, when the `faults` feature is on and a spec is set.
    #[cfg(feature = "faults")]
    pub(crate) faults: Option<Box<fault::Faults>>,
}

impl Ops {
    /// Records one completion of the op `user_data` names.
    #[inline]
    fn complete(&mut self, user_data: u64, res: i32, flags: u32) {
        self.counters.cqes += 1;
        #[cfg(feature = "faults")]
        if let Some(faults) = &mut self.faults {
            if faults.hold(user_data, res, flags) {
                self.counters.faults += 1;
                return;
            }
        }
        self.deliver(user_data, res, flags);
    }

    /// Hands one completion to its slot.
    #[inline]
    fn deliver(&mut self, user_data: u64, res: i32, flags: u32) {
        match self.table.complete(user_data, res, flags) {
            Reaped::Nothing => {}
            Reaped::Wake(waker) => self.woken.push(waker),
            Reaped::Orphan(orphan, res, flags) => self.orphans.push((orphan, res, flags)),
        }
    }

    /// Finishes orphans whose last completion arrived (shutdown's drain).
    fn finish_orphans(&mut self) {
        for (mut orphan, res, flags) in self.orphans.drain(..) {
            orphan.cqe(res, flags, true);
        }
    }
}

// One per core, built once and never moved: boxing the ring would only add a
// pointer hop to every push.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Uring(uring::Ring),
    Epoll(epoll::Poller),
}

/// One core's driver: its backend and everything in flight on it.
pub(crate) struct Io {
    pub(crate) ops: Ops,
    /// `Op`s in flight whose op completes on its own
    /// ([`OpCode::completes_on_its_own`]): a paused clock waits for them.
    pub(crate) holding: usize,
    backend: Backend,
}

impl Io {
    /// A driver of the kind `choice` allows (see [`choose`]), its ring sized
    /// `entries`/`cq_entries` and using the newer `features` it has (`None`:
    /// as `PERCORE_URING_FEATURES` says, else the default). `eventfd` is the core's wake eventfd (owned by
    /// the caller, alive longer than the driver); `offload` runs the
    /// readiness backend's blocking file ops.
    pub(crate) fn new(
        choice: Driver,
        entries: u32,
        cq_entries: u32,
        features: Option<Features>,
        eventfd: RawFd,
        offload: Offload,
    ) -> io::Result<Io> {
        let uring = || uring::Ring::new(entries, cq_entries, eventfd, features);
        let backend = match choose(choice, uring)? {
            Some(ring) => Backend::Uring(ring),
            None => Backend::Epoll(epoll::Poller::new(eventfd, offload)?),
        };
        Ok(Io {
            ops: Ops::default(),
            holding: 0,
            backend,
        })
    }

    /// Which backend this driver runs on.
    pub(crate) fn kind(&self) -> Driver {
        match self.backend {
            Backend::Uring(_) => Driver::IoUring,
            Backend::Epoll(_) => Driver::Epoll,
        }
    }

    /// The newer io_uring features this core uses (none on epoll).
    pub(crate) fn features(&self) -> Features {
        match &self.backend {
            Backend::Uring(ring) => ring.features(),
            Backend::Epoll(_) => Features::NONE,
        }
    }

    /// Whether this core can run `opcode` (an `io_uring::opcode::*::CODE`): as
    /// probed on io_uring, or as the readiness backend knows how.
    pub(crate) fn is_supported(&self, opcode: u8) -> bool {
        match &self.backend {
            Backend::Uring(ring) => ring.is_supported(opcode),
            Backend::Epoll(_) => epoll::is_supported(opcode),
        }
    }

    /// A new fd for this core's ring, for other cores to target with
    /// `MSG_RING`; `None` on the readiness backend (peers ring the eventfd).
    pub(crate) fn dup_ring_fd(&self) -> io::Result<Option<OwnedFd>> {
        match &self.backend {
            Backend::Uring(ring) => ring.dup_ring_fd().map(Some),
            Backend::Epoll(_) => Ok(None),
        }
    }

    /// Queues a wake of core `target` through its ring fd `target_ring`, sent
    /// with this core's next enter. False if it cannot (no `MSG_RING`, or the
    /// readiness backend): ring the target's eventfd instead.
    ///
    /// `target_ring` must stay open until this core's next enter.
    pub(crate) fn msg_ring(&mut self, target_ring: RawFd, target: usize) -> bool {
        match &mut self.backend {
            Backend::Uring(ring) => ring.msg_ring(&mut self.ops, target_ring, target),
            Backend::Epoll(_) => false,
        }
    }

    /// The registration interface of this core's backend.
    pub(crate) fn registrar(&mut self) -> Registrar<'_> {
        match &mut self.backend {
            Backend::Uring(ring) => Registrar::Uring(ring.submitter()),
            Backend::Epoll(poller) => Registrar::Epoll(poller),
        }
    }

    /// The io_uring registration interface; `None` on the readiness backend.
    pub(crate) fn submitter(&self) -> Option<io_uring::Submitter<'_>> {
        match &self.backend {
            Backend::Uring(ring) => Some(ring.submitter()),
            Backend::Epoll(_) => None,
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.ops.table.len()
    }

    pub(crate) fn table_mut(&mut self) -> &mut OpTable {
        &mut self.ops.table
    }

    /// Starts the op `sqe` describes, its slot in `state`. On error nothing
    /// was started and no slot is left.
    #[inline]
    pub(crate) fn start(&mut self, sqe: squeue::Entry, state: Lifecycle) -> io::Result<Started> {
        #[cfg(feature = "faults")]
        if self.ops.faults.is_some() {
            return self.start_with_faults(sqe, state);
        }
        self.start_plain(sqe, state)
    }

    #[inline]
    fn start_plain(&mut self, sqe: squeue::Entry, state: Lifecycle) -> io::Result<Started> {
        match &mut self.backend {
            Backend::Uring(ring) => {
                let key = self.ops.table.insert(state);
                match ring.push(&mut self.ops, &sqe.user_data(key.user_data())) {
                    Ok(()) => Ok(Started::Pending(key)),
                    Err(err) => {
                        self.ops.table.remove(key);
                        Err(err)
                    }
                }
            }
            Backend::Epoll(poller) => poller.start(&mut self.ops, sqe, state),
        }
    }

    /// [`start`](Io::start) through the fault layer: a single-shot op may fail
    /// instead of running, a read or write may ask for fewer bytes, and an op
    /// the readiness backend finished at once may still have its completion
    /// held back.
    #[cfg(feature = "faults")]
    #[cold]
    fn start_with_faults(
        &mut self,
        mut sqe: squeue::Entry,
        state: Lifecycle,
    ) -> io::Result<Started> {
        let Some(faults) = self.ops.faults.as_mut() else {
            return self.start_plain(sqe, state);
        };
        let waker = match &state {
            Lifecycle::Waiting(waker) => Some(waker.clone()),
            _ => None,
        };
        if waker.is_some() {
            if let Some(errno) = faults.error(&sqe) {
                self.ops.counters.faults += 1;
                let key = self.ops.table.insert(state);
                faults.fail(key.user_data(), errno);
                return Ok(Started::Pending(key));
            }
        }
        if faults.shorten(&mut sqe) {
            self.ops.counters.faults += 1;
        }
        match (self.start_plain(sqe, state)?, waker) {
            (Started::Done { res, flags }, Some(waker)) => {
                let key = self.ops.table.insert(Lifecycle::Waiting(waker));
                let held = self
                    .ops
                    .faults
                    .as_mut()
                    .is_some_and(|faults| faults.hold(key.user_data(), res, flags));
                if held {
                    self.ops.counters.faults += 1;
                    return Ok(Started::Pending(key));
                }
                self.ops.table.remove(key);
                Ok(Started::Done { res, flags })
            }
            (started, _) => Ok(started),
        }
    }

    /// Starts the op `sqe` describes with a timeout `after` from its submit,
    /// linked to it in the kernel (`IORING_OP_LINK_TIMEOUT`): no timer of
    /// the core's. Its slot is [`Lifecycle::Linked`], and takes both CQEs,
    /// in either order. `None` if this backend cannot link (epoll, or a
    /// kernel without the opcode): start the op unlinked and time it on the
    /// core's wheel instead.
    ///
    /// Under the fault layer, an op failed instead of run gets a plain slot
    /// (`Waiting`, completed at the next turn) and no timeout.
    pub(crate) fn start_linked(
        &mut self,
        #[allow(unused_mut)] mut sqe: squeue::Entry,
        after: Duration,
        waker: Option<Waker>,
    ) -> Option<io::Result<Key>> {
        let Backend::Uring(ring) = &mut self.backend else {
            return None;
        };
        #[cfg(feature = "faults")]
        if let Some(faults) = self.ops.faults.as_mut() {
            if let Some(errno) = faults.error(&sqe) {
                self.ops.counters.faults += 1;
                let key = self.ops.table.insert(Lifecycle::Waiting(waker));
                if let Some(faults) = self.ops.faults.as_mut() {
                    faults.fail(key.user_data(), errno);
                }
                return Some(Ok(key));
            }
            if faults.shorten(&mut sqe) {
                self.ops.counters.faults += 1;
            }
        }
        let linked = Linked::new(waker, after);
        let timespec: *const io_uring::types::Timespec = &linked.timespec;
        let key = self.ops.table.insert(Lifecycle::Linked(linked));
        match ring.push_linked(&mut self.ops, sqe.user_data(key.user_data()), timespec) {
            Ok(true) => Some(Ok(key)),
            Ok(false) => {
                self.ops.table.remove(key);
                None
            }
            Err(err) => {
                self.ops.table.remove(key);
                Some(Err(err))
            }
        }
    }

    /// Whether the fault layer holds completions back: the core must not
    /// park (nothing would wake it) nor jump a paused clock past them.
    pub(crate) fn holds_completions(&self) -> bool {
        #[cfg(feature = "faults")]
        if let Some(faults) = &self.ops.faults {
            return faults.holds();
        }
        false
    }

    /// Turns fault injection on for this driver.
    #[cfg(feature = "faults")]
    pub(crate) fn set_faults(&mut self, faults: fault::Faults) {
        self.ops.faults = Some(Box::new(faults));
    }

    /// Starts an op whose opcode the epoll backend cannot run, as the blocking
    /// call `job` its [`OpCode::fallback`] gave. `Unsupported` on io_uring,
    /// which runs every opcode it probed itself.
    pub(crate) fn start_fallback(
        &mut self,
        state: Lifecycle,
        job: Fallback,
    ) -> io::Result<Started> {
        match &mut self.backend {
            Backend::Epoll(poller) => Ok(poller.start_job(&mut self.ops, state, job)),
            Backend::Uring(_) => Err(io::Error::from(io::ErrorKind::Unsupported)),
        }
    }

    /// Submits what is queued now, without waiting. A failure leaves the
    /// entries queued: the next turn submits them and reports what went wrong.
    pub(crate) fn submit_now(&mut self) {
        if let Backend::Uring(ring) = &mut self.backend {
            ring.submit_now(&mut self.ops);
        }
    }

    /// Asks the backend to cancel the op in `key`'s slot. Best effort: the slot
    /// stays until its last completion arrives either way.
    pub(crate) fn cancel(&mut self, key: Key) {
        match &mut self.backend {
            Backend::Uring(ring) => ring.cancel(&mut self.ops, key),
            Backend::Epoll(poller) => poller.cancel(key),
        }
    }

    /// Submits everything queued, waits as `wait` says, and collects all
    /// completions into `ops.woken` and `ops.orphans`.
    pub(crate) fn turn(&mut self, wait: Wait) -> io::Result<()> {
        #[cfg(feature = "faults")]
        let wait = if self.holds_completions() {
            Wait::No
        } else {
            wait
        };
        let turned = match &mut self.backend {
            Backend::Uring(ring) => ring.turn(&mut self.ops, wait),
            Backend::Epoll(poller) => poller.turn(&mut self.ops, wait),
        };
        #[cfg(feature = "faults")]
        self.release_faults(false);
        turned
    }

    /// Delivers the completions the fault layer held that are due (all of
    /// them, and no more faults from here on, if `all`).
    #[cfg(feature = "faults")]
    fn release_faults(&mut self, all: bool) {
        let Some(faults) = self.ops.faults.as_mut() else {
            return;
        };
        let mut due = Vec::new();
        if all {
            faults.release_all(&mut due);
            self.ops.faults = None;
        } else {
            faults.due(&mut due);
        }
        for (user_data, res, flags) in due {
            self.ops.deliver(user_data, res, flags);
        }
    }

    /// Cancels everything in flight and waits for the kernel (or the blocking
    /// pool) to let go of it, for at most [`DRAIN_LIMIT`]. False if it did not.
    fn drain(&mut self) -> bool {
        #[cfg(feature = "faults")]
        self.release_faults(true);
        match &mut self.backend {
            Backend::Uring(ring) => ring.drain(&mut self.ops),
            Backend::Epoll(poller) => poller.drain(&mut self.ops),
        }
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        self.ops.woken.clear();
        if !self.drain() {
            // The kernel may still write into orphaned buffers: leak them, and
            // record that `Op`s dropped later must leak too.
            std::mem::forget(std::mem::take(&mut self.ops.table));
            if let Backend::Uring(ring) = &mut self.backend {
                ring.leak();
            }
            opcode::mark_leaked();
        }
    }
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.backend {
            Backend::Uring(ring) => Some(ring.mode()),
            Backend::Epoll(_) => None,
        };
        f.debug_struct("Io")
            .field("driver", &self.kind())
            .field("task_run", &mode)
            .field("in_flight", &self.ops.table.len())
            .finish_non_exhaustive()
    }
}

/// Registers buffers and files with a core's backend: the io_uring tables,
/// or their user-space stand-ins on the readiness backend (buffers need no
/// registration there; files are kept as duplicates of their fds).
pub(crate) enum Registrar<'a> {
    Uring(io_uring::Submitter<'a>),
    Epoll(&'a mut epoll::Poller),
}

impl Registrar<'_> {
    /// Whether registering memory pins it for fixed reads and writes (io_uring),
    /// rather than being a formality (epoll).
    pub(crate) fn pins_memory(&self) -> bool {
        matches!(self, Registrar::Uring(_))
    }

    /// `IORING_REGISTER_BUFFERS2` of `slots` empty slots.
    pub(crate) fn register_buffers_sparse(&mut self, slots: u32) -> io::Result<()> {
        match self {
            Registrar::Uring(submitter) => submitter.register_buffers_sparse(slots),
            Registrar::Epoll(_) => Ok(()),
        }
    }

    /// `IORING_REGISTER_BUFFERS_UPDATE` of the slots from `first`.
    ///
    /// # Safety
    ///
    /// The memory `iovecs` name stays valid while it is registered.
    pub(crate) unsafe fn register_buffers_update(
        &mut self,
        first: u32,
        iovecs: &[libc::iovec],
    ) -> io::Result<()> {
        match self {
            Registrar::Uring(submitter) => {
                // SAFETY: forwarded from the caller.
                unsafe { submitter.register_buffers_update(first, iovecs, None) }.map(drop)
            }
            Registrar::Epoll(_) => Ok(()),
        }
    }

    /// `IORING_REGISTER_FILES2` of `slots` empty slots.
    pub(crate) fn register_files_sparse(&mut self, slots: u32) -> io::Result<()> {
        match self {
            Registrar::Uring(submitter) => submitter.register_files_sparse(slots),
            Registrar::Epoll(poller) => {
                poller.files_sparse(slots);
                Ok(())
            }
        }
    }

    /// Puts `fd` in slot `index` (`-1` empties it).
    pub(crate) fn register_files_update(&mut self, index: u32, fd: RawFd) -> io::Result<()> {
        match self {
            Registrar::Uring(submitter) => submitter.register_files_update(index, &[fd]).map(drop),
            Registrar::Epoll(poller) => poller.files_update(index, fd),
        }
    }

    /// Registers a provided-buffer ring of `entries` entries at `ring` as
    /// buffer group `group`.
    ///
    /// # Safety
    ///
    /// `ring` is page aligned, `entries` entries long, and stays allocated and
    /// its buffers valid until [`unregister_buf_ring`](Self::unregister_buf_ring).
    pub(crate) unsafe fn register_buf_ring(
        &mut self,
        ring: *mut u8,
        entries: u16,
        group: u16,
    ) -> io::Result<()> {
        match self {
            // SAFETY: forwarded from the caller.
            Registrar::Uring(submitter) => unsafe {
                submitter.register_buf_ring_with_flags(ring as u64, entries, group, 0)
            },
            // SAFETY: forwarded from the caller.
            Registrar::Epoll(poller) => unsafe { poller.register_buf_ring(ring, entries, group) },
        }
    }

    /// Unregisters buffer group `group`.
    pub(crate) fn unregister_buf_ring(&mut self, group: u16) -> io::Result<()> {
        match self {
            Registrar::Uring(submitter) => submitter.unregister_buf_ring(group),
            Registrar::Epoll(poller) => {
                poller.unregister_buf_ring(group);
                Ok(())
            }
        }
    }
}
