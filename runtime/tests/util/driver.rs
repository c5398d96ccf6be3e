//! Which driver a test run uses; shared by the runtime's and percore-fs's
//! integration tests (included by path).

/// Whether this run's default driver is io_uring. A test about io_uring itself
/// (SQE or enter counts, `MSG_RING`, ring sizes) returns early otherwise,
/// after saying so on stderr.
pub fn io_uring_or_skip(test: &str) -> bool {
    let driver =
        percore_runtime::run(async { percore_runtime::stats().driver }).expect("a runtime starts");
    if driver != percore_runtime::Driver::IoUring {
        eprintln!("skipped {test}: it is about io_uring itself, and this run uses {driver}");
        return false;
    }
    true
}
