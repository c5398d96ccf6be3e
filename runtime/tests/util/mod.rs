//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::os::fd::{FromRawFd, OwnedFd};

/// A non-blocking-free pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Writes all of `data` to `fd` with a plain write(2).
pub fn write_fd(fd: &OwnedFd, data: &[u8]) {
    use std::os::fd::AsRawFd;
    // SAFETY: `data` is valid for `data.len()` bytes.
    let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
    assert_eq!(
        n,
        data.len() as isize,
        "write: {}",
        std::io::Error::last_os_error()
    );
}

/// Number of open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd is readable")
        .count()
}

/// Yields until no op is in flight on this core, at most `rounds` times.
pub async fn settle(rounds: usize) -> usize {
    for _ in 0..rounds {
        if percore_runtime::stats().in_flight == 0 {
            return 0;
        }
        percore_runtime::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    percore_runtime::stats().in_flight
}

/// Serialises the tests of one binary that count this process's fds (the test
/// harness runs tests on parallel threads, which open fds of their own).
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[path = "driver.rs"]
mod driver;
#[allow(unused_imports)] // not every test binary asks
pub use driver::io_uring_or_skip;
