//! The part of a core other threads may touch: its inbox (`inbox.rs`, where the
//! no-lost-wakeup protocol lives), its wake eventfd, and a duplicate of its ring
//! fd for peers' `MSG_RING`s.
//!
//! Lifetime: tasks point at their core's `Shared` without owning it. The core
//! frees it only if no task is left (else it leaks it on purpose), and a sender
//! touches it only while it holds a reference to a live task or an `Arc` — plus
//! the rest of `push`, which the core's `close` waits for before it may free it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::{fmt, io};

use super::inbox::Inbox;

use crate::task::raw::{Notified, TaskRef};
use crate::time::Holds;

/// Work that reaches a core from elsewhere.
pub(crate) enum Remote {
    /// A task woken on another thread.
    Task(Notified),
    /// A task's last waker was dropped on another thread: release its reference here.
    Release(TaskRef),
    /// A closure to run on the core (it usually spawns a task).
    Job(Box<dyn FnOnce() + Send>),
    /// Stop the core's loop once its current work is dropped.
    Shutdown,
}

pub(crate) struct Shared {
    pub(crate) id: usize,
    inbox: Inbox<Remote>,
    /// Owned here, not by the driver, so a waker that outlives the core never
    /// writes to a closed (and maybe reused) fd number.
    eventfd: OwnedFd,
    /// A duplicate of the core's ring fd, for peers' `MSG_RING`s: open as long
    /// as this `Shared`, so a message never targets a closed or reused number.
    ring_fd: Option<OwnedFd>,
    /// Blocking jobs started on the core and not yet returned: its paused
    /// clock waits for them.
    pub(crate) holds: Holds,
    /// The core's counters as it last published them, for `Runtime::stats`.
    pub(crate) stats: crate::stats::Slot,
}

impl Shared {
    pub(crate) fn new(id: usize) -> io::Result<Shared> {
        // SAFETY: eventfd has no memory preconditions; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                err.kind(),
                format!("eventfd for core wakeups: {err}"),
            ));
        }
        Ok(Shared {
            id,
            inbox: Inbox::new(),
            // SAFETY: `fd` was just returned by eventfd and nothing else owns it.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
            ring_fd: None,
            holds: Holds::default(),
            stats: crate::stats::Slot::new(id),
        })
    }

    pub(crate) fn eventfd(&self) -> i32 {
        self.eventfd.as_raw_fd()
    }

    pub(crate) fn set_ring_fd(&mut self, fd: OwnedFd) {
        self.ring_fd = Some(fd);
    }

    pub(crate) fn ring_fd(&self) -> Option<i32> {
        self.ring_fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Queues `item` for the core and, if it is parked, wakes it (see
    /// [`executor::ring`](super::ring)).
    ///
    /// # Errors
    ///
    /// Gives `item` back if the core has shut down.
    pub(crate) fn push(&self, item: Remote) -> Result<(), Remote> {
        self.inbox.push(item, || super::ring(self))
    }

    /// Writes the core's eventfd, which it keeps a read posted on while parked.
    pub(crate) fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an fd this struct owns. EAGAIN
        // (counter saturated) still leaves the core woken, so the result is ignored.
        unsafe { libc::write(self.eventfd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    pub(crate) fn has_remote(&self) -> bool {
        self.inbox.has_items()
    }

    /// Takes everything queued.
    pub(crate) fn take(&self, into: &mut Vec<Remote>) {
        self.inbox.take(into);
    }

    /// Refuses everything from now on and returns what was still queued.
    pub(crate) fn close(&self) -> Vec<Remote> {
        self.inbox.close()
    }

    /// Announces that the core is about to block; false if work arrived meanwhile.
    pub(crate) fn park(&self) -> bool {
        self.inbox.park()
    }

    pub(crate) fn unpark(&self) {
        self.inbox.unpark();
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("core", &self.id)
            .finish_non_exhaustive()
    }
}
