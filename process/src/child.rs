//! [`Child`]: a running process, its pipes, and its exit through a pidfd.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{ExitStatus, Output};
use std::rc::Rc;

use percore_runtime::op::PollAdd;
use percore_runtime::Op;

use crate::pipe::{ChildStderr, ChildStdin, ChildStdout};
use crate::{reaper, sys};

thread_local! {
    /// Cleared if this thread's ring refused `IORING_OP_WAITID` on a pidfd:
    /// waits then poll the pidfd instead.
    static WAITID_WORKS: Cell<bool> = const { Cell::new(true) };
}

/// A child process spawned by [`Command::spawn`](crate::Command::spawn).
///
/// Its exit is observed through a pidfd: `IORING_OP_WAITID` where the ring
/// has it (Linux 6.7+), else the pidfd polled for readability (either
/// backend), then one `waitid(P_PIDFD, WNOHANG)` reaps it.
///
/// A child is never left a zombie: dropped before its exit was seen, it is
/// reaped when it exits by a reaper thread (see the crate docs), and with
/// [`kill_on_drop`](crate::Command::kill_on_drop) it is sent `SIGKILL` first.
/// Without that, dropping a `Child` does not stop the process.
///
/// The pipe fields are the ends this process holds, if the
/// [`Command`](crate::Command) asked for pipes ([`Stdio::piped`](crate::Stdio::piped));
/// take them out (`child.stdout.take()`) to use them while waiting.
pub struct Child {
    pid: u32,
    pidfd: Rc<OwnedFd>,
    status: Option<ExitStatus>,
    kill_on_drop: bool,
    /// The write end of the child's stdin, if piped.
    pub stdin: Option<ChildStdin>,
    /// The read end of the child's stdout, if piped.
    pub stdout: Option<ChildStdout>,
    /// The read end of the child's stderr, if piped.
    pub stderr: Option<ChildStderr>,
}

