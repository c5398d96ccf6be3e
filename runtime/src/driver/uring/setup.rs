//! Ring setup: the fastest flags the kernel accepts, and errors that say what to do.

use std::fmt;
use std::io;

use io_uring::{opcode, IoUring, Probe};

/// How a ring was set up, for stats and diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskRunMode {
    /// `SINGLE_ISSUER | DEFER_TASKRUN`: completion work runs only when the loop asks.
    Deferred,
    /// `COOP_TASKRUN`: no interrupts for completion work, but it may run at any syscall.
    Cooperative,
    /// Neither flag was accepted (old kernel).
    Plain,
}

/// An io_uring setup failure, explained. It is the `source`-carrying payload of the
/// `io::Error` that [`Builder`](crate::Builder) returns.
#[derive(Debug)]
pub struct SetupError {
    what: String,
    source: io::Error,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.what, self.source)
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Opcodes the driver itself needs; without them percore cannot run.
const REQUIRED: &[(u8, &str)] = &[
    (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
    (opcode::Read::CODE, "IORING_OP_READ"),
    (opcode::Nop::CODE, "IORING_OP_NOP"),
];

/// Creates a ring with `entries` SQ entries and `cq_entries` CQ entries.
pub(crate) fn build(entries: u32, cq_entries: u32) -> io::Result<(IoUring, TaskRunMode, Probe)> {
    let attempts = [
        TaskRunMode::Deferred,
        TaskRunMode::Cooperative,
        TaskRunMode::Plain,
    ];
    let mut last = None;
    for mode in attempts {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(cq_entries).setup_clamp();
        match mode {
            TaskRunMode::Deferred => {
                builder
                    .setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_taskrun_flag();
            }
            TaskRunMode::Cooperative => {
                builder.setup_coop_taskrun().setup_taskrun_flag();
            }
            TaskRunMode::Plain => {}
        }
        match builder.build(entries) {
            Ok(ring) => {
                let probe = probe(&ring)?;
                return Ok((ring, mode, probe));
            }
            // EINVAL: a flag this kernel does not know; try the next, simpler set.
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => last = Some(err),
            Err(err) => return Err(explain(err, entries)),
        }
    }
    let err = last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL));
    Err(explain(err, entries))
}

fn probe(ring: &IoUring) -> io::Result<Probe> {
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|err| {
        wrap(
            err,
            "io_uring probe failed: the kernel is older than 5.6; percore needs Linux 6.1 or newer"
                .into(),
        )
    })?;
    if let Some((_, name)) = REQUIRED.iter().find(|(code, _)| !probe.is_supported(*code)) {
        return Err(wrap(
            io::Error::from(io::ErrorKind::Unsupported),
            format!("the kernel's io_uring lacks {name}; percore needs Linux 6.1 or newer"),
        ));
    }
    Ok(probe)
}

fn wrap(source: io::Error, what: String) -> io::Error {
    io::Error::new(source.kind(), SetupError { what, source })
}

/// Turns an `io_uring_setup` errno into an error that names the cause and the fix.
pub(crate) fn explain(err: io::Error, entries: u32) -> io::Error {
    let what = match err.raw_os_error() {
        Some(libc::ENOSYS) => "io_uring_setup is not available: the kernel is older than 5.1 or \
             was built without CONFIG_IO_URING (emulators and gVisor often lack it); \
             percore needs Linux 6.1 or newer with io_uring"
            .to_string(),
        Some(libc::EPERM) => explain_eperm(),
        Some(libc::ENOMEM) => format!(
            "io_uring_setup could not allocate a ring of {entries} entries; kernels before 5.12 \
             charge ring memory to RLIMIT_MEMLOCK (now {}): raise it (`ulimit -l`) or use \
             fewer ring entries",
            memlock()
        ),
        Some(libc::EMFILE) | Some(libc::ENFILE) => {
            "io_uring_setup needs a file descriptor and none is left: raise RLIMIT_NOFILE \
             (`ulimit -n`) or close some files"
                .to_string()
        }
        Some(libc::EINVAL) => format!(
            "io_uring_setup rejected a ring of {entries} entries: use a power of two \
             between 1 and 32768"
        ),
        _ => "io_uring_setup failed".to_string(),
    };
    let kind = match err.raw_os_error() {
        Some(libc::ENOSYS) => io::ErrorKind::Unsupported,
        _ => err.kind(),
    };
    io::Error::new(kind, SetupError { what, source: err })
}

fn explain_eperm() -> String {
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled");
    match sysctl.as_deref().map(str::trim) {
        Ok("2") => "io_uring is disabled by the sysctl kernel.io_uring_disabled=2: \
             set it to 0 (`sysctl -w kernel.io_uring_disabled=0`) to run percore"
            .to_string(),
        Ok("1") => "io_uring is restricted by the sysctl kernel.io_uring_disabled=1 to \
             members of the group in kernel.io_uring_group: add this user to that group, \
             or set the sysctl to 0"
            .to_string(),
        _ => "io_uring_setup is not permitted, most likely by a seccomp profile (Docker's and \
             containerd's default profiles block io_uring): run with a profile that allows \
             io_uring_setup, io_uring_enter and io_uring_register, e.g. \
             `docker run --security-opt seccomp=<profile.json>`"
            .to_string(),
    }
}

fn memlock() -> String {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return "unknown".to_string();
    }
    let show = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            "unlimited".to_string()
        } else {
            format!("{} KiB", v / 1024)
        }
    };
    format!(
        "soft {}, hard {}",
        show(limit.rlim_cur),
        show(limit.rlim_max)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_cause() {
        let enosys = explain(io::Error::from_raw_os_error(libc::ENOSYS), 256);
        assert_eq!(enosys.kind(), io::ErrorKind::Unsupported);
        assert!(enosys.to_string().contains("CONFIG_IO_URING"), "{enosys}");
        let eperm = explain(io::Error::from_raw_os_error(libc::EPERM), 256);
        assert_eq!(eperm.kind(), io::ErrorKind::PermissionDenied);
        assert!(eperm.to_string().contains("io_uring"), "{eperm}");
        let enomem = explain(io::Error::from_raw_os_error(libc::ENOMEM), 256);
        assert!(enomem.to_string().contains("RLIMIT_MEMLOCK"), "{enomem}");
        let source = std::error::Error::source(enomem.get_ref().expect("has a payload"));
        assert!(source.is_some(), "the errno stays reachable as source()");
    }

    #[test]
    fn a_ring_builds_here() {
        let (ring, mode, probe) = build(8, 16).expect("io_uring must work on the test machine");
        assert!(ring.params().sq_entries() >= 8);
        assert_ne!(
            mode,
            TaskRunMode::Plain,
            "kernels ≥ 5.19 accept COOP/DEFER_TASKRUN"
        );
        assert!(probe.is_supported(opcode::Nop::CODE));
    }
}
