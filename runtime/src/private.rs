//! What `#[percore::test]` expands to, and the hooks percore-net calls; not a
//! public API.

use std::hash::{BuildHasher, RandomState};

/// The seed a test runs with: `fixed` (the attribute's `seed = N`), else
/// `PERCORE_SEED`, else a fresh random one.
///
/// # Panics
///
/// If `PERCORE_SEED` is set but not a `u64`: the test fails saying so.
pub fn test_seed(fixed: Option<u64>) -> u64 {
    if let Some(seed) = fixed {
        return seed;
    }
    match crate::runtime::env_seed() {
        Ok(Some(seed)) => return seed,
        Ok(None) => {}
        Err(err) => panic!("percore: {err}"),
    }
    // RandomState is seeded from the OS once per process and varies per
    // instance; mixing in the thread keeps parallel tests apart.
    RandomState::new().hash_one(std::thread::current().id())
}

/// Prints the seed if the test fails (its thread unwinds past this guard).
#[derive(Debug)]
pub struct SeedReport(u64);

impl SeedReport {
    /// Guards a test that runs with `seed`.
    pub fn new(seed: u64) -> SeedReport {
        SeedReport(seed)
    }
}

impl SeedReport {
    /// Prints the seed if the test returned a failure (an `Err`).
    pub fn check<O: Outcome>(&self, outcome: &O) {
        if outcome.failed() {
            self.print();
        }
    }

    fn print(&self) {
        eprintln!(
            "percore: this test ran with PERCORE_SEED={seed}; run it again with \
             PERCORE_SEED={seed} to replay the same task order",
            seed = self.0
        );
    }
}

/// What a test function may return (the `Termination` types of std).
pub trait Outcome {
    /// Whether it means the test failed.
    fn failed(&self) -> bool;
}

impl Outcome for () {
    fn failed(&self) -> bool {
        false
    }
}

impl<T, E> Outcome for Result<T, E> {
    fn failed(&self) -> bool {
        self.is_err()
    }
}

impl Outcome for std::process::ExitCode {
    fn failed(&self) -> bool {
        *self != std::process::ExitCode::SUCCESS
    }
}

impl Drop for SeedReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print();
        }
    }
}

/// Tells this thread's core that `fd` is a socket its caller owns until
/// [`release_fd`]: the epoll backend may then keep it registered for its
/// whole life. Does nothing on io_uring, or off a core.
pub fn claim_fd(fd: std::os::fd::RawFd) {
    crate::driver::claim_fd(fd);
}

/// Ends a [`claim_fd`]; call it before the fd is closed or handed away.
pub fn release_fd(fd: std::os::fd::RawFd) {
    crate::driver::release_fd(fd);
}

/// The `tracing` crate, for [`__event!`](crate::__event) in percore's crates.
#[cfg(feature = "tracing")]
pub use tracing;
