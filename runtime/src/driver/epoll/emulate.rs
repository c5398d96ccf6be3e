//! How each io_uring opcode runs without io_uring: the system call it
//! stands for, made on the SQE's own fields.
//!
//! Every function returns what the CQE would carry: the result, or `-errno`.
//! The pointers the SQE holds are valid for the whole call: the `OpCode`
//! contract keeps the memory they name alive until the op's completion,
//! which is posted only after the call returns.

use std::ffi::c_void;
use std::io;
use std::os::fd::RawFd;

use io_uring::opcode as op;

use crate::driver::sqe::RawSqe;

/// `RWF_NOWAIT`: fail with `EAGAIN` instead of blocking (page-cache miss,
/// empty socket or pipe).
const RWF_NOWAIT: i32 = 0x8;
/// `IORING_FSYNC_DATASYNC`.
const FSYNC_DATASYNC: u32 = 1;

/// How an opcode runs on the readiness backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Plan {
    /// Never blocks: run at once (`NOP`, `CLOSE`, `SHUTDOWN`).
    Inline,
    /// A socket op: try it without blocking; if the socket is not ready,
    /// wait until epoll reports `events`, then try again.
    Ready { events: u32 },
    /// A read or write: try it with `RWF_NOWAIT`; if it would block, wait for
    /// `events` when the fd can be polled (socket, pipe), else run it on the
    /// blocking pool (a regular file whose data is not cached).
    ReadWrite { events: u32 },
    /// May block and has no non-blocking form: the blocking pool.
    Blocking,
    /// `TIMEOUT`: a deadline of the driver's own.
    Timeout,
    /// Not known to this backend.
    Unsupported,
}

const IN: u32 = libc::EPOLLIN as u32;
const OUT: u32 = libc::EPOLLOUT as u32;

/// How `opcode` runs here.
pub(super) fn plan(opcode: u8) -> Plan {
    match opcode {
        op::Nop::CODE | op::Close::CODE | op::Shutdown::CODE => Plan::Inline,
        op::Recv::CODE | op::RecvMsg::CODE | op::Accept::CODE => Plan::Ready { events: IN },
        op::Send::CODE | op::SendMsg::CODE | op::SendZc::CODE | op::Connect::CODE => {
            Plan::Ready { events: OUT }
        }
        op::PollAdd::CODE => Plan::Ready { events: 0 },
        op::Read::CODE | op::ReadFixed::CODE | op::Readv::CODE => Plan::ReadWrite { events: IN },
        op::Write::CODE | op::WriteFixed::CODE | op::Writev::CODE => {
            Plan::ReadWrite { events: OUT }
        }
        op::OpenAt::CODE
        | op::Statx::CODE
        | op::Fsync::CODE
        | op::Fallocate::CODE
        | op::Ftruncate::CODE
        | op::SyncFileRange::CODE
        | op::UnlinkAt::CODE
        | op::RenameAt::CODE
        | op::MkDirAt::CODE
        | op::SymlinkAt::CODE
        | op::LinkAt::CODE => Plan::Blocking,
        op::Timeout::CODE => Plan::Timeout,
        _ => Plan::Unsupported,
    }
}

/// The kernel's name for `opcode`, for errors.
pub(super) fn name(opcode: u8) -> String {
    let known = match opcode {
        op::MsgRingData::CODE => "IORING_OP_MSG_RING",
        op::AsyncCancel::CODE => "IORING_OP_ASYNC_CANCEL",
        op::LinkTimeout::CODE => "IORING_OP_LINK_TIMEOUT",
        op::Splice::CODE => "IORING_OP_SPLICE",
        op::Tee::CODE => "IORING_OP_TEE",
        op::ProvideBuffers::CODE => "IORING_OP_PROVIDE_BUFFERS",
        op::Fadvise::CODE => "IORING_OP_FADVISE",
        op::Madvise::CODE => "IORING_OP_MADVISE",
        op::OpenAt2::CODE => "IORING_OP_OPENAT2",
        op::EpollCtl::CODE => "IORING_OP_EPOLL_CTL",
        op::UringCmd16::CODE => "IORING_OP_URING_CMD",
        op::SendMsgZc::CODE => "IORING_OP_SENDMSG_ZC",
        _ => "",
    };
    if known.is_empty() {
        format!("io_uring opcode {opcode}")
    } else {
        known.to_string()
    }
}

