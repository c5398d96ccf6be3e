//! A try of an op that waits for its fd to be ready: the call made again,
//! and the completions it posts (a multishot op may post several per try).
//!
//! The try reads the op's SQE where it waits, in the poller's table of
//! waiters, and borrows only the other tables it touches ([`Trying`]): the
//! fd states (what each socket last showed ready), the provided-buffer rings
//! and the queue of completions.

use std::os::fd::RawFd;

use io_uring::opcode as op;

use super::fds::{Fds, Waiter};
use super::provided::Provided;
use super::{emulate, ACCEPT_MULTISHOT, BUFFER_SELECT, BURST, F_BUFFER, F_MORE, F_NOTIF};
use super::{IN, POLL_ADD_MULTI, RECV_MULTISHOT, SKIP_SUCCESS};
use crate::driver::sqe::RawSqe;

/// What a try of a waiting op came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Not ready: wait on.
    Again,
    /// Finished (its last completion is posted).
    Done,
    /// A multishot op delivered its burst and more may be ready: try it again
    /// at the next turn, after the other work on the core.
    More,
}

/// Queues a completion for the next turn (unless `CQE_SKIP_SUCCESS` hides it).
#[inline]
pub(super) fn post(
    ready: &mut Vec<(u64, i32, u32)>,
    user_data: u64,
    sqe_flags: u8,
    res: i32,
    flags: u32,
) {
    if sqe_flags & SKIP_SUCCESS != 0 && res >= 0 {
        return;
    }
    ready.push((user_data, res, flags));
}

/// The poller's tables a try touches besides the waiter itself.
pub(super) struct Trying<'a> {
    pub(super) fds: &'a mut Fds,
    pub(super) rings: &'a mut [(u16, Provided)],
    pub(super) ready: &'a mut Vec<(u64, i32, u32)>,
}

