//! [`Command`]: std's builder, tokio's async methods.

use std::ffi::OsStr;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};

use crate::Child;

/// A process to spawn: [`std::process::Command`]'s builder, with async
/// [`status`](Command::status), [`output`](Command::output) and a
/// [`Child`] whose pipes and exit are async on the core.
///
/// The builder methods are std's (and behave the same); spawning is std's
/// `spawn` (`posix_spawn` or `vfork`, close-on-exec pipes), so the child
/// inherits no fd of this process but its stdio: every fd percore opens is
/// close-on-exec.
///
/// # Examples
///
/// ```
/// use percore_process::Command;
///
/// percore_runtime::run(async {
///     let status = Command::new("sh").args(["-c", "exit 3"]).status().await?;
///     assert_eq!(status.code(), Some(3));
///     std::io::Result::Ok(())
/// })
/// .unwrap()
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct Command {
    std: std::process::Command,
    kill_on_drop: bool,
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
}

impl Command {
    /// A command for `program` (searched in `PATH` if it has no `/`), with
    /// no arguments, this process's environment and working directory, and
    /// stdio inherited by [`spawn`](Command::spawn) and
    /// [`status`](Command::status) (see [`output`](Command::output) for its own).
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds an argument.
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(&mut self, key: K, val: V) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (then only what
    /// [`env`](Command::env) adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// The child's stdin: [`Stdio::piped`] makes [`Child::stdin`] a
    /// [`ChildStdin`](crate::ChildStdin); also [`Stdio::null`],
    /// [`Stdio::inherit`], a file, or another child's pipe end
    /// (`Stdio::try_from(child_stdout)?`).
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.std.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// The child's stdout; [`Stdio::piped`] makes [`Child::stdout`] a
    /// [`ChildStdout`](crate::ChildStdout).
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.std.stdout(cfg);
        self.stdout_set = true;
        self
    }

    /// The child's stderr; [`Stdio::piped`] makes [`Child::stderr`] a
    /// [`ChildStderr`](crate::ChildStderr).
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.std.stderr(cfg);
        self.stderr_set = true;
        self
    }

    /// Whether dropping the [`Child`] (or a [`status`](Command::status) /
    /// [`output`](Command::output) future) before the child exited sends it
    /// `SIGKILL`. Off by default: the child runs on, and is reaped when it
    /// exits. Either way no zombie is left.
    pub fn kill_on_drop(&mut self, kill_on_drop: bool) -> &mut Command {
        self.kill_on_drop = kill_on_drop;
        self
    }

    /// Runs the child as user `id` (`setuid`; see std's `CommandExt::uid`).
    pub fn uid(&mut self, id: u32) -> &mut Command {
        self.std.uid(id);
        self
    }

    /// Runs the child as group `id` (`setgid`; see std's `CommandExt::gid`).
    pub fn gid(&mut self, id: u32) -> &mut Command {
        self.std.gid(id);
        self
    }

    /// Puts the child in process group `pgroup` (`0`: a new group whose id
    /// is the child's pid; see std's `CommandExt::process_group`).
    pub fn process_group(&mut self, pgroup: i32) -> &mut Command {
        self.std.process_group(pgroup);
        self
    }

    /// Sets the child's `argv[0]` (std's `CommandExt::arg0`).
    pub fn arg0<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.std.arg0(arg);
        self
    }

    /// Whether [`kill_on_drop`](Command::kill_on_drop) is on.
    pub fn get_kill_on_drop(&self) -> bool {
        self.kill_on_drop
    }

    /// The std command inside, to read it.
    pub fn as_std(&self) -> &std::process::Command {
        &self.std
    }

    /// The std command inside, for what this type does not wrap (`pre_exec`…).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// Spawns the child (std's `spawn`, then `pidfd_open(2)`).
    ///
    /// # Errors
    ///
    /// std's `spawn` error (`NotFound` for a missing program, …), or
    /// `pidfd_open` failing (out of fds; the child is then killed and reaped).
    pub fn spawn(&mut self) -> io::Result<Child> {
        let child = self.std.spawn()?;
        Child::from_std(child, self.kill_on_drop)
    }

    /// Spawns the child and waits for its exit status. Stdio is inherited
    /// unless set; a piped stdin is closed right away.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn) and [`Child::wait`].
    ///
    /// # Panics
    ///
    /// Outside a percore runtime.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the child running (and reaped when it
    /// exits), unless [`kill_on_drop`](Command::kill_on_drop) is set.
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.spawn()?;
        child.wait().await
    }

    /// Spawns the child and collects its status, stdout and stderr. Unless
    /// set, stdout and stderr are piped and stdin is null (as std's
    /// `output`); both pipes are read at the same time, so a child that
    /// writes a lot to both cannot deadlock.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn) and [`Child::wait_with_output`].
    ///
    /// # Panics
    ///
    /// Outside a percore runtime.
    ///
    /// # Cancel safety
    ///
    /// As [`status`](Command::status); what was read is lost.
    pub async fn output(&mut self) -> io::Result<Output> {
        // std's `output` defaults, applied for this spawn only: the defaults
        // of `spawn` (inherit) are put back after it.
        let (stdin, stdout, stderr) = (!self.stdin_set, !self.stdout_set, !self.stderr_set);
        if stdin {
            self.std.stdin(Stdio::null());
        }
        if stdout {
            self.std.stdout(Stdio::piped());
        }
        if stderr {
            self.std.stderr(Stdio::piped());
        }
        let child = self.spawn();
        if stdin {
            self.std.stdin(Stdio::inherit());
        }
        if stdout {
            self.std.stdout(Stdio::inherit());
        }
        if stderr {
            self.std.stderr(Stdio::inherit());
        }
        child?.wait_with_output().await
    }
}

impl From<std::process::Command> for Command {
    /// Wraps a std command; stdio it already set is kept, but
    /// [`output`](Command::output) cannot tell it was set, and pipes the
    /// child's stdout and stderr (and nulls its stdin) all the same.
    fn from(std: std::process::Command) -> Command {
        Command {
            std,
            kill_on_drop: false,
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
        }
    }
}
