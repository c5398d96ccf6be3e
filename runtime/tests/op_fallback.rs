//! A user's own `OpCode` whose opcode the epoll backend cannot run: it runs
//! through its `fallback` there, or fails with an error that names it; on
//! io_uring the kernel runs it and the fallback is never asked for.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use percore_runtime::io_uring::{opcode, squeue, types};
use percore_runtime::{Builder, Driver, Fallback, Op, OpCode};

/// `posix_fadvise(2)` as `IORING_OP_FADVISE`, which the epoll backend has no
/// stand-in for.
struct Fadvise {
    fd: RawFd,
    /// With a fallback: how many times it ran.
    fallback: Option<Arc<AtomicUsize>>,
}

// SAFETY: the entry points at no memory.
unsafe impl OpCode for Fadvise {
    type Output = io::Result<()>;

    fn sqe(&mut self) -> squeue::Entry {
        opcode::Fadvise::new(types::Fd(self.fd), 4096, libc::POSIX_FADV_WILLNEED).build()
    }

    fn fallback(&mut self) -> Option<Fallback> {
        let ran = self.fallback.clone()?;
        let fd = self.fd;
        Some(Box::new(move || {
            ran.fetch_add(1, Ordering::Relaxed);
            // SAFETY: no memory is passed; the op keeps `fd` open until it
            // completes.
            match unsafe { libc::posix_fadvise(fd, 0, 4096, libc::POSIX_FADV_WILLNEED) } {
                0 => Ok(0),
                errno => Err(io::Error::from_raw_os_error(errno)),
            }
        }))
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}

fn fadvise(driver: Driver, with_fallback: bool) -> (io::Result<()>, usize) {
    let file = std::fs::File::open("/proc/self/exe").expect("the test binary");
    let ran = Arc::new(AtomicUsize::new(0));
    let op = Fadvise {
        fd: file.as_raw_fd(),
        fallback: with_fallback.then(|| ran.clone()),
    };
    let res = Builder::new()
        .driver(driver)
        .block_on(Op::new(op))
        .expect("a runtime starts");
    (res, ran.load(Ordering::Relaxed))
}

#[test]
fn the_fallback_runs_on_epoll() {
    let (res, ran) = fadvise(Driver::Epoll, true);
    res.expect("posix_fadvise on the blocking pool");
    assert_eq!(ran, 1);
}

#[test]
fn without_a_fallback_the_error_names_the_op_and_its_opcode() {
    let (res, _) = fadvise(Driver::Epoll, false);
    let err = res.expect_err("epoll cannot run FADVISE from the SQE");
    assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    let message = err.to_string();
    assert!(message.contains("Fadvise"), "names the op type: {message}");
    assert!(
        message.contains("IORING_OP_FADVISE"),
        "names the opcode: {message}"
    );
}

#[test]
fn io_uring_runs_the_opcode_itself() {
    let (res, ran) = fadvise(Driver::IoUring, true);
    res.expect("IORING_OP_FADVISE (Linux 5.6+)");
    assert_eq!(ran, 0, "the fallback is for the epoll backend only");
}