impl Trying<'_> {
    fn post(&mut self, sqe: &RawSqe, res: i32, flags: u32) {
        post(self.ready, sqe.user_data, sqe.flags, res, flags);
    }

    /// Tries `waiter`'s op again; posts what it produced.
    pub(super) fn run(&mut self, waiter: &mut Waiter) -> Outcome {
        let (sqe, fd, events) = (&waiter.sqe, waiter.fd, waiter.events);
        if waiter.connecting {
            let res = emulate::connect_result(fd);
            self.post(sqe, res, 0);
            return Outcome::Done;
        }
        if sqe.opcode == op::Recv::CODE && sqe.flags & BUFFER_SELECT != 0 {
            return self.recv_from_ring(waiter);
        }
        let multishot = match sqe.opcode {
            op::Accept::CODE => sqe.ioprio & ACCEPT_MULTISHOT != 0,
            op::Recv::CODE => sqe.ioprio & RECV_MULTISHOT != 0,
            op::PollAdd::CODE => sqe.len & POLL_ADD_MULTI != 0,
            _ => false,
        };
        let more = if multishot { F_MORE } else { 0 };
        let send = matches!(sqe.opcode, op::Send::CODE | op::SendZc::CODE);
        if sqe.opcode == op::SendZc::CODE && waiter.sent == 0 && !emulate::is_inet(fd) {
            self.post(sqe, -libc::EOPNOTSUPP, 0);
            return Outcome::Done;
        }
        for _ in 0..BURST {
            let (mut res, flags) = if sqe.flags & BUFFER_SELECT != 0 {
                match self.recv_selected(sqe, fd) {
                    Some(done) => done,
                    None => return Outcome::Again,
                }
            } else if send {
                let rest = (sqe.addr + u64::from(waiter.sent), sqe.len - waiter.sent);
                let res = emulate::attempt(sqe, fd, Some(rest));
                self.fds.note_result(fd, events, sqe.opcode, res, rest.1);
                (res, 0)
            } else {
                let res = if self.fds.may_be_ready(fd, events) {
                    emulate::attempt(sqe, fd, None)
                } else {
                    -libc::EAGAIN
                };
                self.fds.note_result(fd, events, sqe.opcode, res, sqe.len);
                (res, 0)
            };
            if send {
                match send_progress(&mut waiter.sent, fd, sqe, res) {
                    Some(total) => res = total,
                    None => continue,
                }
            }
            if res == -libc::EAGAIN {
                return Outcome::Again;
            }
            let last = !multishot || res < 0 || (res == 0 && sqe.opcode == op::Recv::CODE);
            if sqe.opcode == op::SendZc::CODE && res >= 0 {
                // The notification that the kernel let go of the buffer, at once:
                // a plain send copied it.
                self.post(sqe, res, F_MORE);
                self.post(sqe, 0, F_NOTIF);
                return Outcome::Done;
            }
            if last {
                self.post(sqe, res, flags);
                return Outcome::Done;
            }
            self.post(sqe, res, flags | more);
            if sqe.opcode == op::PollAdd::CODE || !self.fds.may_be_ready(fd, events) {
                // Drained (a short read): the next edge brings more.
                return Outcome::Again;
            }
        }
        Outcome::More
    }

    /// A `RECV` into buffers picked from its group's ring, as many as a burst
    /// takes if it is multishot: the hot path of a server's connections
    /// ([`run`](Self::run)'s loop, for this one case, with the ring and the
    /// socket's claim looked up once).
    fn recv_from_ring(&mut self, waiter: &Waiter) -> Outcome {
        let (sqe, fd, events) = (&waiter.sqe, waiter.fd, waiter.events);
        let multishot = sqe.ioprio & RECV_MULTISHOT != 0;
        let mut claim = self.fds.claim_mut(fd);
        let ring = self.rings.iter_mut().find(|(id, _)| *id == sqe.buf_index);
        let Some((_, ring)) = ring else {
            post(self.ready, sqe.user_data, sqe.flags, -libc::ENOBUFS, 0);
            return Outcome::Done;
        };
        for _ in 0..BURST {
            let Some((addr, len, bid)) = ring.peek() else {
                post(self.ready, sqe.user_data, sqe.flags, -libc::ENOBUFS, 0);
                return Outcome::Done;
            };
            let len = if sqe.len == 0 { len } else { len.min(sqe.len) };
            let res = match &claim {
                Some(claim) if !claim.may_be_ready(IN) => -libc::EAGAIN,
                // SAFETY: the buffer lies in the registered ring, which stays
                // allocated while registered; the ring's owner gave it up to
                // the kernel (and so to this backend) until it is picked and
                // handed back through the completion.
                _ => unsafe { emulate::recv(fd, addr, len, sqe.op_flags) },
            };
            if res == -libc::EAGAIN || (res > 0 && (res as u32) < len) {
                // Drained (a short read too, by tokio's rule for epoll).
                if let Some(claim) = &mut claim {
                    claim.ready &= !IN;
                }
            }
            if res == -libc::EAGAIN {
                // Nothing was written: the buffer stays for the next receive.
                return Outcome::Again;
            }
            if res <= 0 {
                // An error, or the end of the stream: the op's last completion.
                post(self.ready, sqe.user_data, sqe.flags, res, 0);
                return Outcome::Done;
            }
            ring.take();
            let flags = F_BUFFER | (u32::from(bid) << 16);
            if !multishot {
                post(self.ready, sqe.user_data, sqe.flags, res, flags);
                return Outcome::Done;
            }
            post(self.ready, sqe.user_data, sqe.flags, res, flags | F_MORE);
            if claim
                .as_ref()
                .is_some_and(|claim| !claim.may_be_ready(events))
            {
                // Drained: the next edge brings more.
                return Outcome::Again;
            }
        }
        Outcome::More
    }

    /// A receive into a buffer picked from its group's ring: `None` if the
    /// socket had nothing (the buffer stays in the ring).
    fn recv_selected(&mut self, sqe: &RawSqe, fd: RawFd) -> Option<(i32, u32)> {
        let Some((_, ring)) = self.rings.iter_mut().find(|(id, _)| *id == sqe.buf_index) else {
            return Some((-libc::ENOBUFS, 0));
        };
        let Some((addr, len, bid)) = ring.peek() else {
            return Some((-libc::ENOBUFS, 0));
        };
        let len = if sqe.len == 0 { len } else { len.min(sqe.len) };
        let res = if self.fds.may_be_ready(fd, IN) {
            emulate::attempt(sqe, fd, Some((addr, len)))
        } else {
            -libc::EAGAIN
        };
        self.fds.note_result(fd, IN, sqe.opcode, res, len);
        if res <= 0 {
            // Nothing was written: the buffer stays for the next receive.
            return (res != -libc::EAGAIN).then_some((res, 0));
        }
        ring.take();
        Some((res, F_BUFFER | (u32::from(bid) << 16)))
    }
}

/// Accounts a stream send's try, `sent` bytes having gone out before it:
/// `None` if part went out and the rest is to be tried; else the op's result
/// (every byte out, or the bytes out before an error, or the error).
pub(super) fn send_progress(sent: &mut u32, fd: RawFd, sqe: &RawSqe, res: i32) -> Option<i32> {
    if res == -libc::EAGAIN {
        return Some(res);
    }
    if res < 0 {
        return Some(if *sent > 0 { *sent as i32 } else { res });
    }
    let total = *sent + res as u32;
    if res > 0 && total < sqe.len && emulate::is_stream(fd) {
        *sent = total;
        return None;
    }
    Some(total as i32)
}

impl Fds {
    /// Whether `fd` may be ready for `events`: always, unless it is a claimed
    /// socket last found drained in that direction.
    #[inline]
    pub(super) fn may_be_ready(&self, fd: RawFd, events: u32) -> bool {
        self.claim(fd)
            .is_none_or(|claim| claim.may_be_ready(events))
    }

    /// Learns from a call's result on a claimed socket: `EAGAIN`, a partial
    /// send, or a receive shorter than the `asked` bytes leaves it drained in
    /// that direction (tokio's rule for epoll: a short read emptied the queue).
    #[inline]
    pub(super) fn note_result(&mut self, fd: RawFd, events: u32, opcode: u8, res: i32, asked: u32) {
        let flat = matches!(opcode, op::Recv::CODE | op::Read::CODE | op::Send::CODE);
        let short = flat && res > 0 && (res as u32) < asked;
        if res != -libc::EAGAIN && !short {
            return; // the common case, with no lookup
        }
        if let Some(claim) = self.claim_mut(fd) {
            claim.ready &= !events;
        }
    }
}