/// The `-errno` of the last failed call.
fn errno() -> i32 {
    -io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A syscall's `-1`-or-value return as a CQE result.
fn res(rc: libc::c_long) -> i32 {
    if rc < 0 {
        errno()
    } else {
        rc.min(i32::MAX as libc::c_long) as i32
    }
}

/// The offset of a read or write: `u64::MAX` (`-1`) is the file position.
fn offset(sqe: &RawSqe) -> libc::off_t {
    sqe.off as libc::off_t
}

/// One non-blocking try of a `Ready` or `ReadWrite` op (or an `Inline` one)
/// on `fd`; `-EAGAIN` if it would block. `buf` replaces the SQE's buffer for
/// a receive that selects one from a buffer ring, and for the rest of a
/// send that went out in part.
pub(super) fn attempt(sqe: &RawSqe, fd: RawFd, buf: Option<(u64, u32)>) -> i32 {
    let dontwait = sqe.op_flags as i32 | libc::MSG_DONTWAIT;
    // SAFETY: (every call below) the pointers come from the SQE, whose op
    // keeps what they name alive until its completion (the `OpCode`
    // contract); the completion is posted only after this call returns.
    unsafe {
        match sqe.opcode {
            op::Nop::CODE => 0,
            op::Close::CODE => res(libc::close(fd) as libc::c_long),
            op::Shutdown::CODE => res(libc::shutdown(fd, sqe.len as i32) as libc::c_long),
            op::Recv::CODE => {
                let (addr, len) = buf.unwrap_or((sqe.addr, sqe.len));
                recv(fd, addr, len, sqe.op_flags)
            }
            op::Send::CODE | op::SendZc::CODE => {
                let (addr, len) = buf.unwrap_or((sqe.addr, sqe.len));
                send(fd, addr, len, sqe.op_flags)
            }
            op::RecvMsg::CODE => {
                res(libc::recvmsg(fd, sqe.addr as *mut libc::msghdr, dontwait) as libc::c_long)
            }
            op::SendMsg::CODE => {
                res(libc::sendmsg(fd, sqe.addr as *const libc::msghdr, dontwait) as libc::c_long)
            }
            op::Accept::CODE => res(libc::accept4(
                fd,
                sqe.addr as *mut libc::sockaddr,
                sqe.off as *mut libc::socklen_t,
                sqe.op_flags as i32,
            ) as libc::c_long),
            op::Connect::CODE => res(libc::connect(
                fd,
                sqe.addr as *const libc::sockaddr,
                sqe.off as libc::socklen_t,
            ) as libc::c_long),
            op::PollAdd::CODE => poll_now(fd, sqe.op_flags),
            _ => read_write(sqe, fd, RWF_NOWAIT),
        }
    }
}

/// `recv(2)` of up to `len` bytes into `addr` without blocking, `flags`
/// (`MSG_*`) besides `MSG_DONTWAIT`: the hot path of a socket's reads.
///
/// A raw `recvfrom` system call: libc's `recv` wraps its call in the
/// switches of asynchronous thread cancellation (`pthread_cancel`, which
/// Rust never uses), about 30 instructions a call where the rest of the
/// user-space path is a hundred.
///
/// # Safety
///
/// `addr` is valid for writes of `len` bytes for the call.
#[inline]
pub(super) unsafe fn recv(fd: RawFd, addr: u64, len: u32, flags: u32) -> i32 {
    // SAFETY: the caller's guarantee; null source address and length.
    res(unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd,
            addr as *mut c_void,
            len as usize,
            flags as i32 | libc::MSG_DONTWAIT,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        )
    })
}

/// `send(2)` of `len` bytes from `addr` without blocking (as [`recv`]: a raw
/// `sendto`).
///
/// # Safety
///
/// `addr` is valid for reads of `len` bytes for the call.
#[inline]
pub(super) unsafe fn send(fd: RawFd, addr: u64, len: u32, flags: u32) -> i32 {
    // SAFETY: the caller's guarantee; no destination address.
    res(unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            addr as *const c_void,
            len as usize,
            flags as i32 | libc::MSG_DONTWAIT,
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::socklen_t,
        )
    })
}

