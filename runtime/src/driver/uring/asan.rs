//! An AddressSanitizer-only check (`--cfg percore_asan`, set by `ci/asan.sh`):
//! the memory the kernel wrote for an op is still allocated when its CQE arrives.
//!
//! ASan sees only the accesses of instrumented user code, not the kernel's
//! writes through io_uring: a buffer freed while its read is in flight is
//! written by the kernel without a report. So when the driver pushes an SQE
//! whose op makes the kernel write user memory, it records where, keyed by the
//! SQE's `user_data`; when a CQE with that `user_data` arrives, before the op
//! table (and so the op, or its orphan) sees it, the first and the last byte of
//! what the kernel reports written are read back. If that memory was freed, the
//! read is a heap-use-after-free.
//!
//! That report alone may lack the stack of the free: ASan keeps a freed
//! chunk's free context in the chunk's first bytes, which the kernel's write
//! overwrites. So before every `io_uring_enter` the driver also sweeps the ops
//! in flight, reading the first and last byte of each whole range: in
//! `DEFER_TASKRUN` mode (percore's default) the kernel completes ops only inside
//! an enter, so memory freed since the last enter is reported there, before the
//! kernel can write it, with the stack that freed it (typically an `Op`'s drop).
//!
//! Checked: `READ`, `READ_FIXED`, `RECV` (`[addr, addr + res)` at the CQE,
//! `[addr, addr + len)` in the sweep), `READV` (the iovec array, then each
//! iovec's share of `res`, or each whole iovec), `RECVMSG` (the `msghdr`, which
//! the kernel writes back, the name's first byte, then the iovecs as for
//! `READV`), `STATX` (the whole `statx` buffer) and `ACCEPT` (the peer address
//! length and the address's first byte). At the CQE, only when `res >= 0`. Skipped: entries with
//! `IOSQE_BUFFER_SELECT` (multishot receives): the kernel writes a buffer of a
//! buffer ring, which the ring owns, not the op.

use std::collections::HashMap;
use std::mem::{size_of, MaybeUninit};
use std::ptr;

use io_uring::{cqueue, opcode, squeue};

use crate::driver::sqe::RawSqe;

/// What the kernel may write for one op.
#[derive(Clone, Copy)]
enum Target {
    /// `READ`, `READ_FIXED`, `RECV`: up to `len` bytes at `addr`; the CQE's
    /// `res` says how many.
    Flat { addr: *const u8, len: usize },
    /// `READV`: `count` iovecs at `iov`.
    Vectored {
        iov: *const libc::iovec,
        count: usize,
    },
    /// `RECVMSG`: the header (the kernel writes back `msg_namelen`,
    /// `msg_flags`, `msg_controllen`) and the iovecs it points at.
    Msg(*const libc::msghdr),
    /// `STATX`: the whole buffer, on success.
    Statx(*const libc::statx),
    /// `ACCEPT`: the peer address and its length, on success.
    Accept {
        addr: *const u8,
        len: *const libc::socklen_t,
    },
}

/// The recorded targets of the ops in flight, by `user_data`.
#[derive(Default)]
pub(super) struct Shadow {
    targets: HashMap<u64, Target>,
}

impl Shadow {
    /// Records what the kernel may write for `sqe`, just pushed.
    pub(super) fn record(&mut self, sqe: &squeue::Entry) {
        let raw = &RawSqe::of(sqe);
        if raw.flags & squeue::Flags::BUFFER_SELECT.bits() != 0 {
            return;
        }
        let target = match raw.opcode {
            opcode::Read::CODE | opcode::ReadFixed::CODE | opcode::Recv::CODE => Target::Flat {
                addr: raw.addr as *const u8,
                len: raw.len as usize,
            },
            opcode::Readv::CODE => Target::Vectored {
                iov: raw.addr as *const libc::iovec,
                count: raw.len as usize,
            },
            opcode::RecvMsg::CODE => Target::Msg(raw.addr as *const libc::msghdr),
            opcode::Statx::CODE => Target::Statx(raw.off as *const libc::statx),
            opcode::Accept::CODE => Target::Accept {
                addr: raw.addr as *const u8,
                len: raw.off as *const libc::socklen_t,
            },
            _ => return,
        };
        self.targets.insert(raw.user_data, target);
    }

