//! io_uring blocked by a seccomp filter (as in containers' default profiles):
//! forced io_uring must return a named error, not panic or show a bare errno;
//! the default (`Driver::Auto`) must run on epoll instead, after one line
//! that says why.

use std::process::Command;

const CHILD_ENV: &str = "PERCORE_SECCOMP_CHILD";

#[path = "util/seccomp.rs"]
mod seccomp;
use seccomp::block_io_uring_setup;

/// Runs only in the child process the parent test starts.
#[test]
fn child_under_seccomp() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    block_io_uring_setup();
    let forced = percore_runtime::Builder::new()
        .driver(percore_runtime::Driver::IoUring)
        .block_on(async {});
    match forced {
        Ok(()) => println!("RESULT: forced started"),
        Err(err) => {
            println!("RESULT: kind={:?}", err.kind());
            println!("RESULT: message={err}");
        }
    }
    match percore_runtime::run(async { percore_runtime::stats().driver }) {
        Ok(driver) => println!("RESULT: auto runs {driver}"),
        Err(err) => println!("RESULT: auto failed: {err}"),
    }
}

#[test]
fn io_uring_blocked_by_seccomp_is_named_and_auto_falls_back() {
    let exe = std::env::current_exe().expect("test binary path");
    let output = Command::new(exe)
        .env_remove("PERCORE_DRIVER")
        .args([
            "--exact",
            "child_under_seccomp",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("RESULT: kind=PermissionDenied"), "{stdout}");
    assert!(
        stdout.contains("seccomp"),
        "the error names the likely cause: {stdout}"
    );
    assert!(
        stdout.contains("io_uring_setup"),
        "and the blocked call: {stdout}"
    );
    assert!(!stdout.contains("RESULT: forced started"));
    assert!(stdout.contains("RESULT: auto runs epoll"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let announced: Vec<_> = stderr
        .lines()
        .filter(|line| line.contains("running on epoll"))
        .collect();
    assert_eq!(announced.len(), 1, "one line says why: {stderr}");
    assert!(announced[0].contains("seccomp"), "{stderr}");
}
