//! The part of a core other threads may touch: its remote queue and wake eventfd.
//!
//! A locked queue for now; the lock-free inbox replaces it (issue 3). The
//! `parked` flag and the queue are ordered through the mutex so no wake is lost:
//! the core sets `parked` *before* it looks at the queue under the lock, and a
//! sender reads `parked` after it pushed, under the same lock. Whichever lock
//! section comes second sees the other side's write.
//!
//! Lifetime: tasks point at their core's `Shared` without owning it. The core
//! frees it only if no task is left (else it leaks it on purpose), and a sender
//! touches it only while it holds a reference to a live task — plus the lock
//! section of `push`, which the core must enter after it to take the item.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::{fmt, io};

use crate::task::raw::{Notified, TaskRef};

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

struct Queue {
    items: Vec<Remote>,
    /// The core has shut down: nothing pushed now would ever be taken.
    closed: bool,
}

pub(crate) struct Shared {
    pub(crate) id: usize,
    queue: Mutex<Queue>,
    /// Set by senders after pushing; lets the core skip the lock when idle.
    has_remote: AtomicBool,
    /// The core is (about to be) blocked in `io_uring_enter`.
    parked: AtomicBool,
    /// Owned here, not by the driver, so a waker that outlives the core never
    /// writes to a closed (and maybe reused) fd number.
    eventfd: OwnedFd,
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
            queue: Mutex::new(Queue {
                items: Vec::new(),
                closed: false,
            }),
            has_remote: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            // SAFETY: `fd` was just returned by eventfd and nothing else owns it.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub(crate) fn eventfd(&self) -> i32 {
        self.eventfd.as_raw_fd()
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent (a
        // push or a take is one call), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` for the core and wakes it if parked.
    ///
    /// # Errors
    ///
    /// Gives `item` back if the core has shut down.
    pub(crate) fn push(&self, item: Remote) -> Result<(), Remote> {
        // Everything happens under the lock: once a task's last reference has
        // been handed over, its core may free the task — and then this `Shared`
        // — as soon as it has taken the item, so a sender must not touch `self`
        // after unlocking.
        let mut queue = self.queue();
        if queue.closed {
            return Err(item);
        }
        queue.items.push(item);
        self.has_remote.store(true, Ordering::Release);
        if self.parked.load(Ordering::SeqCst) {
            self.notify();
        }
        drop(queue);
        Ok(())
    }

    fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an fd this struct owns. EAGAIN
        // (counter saturated) still leaves the core woken, so the result is ignored.
        unsafe { libc::write(self.eventfd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    pub(crate) fn has_remote(&self) -> bool {
        self.has_remote.load(Ordering::Acquire)
    }

    /// Takes everything queued.
    pub(crate) fn take(&self, into: &mut Vec<Remote>) {
        self.has_remote.store(false, Ordering::Relaxed);
        into.append(&mut self.queue().items);
    }

    /// Refuses everything from now on and returns what was still queued.
    pub(crate) fn close(&self) -> Vec<Remote> {
        let mut queue = self.queue();
        queue.closed = true;
        std::mem::take(&mut queue.items)
    }

    /// Announces that the core is about to block; false if work arrived meanwhile
    /// (then the core must not block).
    pub(crate) fn park(&self) -> bool {
        self.parked.store(true, Ordering::SeqCst);
        let empty = self.queue().items.is_empty();
        if !empty {
            self.parked.store(false, Ordering::SeqCst);
        }
        empty
    }

    pub(crate) fn unpark(&self) {
        self.parked.store(false, Ordering::SeqCst);
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("core", &self.id)
            .finish_non_exhaustive()
    }
}
