//! Exit statuses: codes, deaths by signal, `kill`, `try_wait`, a missing program.

mod util;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use percore_process::{Command, Stdio};

#[test]
fn exit_codes() {
    percore_runtime::run(async {
        assert_eq!(Command::new("true").status().await?.code(), Some(0));
        assert_eq!(Command::new("false").status().await?.code(), Some(1));
        let status = Command::new("sh").args(["-c", "exit 3"]).status().await?;
        assert_eq!(status.code(), Some(3));
        assert!(!status.success());
        let status = Command::new("sh").args(["-c", "exit 255"]).status().await?;
        assert_eq!(status.code(), Some(255));
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

#[test]
fn death_by_signal() {
    percore_runtime::run(async {
        let status = Command::new("sh")
            .args(["-c", "kill -TERM $$"])
            .status()
            .await?;
        assert_eq!(status.code(), None);
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert!(!status.core_dumped());
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

#[test]
fn kill_a_sleeper() {
    percore_runtime::run(async {
        let mut child = Command::new("sleep").arg("100").spawn()?;
        let pid = child.id().expect("running");
        assert_eq!(child.try_wait()?, None);
        child.kill().await?;
        let status = child.wait().await?;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(child.id(), None, "no pid once reaped");
        assert!(util::gone(pid));
        // Killing an exited child is fine, as std's `kill`.
        child.start_kill()?;
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

#[test]
fn try_wait_sees_the_exit_and_wait_repeats_it() {
    percore_runtime::run(async {
        let mut child = Command::new("sh").args(["-c", "exit 7"]).spawn()?;
        let pid = child.id().expect("running");
        // Poll until it exits, without awaiting the exit.
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            percore_runtime::time::sleep(Duration::from_millis(1)).await;
        };
        assert_eq!(status.code(), Some(7));
        assert!(util::gone(pid));
        assert_eq!(child.wait().await?.code(), Some(7));
        assert_eq!(child.try_wait()?.and_then(|s| s.code()), Some(7));
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

#[test]
fn a_missing_program_is_not_found() {
    percore_runtime::run(async {
        let err = Command::new("/nonexistent/percore-no-such-program")
            .status()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        let err = Command::new("percore-no-such-program-in-path")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    })
    .unwrap();
}

#[test]
fn builder_passes_args_env_and_dir() {
    percore_runtime::run(async {
        let dir = std::env::temp_dir();
        let output = Command::new("sh")
            .args([
                "-c",
                "printf '%s|%s|%s|%s' \"$0\" \"$PERCORE_X\" \"$HOME\" \"$(pwd -P)\"",
            ])
            .arg("zero")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs([("PERCORE_X", "x")])
            .env("HOME", "h")
            .env_remove("HOME")
            .current_dir(&dir)
            .output()
            .await?;
        assert!(output.status.success(), "{output:?}");
        let dir = dir.canonicalize()?;
        let expected = format!("zero|x||{}", dir.display());
        assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}
