//! The poller's tables, indexed rather than hashed: what it knows of each fd
//! (by fd number) and the ops waiting for readiness (by op-table slot).
//!
//! Both keys are small integers the process hands out densely (the kernel
//! gives the lowest free fd number; the op table reuses freed slots first),
//! so a vector indexed by them costs one bounds check per lookup, where a
//! hash map cost a hash and a probe, several times per readiness event.

use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;

use crate::driver::sqe::RawSqe;

/// What the poller knows of a socket percore-net owns.
#[derive(Clone, Copy, Debug)]
pub(super) struct Claim {
    /// Registered (edge-triggered, both directions, for good).
    pub(super) registered: bool,
    /// Directions (`EPOLLIN`, `EPOLLOUT`) that may be ready: set by an edge,
    /// cleared when a call finds the socket drained (`EAGAIN`, or a read
    /// shorter than asked). A direction not ready is waited for without a try:
    /// its next edge is sure to come, the registration being edge-triggered.
    pub(super) ready: u32,
    /// Directions the peer or an error closed (`EPOLLRDHUP`, `EPOLLHUP`,
    /// `EPOLLERR` seen): ready for good, as no edge follows a hang-up that
    /// arrived with the last data a short read took.
    pub(super) closed: u32,
    /// `O_NONBLOCK` set (for accept and connect).
    pub(super) nonblocking: bool,
}

impl Claim {
    /// Whether a call in direction `events` may find the socket ready: always
    /// until it is registered (no edge has been promised yet).
    pub(super) fn may_be_ready(&self, events: u32) -> bool {
        !self.registered || (self.ready | self.closed) & events != 0
    }

    pub(super) fn new() -> Claim {
        Claim {
            registered: false,
            ready: (libc::EPOLLIN | libc::EPOLLOUT) as u32,
            closed: 0,
            nonblocking: false,
        }
    }

    /// Learns from an epoll event on the socket.
    pub(super) fn saw(&mut self, revents: u32) {
        self.closed |= closing(revents);
        self.ready |= revents & (libc::EPOLLIN | libc::EPOLLOUT) as u32;
    }
}

/// The directions an epoll event closes: an error or hang-up, both; the
/// peer's shutdown, reads.
fn closing(revents: u32) -> u32 {
    let mut closed = 0;
    if revents & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
        closed |= (libc::EPOLLIN | libc::EPOLLOUT) as u32;
    }
    if revents & libc::EPOLLRDHUP as u32 != 0 {
        closed |= libc::EPOLLIN as u32;
    }
    closed
}

/// What the poller knows of one fd number.
#[derive(Default)]
pub(super) struct FdState {
    /// The ops waiting on it (`user_data`), oldest first. Kept allocated when
    /// it empties: the next op on the fd reuses it.
    pub(super) ops: Vec<u64>,
    /// What its one-shot registration is armed for (an unclaimed fd); 0 when
    /// no op waits, so the next one re-registers it (`arm`), never trusting a
    /// registration the number may have lost (closed and reused meanwhile).
    pub(super) armed: u32,
    /// Set while percore-net owns the socket (`claim_fd` to `release_fd`).
    pub(super) claim: Option<Claim>,
}

/// Per fd number, what the poller knows of it.
#[derive(Default)]
pub(super) struct Fds {
    states: Vec<FdState>,
}

impl Fds {
    /// The state of `fd`, if it ever had one.
    #[inline]
    pub(super) fn get(&self, fd: RawFd) -> Option<&FdState> {
        self.states.get(usize::try_from(fd).ok()?)
    }

    /// The state of `fd`, if it ever had one.
    #[inline]
    pub(super) fn get_mut(&mut self, fd: RawFd) -> Option<&mut FdState> {
        self.states.get_mut(usize::try_from(fd).ok()?)
    }

    /// The state of `fd`, made (empty) if it had none; `None` only for a
    /// negative fd.
    pub(super) fn entry(&mut self, fd: RawFd) -> Option<&mut FdState> {
        let index = usize::try_from(fd).ok()?;
        if index >= self.states.len() {
            self.states.resize_with(index + 1, FdState::default);
        }
        self.states.get_mut(index)
    }

    /// The claim on `fd`, if percore-net owns it.
    #[inline]
    pub(super) fn claim(&self, fd: RawFd) -> Option<&Claim> {
        self.get(fd)?.claim.as_ref()
    }

    /// The claim on `fd`, if percore-net owns it.
    #[inline]
    pub(super) fn claim_mut(&mut self, fd: RawFd) -> Option<&mut Claim> {
        self.get_mut(fd)?.claim.as_mut()
    }
}

