//! The system calls and io_uring operations this crate makes: the one module
//! with `unsafe`.
//!
//! Why it needs it: std has no stable pidfd API (`pidfd_open`,
//! `pidfd_send_signal`, `waitid(P_PIDFD)`), the reaper thread polls with
//! `poll(2)` and an `eventfd(2)`, and an io_uring operation is an
//! `unsafe impl OpCode` (it promises the pointers it gives the kernel stay valid).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::rc::Rc;

use percore_runtime::io_uring::{opcode, squeue};
use percore_runtime::{Fallback, OpCode};

/// A syscall's `-1`-or-value return as an `io::Result`.
fn cvt(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `pidfd_open(2)`: an fd that refers to process `pid` (close-on-exec, as
/// every pidfd is), valid even once it has exited, until it is reaped.
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: no pointers; the kernel checks `pid`.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) })?;
    // SAFETY: the kernel just made this fd, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(2)`: sends `signal` to the process of `pidfd`. A
/// process that has exited but is not reaped yet gives `ESRCH`.
pub(crate) fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> io::Result<()> {
    // SAFETY: a null `siginfo_t` is allowed (the kernel fills in a plain
    // `kill`'s); the fd is open while `pidfd` is borrowed.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// Reaps the process of `pidfd` if it has exited
/// (`waitid(P_PIDFD, WEXITED | WNOHANG)`): its status, or `None` while it runs.
/// `ECHILD` once it was reaped already.
pub(crate) fn try_reap(pidfd: RawFd) -> io::Result<Option<ExitStatus>> {
    waitid(libc::P_PIDFD, pidfd as libc::id_t, libc::WNOHANG)
}

/// Waits for process `pid`, a child of ours, to exit, and reaps it
/// (`waitid(P_PID, WEXITED)`, blocking).
pub(crate) fn reap_blocking(pid: u32) -> io::Result<Option<ExitStatus>> {
    waitid(libc::P_PID, pid as libc::id_t, 0)
}

fn waitid(idtype: libc::idtype_t, id: libc::id_t, flags: i32) -> io::Result<Option<ExitStatus>> {
    loop {
        // Zeroed, so `si_pid` stays 0 if no child was waitable (WNOHANG).
        let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: `info` is a writable `siginfo_t`.
        let rc = unsafe { libc::waitid(idtype, id, info.as_mut_ptr(), libc::WEXITED | flags) };
        match cvt(rc.into()) {
            Ok(_) => {
                // SAFETY: zeroed, then filled by the kernel: every byte is initialised.
                let info = unsafe { info.assume_init() };
                return Ok(exit_status(&info));
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// The exit status a `waitid(WEXITED)` reported in `info`; `None` if it
/// reported no child (`si_pid` 0).
fn exit_status(info: &libc::siginfo_t) -> Option<ExitStatus> {
    // SAFETY: `waitid` fills a `SIGCHLD`-style siginfo (or leaves it zeroed):
    // `si_pid` and `si_status` are the fields it sets.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return None;
    }
    // Back to the `wait(2)` encoding `ExitStatus::from_raw` takes.
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        // CLD_KILLED; no other code comes with WEXITED alone.
        _ => status & 0x7f,
    };
    Some(ExitStatus::from_raw(raw))
}

/// `eventfd(2)`, close-on-exec and non-blocking: the reaper thread's wake-up.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: no pointers.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }.into())?;
    // SAFETY: the kernel just made this fd, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Adds one to an eventfd's counter (wakes its poller).
pub(crate) fn eventfd_signal(fd: &OwnedFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: 8 readable bytes; an error (a full counter) still leaves it readable.
    unsafe { libc::write(fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
}

/// Resets an eventfd's counter.
pub(crate) fn eventfd_drain(fd: &OwnedFd) {
    let mut count = [0u8; 8];
    // SAFETY: 8 writable bytes; `EAGAIN` (already 0) is fine.
    unsafe { libc::read(fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
}

/// `poll(2)` for `POLLIN` on `fds` with no timeout: which of them are ready.
pub(crate) fn poll_readable(fds: &[RawFd]) -> io::Result<Vec<bool>> {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `pollfds` is a valid array of `len` entries.
        let rc = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, -1) };
        match cvt(rc.into()) {
            Ok(_) => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(pollfds.iter().map(|p| p.revents != 0).collect())
}

/// An op of the runtime ([`Read`](percore_runtime::op::Read),
/// [`Write`](percore_runtime::op::Write), [`PollAdd`](percore_runtime::op::PollAdd))
/// that also holds the fd it names, so the fd stays open — and its number
/// cannot be reused by another file — until the op's last completion, even
/// when its future and the pipe or child are dropped first.
#[derive(Debug)]
pub(crate) struct Hold<T> {
    op: T,
    _fd: Rc<OwnedFd>,
}

impl<T> Hold<T> {
    pub(crate) fn new(op: T, fd: Rc<OwnedFd>) -> Hold<T> {
        Hold { op, _fd: fd }
    }
}

// SAFETY: every call goes to `T`, whose own impl keeps the promises; the fd
// this adds is held, not pointed at.
unsafe impl<T: OpCode> OpCode for Hold<T> {
    type Output = T::Output;

    fn sqe(&mut self) -> squeue::Entry {
        self.op.sqe()
    }

    fn complete(self, res: io::Result<u32>, flags: u32) -> T::Output {
        self.op.complete(res, flags)
    }

    fn fallback(&mut self) -> Option<Fallback> {
        self.op.fallback()
    }

    fn completes_on_its_own(&self) -> bool {
        self.op.completes_on_its_own()
    }
}

/// `IORING_OP_WAITID` on a pidfd with `WEXITED | WNOWAIT`: completes once the
/// process has exited, *without* reaping it (the caller then reaps with
/// [`try_reap`]). So a wait dropped in flight never reaps a child whose
/// status nobody would read.
#[derive(Debug)]
pub(crate) struct WaitExited {
    pidfd: Rc<OwnedFd>,
    /// Where the kernel writes the child's siginfo (heap: it stays put when
    /// the op moves).
    info: Box<MaybeUninit<libc::siginfo_t>>,
}

impl WaitExited {
    pub(crate) fn new(pidfd: Rc<OwnedFd>) -> WaitExited {
        WaitExited {
            pidfd,
            info: Box::new(MaybeUninit::zeroed()),
        }
    }
}

// SAFETY: the entry points at `info`, a heap allocation `self` owns, which
// stays in place while `self` moves and is freed only with it.
unsafe impl OpCode for WaitExited {
    type Output = io::Result<()>;

    /// Waits for another process: a paused clock does not wait for it.
    fn completes_on_its_own(&self) -> bool {
        false
    }

    fn sqe(&mut self) -> squeue::Entry {
        opcode::WaitId::new(
            libc::P_PIDFD,
            self.pidfd.as_raw_fd() as libc::id_t,
            libc::WEXITED | libc::WNOWAIT,
        )
        .infop(self.info.as_mut_ptr().cast_const())
        .build()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// The opcode of [`WaitExited`], for `percore_runtime::is_supported`.
pub(crate) const WAITID: u8 = opcode::WaitId::CODE;