    /// Reads back what the CQE says the kernel wrote; forgets the op at its
    /// last CQE (no `F_MORE`).
    pub(super) fn check(&mut self, user_data: u64, res: i32, flags: u32) {
        let target = if cqueue::more(flags) {
            self.targets.get(&user_data).copied()
        } else {
            self.targets.remove(&user_data)
        };
        let (Some(target), Ok(res)) = (target, usize::try_from(res)) else {
            return;
        };
        // SAFETY: `OpCode`'s contract keeps the memory an entry points at
        // allocated until the op's last CQE, which is being handled now, before
        // the op table hands the op back to anyone. If the contract was broken
        // and the memory freed, ASan's check before the load reports and aborts:
        // that is the bug this build exists to catch.
        unsafe { target.touch(Some(res)) };
    }

    /// Reads the first and last byte of every range the ops in flight may have
    /// written to; called right before each `io_uring_enter`.
    pub(super) fn sweep(&self) {
        for target in self.targets.values() {
            // SAFETY: as in `check`: every recorded op is in flight (its last
            // CQE has not arrived), so its memory must still be allocated.
            unsafe { target.touch(None) };
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.targets.len()
    }
}

impl Target {
    /// Reads the first and the last byte of what the kernel reported written
    /// (`written`: the CQE's `res`), or with `None` of all it may write.
    ///
    /// # Safety
    ///
    /// The memory the entry pointed at must still be allocated (which is what
    /// ASan checks).
    unsafe fn touch(self, written: Option<usize>) {
        // SAFETY: for each read, the caller vouches for the memory.
        unsafe {
            match self {
                Target::Flat { addr, len } => touch(addr, written.map_or(len, |n| n.min(len))),
                Target::Vectored { iov, count } => {
                    touch_iovecs(iov, count, written.unwrap_or(usize::MAX));
                }
                Target::Msg(msg) => {
                    touch(msg.cast(), size_of::<libc::msghdr>());
                    let header = ptr::read_volatile(msg);
                    if !header.msg_name.is_null() && header.msg_namelen > 0 {
                        touch(header.msg_name.cast(), 1);
                    }
                    let written = written.unwrap_or(usize::MAX);
                    touch_iovecs(header.msg_iov, header.msg_iovlen, written);
                }
                Target::Statx(buf) => touch(buf.cast(), size_of::<libc::statx>()),
                Target::Accept { addr, len } => {
                    if !len.is_null() {
                        touch(len.cast(), size_of::<libc::socklen_t>());
                        if !addr.is_null() && ptr::read_volatile(len) > 0 {
                            touch(addr, 1);
                        }
                    }
                }
            }
        }
    }
}

/// Reads the first and the last of `len` bytes at `addr`, as `MaybeUninit`
/// (the sweep reads spare capacity nothing has written yet). The kernel may be
/// writing them at the same time (an io-wq worker): a byte-sized volatile read,
/// whose value is discarded.
///
/// # Safety
///
/// `[addr, addr + len)` must be readable (which is what ASan checks).
unsafe fn touch(addr: *const u8, len: usize) {
    if len == 0 || addr.is_null() {
        return;
    }
    // SAFETY: in bounds of the range the caller vouches for.
    unsafe {
        ptr::read_volatile(addr.cast::<MaybeUninit<u8>>());
        ptr::read_volatile(addr.add(len - 1).cast::<MaybeUninit<u8>>());
    }
}

/// Reads each of the `count` iovecs at `iov` that `written` bytes reached, and
/// the first and last byte of its share (`usize::MAX`: of each whole iovec).
///
/// # Safety
///
/// The iovec array and the memory its entries point at must be readable.
unsafe fn touch_iovecs(iov: *const libc::iovec, count: usize, mut written: usize) {
    for i in 0..count {
        if written == 0 || iov.is_null() {
            return;
        }
        // SAFETY: `i < count`, inside the array the caller vouches for.
        let entry = unsafe { ptr::read_volatile(iov.add(i)) };
        let n = written.min(entry.iov_len);
        // SAFETY: the first `n <= iov_len` bytes of a buffer the caller vouches for.
        unsafe { touch(entry.iov_base.cast(), n) };
        written -= n;
    }
}