/// An op that waits for its fd to be ready.
pub(super) struct Waiter {
    /// Its SQE, `user_data` set to its slot's.
    pub(super) sqe: RawSqe,
    pub(super) fd: RawFd,
    pub(super) events: u32,
    /// A non-blocking connect is under way: its result is `SO_ERROR`.
    pub(super) connecting: bool,
    /// Bytes of a stream send already out: io_uring completes a send on a
    /// stream socket only once every byte is, and so does this backend.
    pub(super) sent: u32,
    /// A fixed file the op names, kept open while it waits.
    pub(super) _file: Option<Arc<OwnedFd>>,
}

/// The ops waiting for readiness, by the index of their op-table slot (the
/// low half of `user_data`); the generation in the high half is checked, so a
/// late `user_data` of a reused slot finds nothing.
#[derive(Default)]
pub(super) struct Waiters {
    slots: Vec<Option<Waiter>>,
    len: usize,
}

/// The slot index in a `user_data` (`generation << 32 | index`).
#[inline]
fn index(user_data: u64) -> usize {
    user_data as u32 as usize
}

impl Waiters {
    /// How many ops wait.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub(super) fn get(&self, user_data: u64) -> Option<&Waiter> {
        match self.slots.get(index(user_data)) {
            Some(Some(waiter)) if waiter.sqe.user_data == user_data => Some(waiter),
            _ => None,
        }
    }

    #[inline]
    pub(super) fn get_mut(&mut self, user_data: u64) -> Option<&mut Waiter> {
        match self.slots.get_mut(index(user_data)) {
            Some(Some(waiter)) if waiter.sqe.user_data == user_data => Some(waiter),
            _ => None,
        }
    }

    /// Adds `waiter`, under its SQE's `user_data`. A slot is in the op table
    /// once, so it never holds two waiters.
    pub(super) fn insert(&mut self, waiter: Waiter) {
        let at = index(waiter.sqe.user_data);
        if at >= self.slots.len() {
            self.slots.resize_with(at + 1, || None);
        }
        let old = self.slots[at].replace(waiter);
        debug_assert!(old.is_none(), "an op-table slot waits once");
        if old.is_none() {
            self.len += 1;
        }
    }

    pub(super) fn remove(&mut self, user_data: u64) -> Option<Waiter> {
        let slot = self.slots.get_mut(index(user_data))?;
        if slot
            .as_ref()
            .is_some_and(|waiter| waiter.sqe.user_data == user_data)
        {
            self.len -= 1;
            return slot.take();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(user_data: u64) -> Waiter {
        let mut sqe = RawSqe::of(&io_uring::opcode::Nop::new().build());
        sqe.user_data = user_data;
        Waiter {
            sqe,
            fd: 3,
            events: 0,
            connecting: false,
            sent: 0,
            _file: None,
        }
    }

    #[test]
    fn a_stale_generation_finds_no_waiter() {
        let mut waiters = Waiters::default();
        let current = (7 << 32) | 5;
        let stale = (6 << 32) | 5;
        waiters.insert(waiter(current));
        assert!(waiters.get(current).is_some());
        assert!(waiters.get(stale).is_none());
        assert!(
            waiters.remove(stale).is_none(),
            "a stale key removes nothing"
        );
        assert!(!waiters.is_empty());
        assert_eq!(
            waiters.remove(current).map(|w| w.sqe.user_data),
            Some(current)
        );
        assert!(waiters.is_empty());
        assert!(waiters.get((7 << 32) | 900).is_none(), "past the end");
    }

    #[test]
    fn fd_states_grow_on_demand_and_refuse_negative_fds() {
        let mut fds = Fds::default();
        assert!(fds.get(10).is_none());
        assert!(fds.entry(-1).is_none());
        fds.entry(10).expect("a non-negative fd").claim = Some(Claim::new());
        assert!(fds.claim(10).is_some());
        assert!(fds.claim(9).is_none(), "numbers below exist, unclaimed");
        assert!(fds.get(-1).is_none());
    }

    #[test]
    fn a_claim_learns_edges_and_hang_ups() {
        let (inn, out) = (libc::EPOLLIN as u32, libc::EPOLLOUT as u32);
        let mut claim = Claim::new();
        claim.registered = true;
        claim.ready = 0;
        assert!(!claim.may_be_ready(inn));
        claim.saw(inn);
        assert!(claim.may_be_ready(inn) && !claim.may_be_ready(out));
        claim.ready = 0;
        claim.saw(libc::EPOLLRDHUP as u32);
        assert!(claim.may_be_ready(inn), "a shut read side stays ready");
        claim.saw(libc::EPOLLHUP as u32);
        assert!(claim.may_be_ready(out), "a hang-up makes both ready");
    }
}
