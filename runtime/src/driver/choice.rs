//! Which backend a core runs: [`Driver`], `PERCORE_DRIVER`, and the fallback.

use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::Once;

/// A job for the blocking pool, and the function that hands one to it: the
/// readiness backend runs file operations that may block through it.
pub(crate) type Offload = Box<dyn Fn(Box<dyn FnOnce() + Send>)>;

/// The backend a core's driver runs on.
///
/// [`Builder::driver`](crate::Builder::driver) chooses it; a builder left at
/// [`Auto`](Driver::Auto) (the default) takes the `PERCORE_DRIVER` environment
/// variable (`auto`, `io_uring` or `epoll`) instead, so a deployment can force
/// the fallback without a rebuild. An explicit choice in code wins over the
/// variable. [`Stats::driver`](crate::Stats::driver) says which one a core runs.
///
/// # Examples
///
/// ```
/// use percore_runtime::{Builder, Driver};
///
/// let driver = Builder::new()
///     .driver(Driver::Epoll)
///     .block_on(async { percore_runtime::stats().driver })
///     .unwrap();
/// assert_eq!(driver, Driver::Epoll);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Driver {
    /// io_uring, unless it is unavailable — `io_uring_setup` fails with `EPERM`
    /// (a seccomp profile such as Docker's default, or
    /// `kernel.io_uring_disabled`), `ENOSYS` (no io_uring in the kernel, gVisor)
    /// or `ENOMEM` (`RLIMIT_MEMLOCK` on old kernels), or the kernel lacks an
    /// opcode percore needs: then epoll, after one line on stderr that names
    /// the cause and how to get io_uring back.
    #[default]
    Auto,
    /// io_uring only: a core that cannot set up its ring fails to start, with
    /// an error that names the cause and the fix.
    IoUring,
    /// epoll: sockets wait for readiness and then make the non-blocking call;
    /// file operations try `RWF_NOWAIT` first (page-cache hits) and otherwise
    /// run on the blocking pool; timers are the wait's timeout.
    Epoll,
}

impl Driver {
    /// The name `PERCORE_DRIVER` takes: `auto`, `io_uring` or `epoll`.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Auto => "auto",
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Driver {
    type Err = io::Error;

    /// Parses `auto`, `io_uring` (or `io-uring`, `uring`) and `epoll`,
    /// ignoring case.
    fn from_str(s: &str) -> io::Result<Driver> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Driver::Auto),
            "io_uring" | "io-uring" | "uring" => Ok(Driver::IoUring),
            "epoll" => Ok(Driver::Epoll),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("PERCORE_DRIVER={other:?} is not a driver: use auto, io_uring or epoll"),
            )),
        }
    }
}

/// The backend to run: `choice`, or for `Auto` the `PERCORE_DRIVER` variable,
/// and for `Auto` still, io_uring if `uring` builds one and epoll if it fails
/// the way a blocked or missing io_uring fails. `Ok(None)`: run epoll.
pub(crate) fn choose<R>(
    choice: Driver,
    uring: impl FnOnce() -> io::Result<R>,
) -> io::Result<Option<R>> {
    let choice = match choice {
        Driver::Auto => match std::env::var("PERCORE_DRIVER") {
            Ok(value) => value.parse()?,
            Err(_) => Driver::Auto,
        },
        explicit => explicit,
    };
    match choice {
        Driver::IoUring => uring().map(Some),
        Driver::Epoll => Ok(None),
        Driver::Auto => match uring() {
            Ok(ring) => Ok(Some(ring)),
            Err(err) if is_unavailable(&err) => {
                crate::trace::event!(
                    WARN,
                    reason = %err,
                    "io_uring is unavailable, running on epoll"
                );
                announce_fallback(&err);
                Ok(None)
            }
            Err(err) => Err(err),
        },
    }
}

/// Whether a ring setup error means io_uring is blocked or missing here (as
/// opposed to a mistake in the configuration, such as a bad ring size).
fn is_unavailable(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EPERM) | Some(libc::ENOSYS) | Some(libc::ENOMEM)
    ) || matches!(
        err.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported | io::ErrorKind::OutOfMemory
    )
}

/// One line on stderr, once per process: why io_uring is not used and what
/// to do about it.
fn announce_fallback(err: &io::Error) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "io_uring is unavailable, running on epoll (slower for files, \
             more syscalls for sockets): {err}. Set PERCORE_DRIVER=epoll to choose it \
             quietly, or PERCORE_DRIVER=io_uring to make this an error."
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for driver in [Driver::Auto, Driver::IoUring, Driver::Epoll] {
            assert_eq!(driver.name().parse::<Driver>().unwrap(), driver);
        }
        assert_eq!("IO-URING".parse::<Driver>().unwrap(), Driver::IoUring);
        let err = "kqueue".parse::<Driver>().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("kqueue"), "{err}");
    }

    #[test]
    fn a_blocked_ring_falls_back_only_when_auto() {
        let blocked = || -> io::Result<()> { Err(io::Error::from_raw_os_error(libc::EPERM)) };
        assert!(matches!(choose(Driver::Epoll, blocked), Ok(None)));
        let forced = choose(Driver::IoUring, blocked).unwrap_err();
        assert_eq!(forced.raw_os_error(), Some(libc::EPERM));
        let bad_size = || -> io::Result<()> { Err(io::Error::from_raw_os_error(libc::EINVAL)) };
        assert!(choose(Driver::IoUring, bad_size).is_err());
    }
}