impl Child {
    /// Takes over a child std just spawned.
    ///
    /// # Errors
    ///
    /// `pidfd_open(2)` failing (out of fds); the child is then killed and
    /// reaped before the error returns.
    pub(crate) fn from_std(
        mut child: std::process::Child,
        kill_on_drop: bool,
    ) -> io::Result<Child> {
        let pid = child.id();
        let pidfd = match sys::pidfd_open(pid) {
            Ok(pidfd) => pidfd,
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err);
            }
        };
        Ok(Child {
            pid,
            pidfd: Rc::new(pidfd),
            status: None,
            kill_on_drop,
            stdin: child.stdin.take().map(ChildStdin::from_std),
            stdout: child.stdout.take().map(ChildStdout::from_std),
            stderr: child.stderr.take().map(ChildStderr::from_std),
        })
    }

    /// The process id, or `None` once the child has been reaped (its pid may
    /// then belong to another process).
    pub fn id(&self) -> Option<u32> {
        self.status.is_none().then_some(self.pid)
    }

    /// Waits for the child to exit and reaps it, returning its status.
    ///
    /// Drops [`stdin`](Child::stdin) first, so a child that reads until end
    /// of file can finish. Once the status is known, every later call returns
    /// it at once.
    ///
    /// # Errors
    ///
    /// The raw OS error of the wait (`ECHILD` if something else reaped the
    /// child, e.g. a `waitpid(-1)` elsewhere in the process).
    ///
    /// # Panics
    ///
    /// Outside a percore runtime.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped wait reaps nothing, so a later `wait`,
    /// `try_wait` or the drop of the `Child` still sees the exit.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            self.exited().await?;
        }
    }

    /// Reaps the child if it has exited (one `waitid(WNOHANG)`): its status,
    /// or `None` while it runs. Never waits.
    ///
    /// # Errors
    ///
    /// The raw OS error of `waitid(2)`.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let status = sys::try_reap(self.pidfd.as_raw_fd())?;
        self.status = status;
        Ok(status)
    }

    /// Completes when the process has exited (or may have: the caller reaps
    /// with `try_wait`, which says for sure). Reaps nothing.
    async fn exited(&self) -> io::Result<()> {
        let waitid = WAITID_WORKS.with(Cell::get) && percore_runtime::is_supported(sys::WAITID);
        let res = if waitid {
            Op::new(sys::WaitExited::new(self.pidfd.clone())).await
        } else {
            let poll = PollAdd::new(self.pidfd.as_raw_fd(), libc::POLLIN as u32);
            Op::new(sys::Hold::new(poll, self.pidfd.clone()))
                .await
                .map(drop)
        };
        match res {
            Ok(()) => Ok(()),
            // Transient: the caller checks again and waits again.
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::EINTR | libc::EAGAIN | libc::ECANCELED)
                ) =>
            {
                Ok(())
            }
            // A ring without `waitid` on pidfds (or `WNOWAIT` there): poll from now on.
            Err(err) if waitid && err.raw_os_error() == Some(libc::EINVAL) => {
                WAITID_WORKS.with(|works| works.set(false));
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Sends `SIGKILL` to the child without waiting for it to exit; `wait`
    /// (or dropping the `Child`) then reaps it.
    ///
    /// Through the pidfd, so the signal cannot reach another process that
    /// reused the pid. `Ok` if the child has already exited (as std's `kill`).
    ///
    /// # Errors
    ///
    /// The raw OS error of `pidfd_send_signal(2)` (`EPERM`…).
    pub fn start_kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        match sys::pidfd_send_signal(&self.pidfd, libc::SIGKILL) {
            // Exited, not yet reaped.
            Err(err) if err.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            res => res,
        }
    }

    /// Sends `SIGKILL` to the child and waits until it has exited and been reaped.
    ///
    /// # Errors
    ///
    /// As [`start_kill`](Child::start_kill) and [`wait`](Child::wait).
    ///
    /// # Panics
    ///
    /// Outside a percore runtime.
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(drop)
    }

    /// Waits for the child to exit while reading all of its stdout and stderr
    /// (those that are piped; at the same time, so a child that fills one
    /// pipe while this reads the other cannot deadlock), and returns them
    /// with its status. Drops stdin first.
    ///
    /// # Errors
    ///
    /// The first error of the wait or the reads; the pipes are closed then,
    /// and the child dropped (reaped when it exits; killed first with
    /// [`kill_on_drop`](crate::Command::kill_on_drop)).
    ///
    /// # Panics
    ///
    /// Outside a percore runtime.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let stdout = self.stdout.take();
        let stderr = self.stderr.take();
        // Read both pipes and wait at the same time; the first error ends
        // all three (the pipes then close, so the child cannot block on them).
        let read_stdout = async {
            match &stdout {
                Some(pipe) => into_result(pipe.read_to_end(Vec::new()).await),
                None => Ok(Vec::new()),
            }
        };
        let read_stderr = async {
            match &stderr {
                Some(pipe) => into_result(pipe.read_to_end(Vec::new()).await),
                None => Ok(Vec::new()),
            }
        };
        let (stdout, stderr, status) =
            futures_util::future::try_join3(read_stdout, read_stderr, self.wait()).await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

/// A `read_to_end`'s result as one `Result`.
fn into_result((res, buf): (io::Result<usize>, Vec<u8>)) -> io::Result<Vec<u8>> {
    res.map(|_| buf)
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        if self.kill_on_drop {
            let _ = sys::pidfd_send_signal(&self.pidfd, libc::SIGKILL);
        }
        if !matches!(sys::try_reap(self.pidfd.as_raw_fd()), Ok(None)) {
            return; // reaped now, or by someone else already
        }
        // Still running (or dying of the SIGKILL): reap it when it exits.
        reaper::reap_later(&self.pidfd, self.pid);
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("status", &self.status)
            .field("kill_on_drop", &self.kill_on_drop)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}
