//! The policy for panics nobody awaits: report (default) or abort the process.

use std::process::Command;
use std::time::Duration;

use percore_runtime::{spawn, time, Builder, UnhandledPanic};

const CHILD_ENV: &str = "PERCORE_PANIC_POLICY_CHILD";

fn detached_panic(policy: UnhandledPanic) {
    Builder::new()
        .unhandled_panic(policy)
        .block_on(async {
            drop(spawn(async { panic!("nobody awaits me") }));
            time::sleep(Duration::from_millis(5)).await;
            println!("RESULT: still running");
        })
        .unwrap();
}

/// Runs only in the child process the parent tests start.
#[test]
fn child() {
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("report") => detached_panic(UnhandledPanic::Report),
        Ok("abort") => detached_panic(UnhandledPanic::Abort),
        _ => {}
    }
}

fn run_child(policy: &str) -> std::process::Output {
    let exe = std::env::current_exe().expect("test binary path");
    Command::new(exe)
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, policy)
        .output()
        .expect("run the child test")
}

#[test]
fn an_unobserved_panic_is_reported_with_its_spawn_site() {
    let output = run_child("report");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("RESULT: still running"), "{stdout}");
    assert!(stderr.contains("nobody awaited it"), "{stderr}");
    assert!(
        stderr.contains("task_panic_policy.rs"),
        "the spawn site is named: {stderr}"
    );
}

#[test]
fn the_abort_policy_aborts_the_process() {
    let output = run_child("abort");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the process must not survive: {stdout}"
    );
    assert!(!stdout.contains("RESULT: still running"), "{stdout}");
    assert!(stderr.contains("nobody awaited it"), "{stderr}");
}
