//! `percore-bench demo`, the README's first command, at its smallest size.

use std::process::Command;

#[test]
fn the_quick_demo_prints_every_section() {
    let output = Command::new(env!("CARGO_BIN_EXE_percore-bench"))
        .args(["demo", "--quick", "--runs", "1"])
        .output()
        .expect("the percore-bench binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for heading in [
        "percore demo: median of 1 run",
        "spawn+join 100,000 tasks",
        "concurrent sleeps",
        "NOPs, 64 in flight",
        "run_on_all, 2 pinned cores",
        "echo, 128 B messages, 64 connections",
        "HTTP hello world, keep-alive, 64 connections",
        "4 KiB random reads, 32 in flight, page cache warm, 16 MiB temp file",
    ] {
        assert!(
            stdout.contains(heading),
            "{heading:?} missing from\n{stdout}"
        );
    }
    // Each load section has its figures, and at least one SQE per request.
    assert_eq!(stdout.matches("requests/s").count(), 2, "{stdout}");
    assert!(
        stdout.contains("IOPS") && stdout.contains("MiB/s"),
        "{stdout}"
    );
    for line in stdout
        .lines()
        .filter(|l| l.contains("server SQEs per request"))
    {
        let value: f64 = line
            .split_whitespace()
            .last()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("a number in {line:?}"));
        assert!(value >= 1.0, "{line}");
    }
}