/// `poll(2)` without waiting: the ready events, or `-EAGAIN` if none.
fn poll_now(fd: RawFd, events: u32) -> i32 {
    let mut pfd = libc::pollfd {
        fd,
        events: events as i16,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout.
    let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
    match rc {
        0 => -libc::EAGAIN,
        rc if rc < 0 => errno(),
        _ => i32::from(pfd.revents as u16),
    }
}

/// A read or write (plain, fixed or vectored) with `preadv2`/`pwritev2`
/// `flags`.
///
/// # Safety
///
/// The SQE's buffer (or iovecs) must be valid for the call.
unsafe fn read_write(sqe: &RawSqe, fd: RawFd, flags: i32) -> i32 {
    let one = libc::iovec {
        iov_base: sqe.addr as *mut c_void,
        iov_len: sqe.len as usize,
    };
    let (iov, count) = match sqe.opcode {
        op::Readv::CODE | op::Writev::CODE => (sqe.addr as *const libc::iovec, sqe.len as i32),
        _ => (&one as *const libc::iovec, 1),
    };
    let write = matches!(
        sqe.opcode,
        op::Write::CODE | op::WriteFixed::CODE | op::Writev::CODE
    );
    let call = |off: libc::off_t| {
        // SAFETY: the caller's guarantee.
        let rc = unsafe {
            if write {
                libc::pwritev2(fd, iov, count, off, flags)
            } else {
                libc::preadv2(fd, iov, count, off, flags)
            }
        };
        res(rc as libc::c_long)
    };
    let rc = call(offset(sqe));
    // io_uring ignores the offset of a stream (pipe, socket); the syscall
    // refuses one.
    if rc == -libc::ESPIPE && offset(sqe) != -1 {
        return call(-1);
    }
    rc
}

/// The op, blocking until done: on a thread of the blocking pool, never on a
/// core.
pub(super) fn blocking(sqe: &RawSqe, fd: RawFd) -> i32 {
    let path = sqe.addr as *const libc::c_char;
    let path2 = sqe.off as *const libc::c_char;
    // SAFETY: (every call below) as in `attempt`; paths are the
    // NUL-terminated strings the op owns.
    unsafe {
        let rc = match sqe.opcode {
            op::OpenAt::CODE => {
                libc::openat(fd, path, sqe.op_flags as i32, sqe.len as libc::c_uint) as libc::c_long
            }
            op::Statx::CODE => libc::statx(
                fd,
                path,
                sqe.op_flags as i32,
                sqe.len,
                sqe.off as *mut libc::statx,
            ) as libc::c_long,
            op::Fsync::CODE if sqe.op_flags & FSYNC_DATASYNC != 0 => {
                libc::fdatasync(fd) as libc::c_long
            }
            op::Fsync::CODE => libc::fsync(fd) as libc::c_long,
            op::Fallocate::CODE => libc::fallocate(
                fd,
                sqe.len as i32,
                sqe.off as libc::off_t,
                sqe.addr as libc::off_t,
            ) as libc::c_long,
            op::Ftruncate::CODE => libc::ftruncate(fd, sqe.off as libc::off_t) as libc::c_long,
            op::SyncFileRange::CODE => libc::sync_file_range(
                fd,
                sqe.off as libc::off64_t,
                libc::off64_t::from(sqe.len),
                sqe.op_flags,
            ) as libc::c_long,
            op::UnlinkAt::CODE => libc::unlinkat(fd, path, sqe.op_flags as i32) as libc::c_long,
            op::RenameAt::CODE => {
                libc::renameat2(fd, path, sqe.len as i32, path2, sqe.op_flags) as libc::c_long
            }
            op::MkDirAt::CODE => libc::mkdirat(fd, path, sqe.len as libc::mode_t) as libc::c_long,
            op::SymlinkAt::CODE => libc::symlinkat(path, fd, path2) as libc::c_long,
            op::LinkAt::CODE => {
                libc::linkat(fd, path, sqe.len as i32, path2, sqe.op_flags as i32) as libc::c_long
            }
            _ => return read_write(sqe, fd, 0),
        };
        res(rc)
    }
}

/// `SO_ERROR` of a socket whose non-blocking connect finished: 0, or the
/// connect's `-errno`.
pub(super) fn connect_result(fd: RawFd) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for the kernel to write.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        errno()
    } else {
        -err
    }
}

/// Sets `O_NONBLOCK` on `fd` if it is not set (a listener accepts, a socket
/// connects, without blocking the core).
pub(super) fn set_nonblocking(fd: RawFd) -> i32 {
    // SAFETY: fcntl on an fd has no memory preconditions.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return errno();
    }
    if flags & libc::O_NONBLOCK != 0 {
        return 0;
    }
    // SAFETY: as above.
    res(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } as libc::c_long)
}

/// An `int` socket option of `fd`, or `None` if it cannot be read.
fn sockopt(fd: RawFd, name: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for the kernel to write.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// Whether `fd` is a stream socket, whose sends io_uring retries until every
/// byte is out (a datagram goes out whole or not at all).
pub(super) fn is_stream(fd: RawFd) -> bool {
    matches!(
        sockopt(fd, libc::SO_TYPE),
        Some(libc::SOCK_STREAM) | Some(libc::SOCK_SEQPACKET)
    )
}

/// Whether `fd` is an IP socket: the only kind `SEND_ZC` accepts.
pub(super) fn is_inet(fd: RawFd) -> bool {
    matches!(
        sockopt(fd, libc::SO_DOMAIN),
        Some(libc::AF_INET) | Some(libc::AF_INET6)
    )
}

/// Whether `fd` was opened with `O_DIRECT`.
pub(super) fn is_direct(fd: RawFd) -> bool {
    // SAFETY: fcntl on an fd has no memory preconditions.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags >= 0 && flags & libc::O_DIRECT != 0
}
