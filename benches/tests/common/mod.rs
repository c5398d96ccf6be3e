//! Helpers the percore-bench CLI tests share: run the built binary, read its
//! output, name temp files.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `percore-bench` with `args` to completion.
pub fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_percore-bench"))
        .args(args)
        .output()
        .expect("the percore-bench binary runs")
}

/// Its stdout, after checking it exited successfully.
pub fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A path in the temp dir unique to this process.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("percore-bench-{}-{name}", std::process::id()))
}
