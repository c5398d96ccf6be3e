//! `output()` with megabytes on both stdout and stderr: both pipes are read
//! at once, so a child that fills one while the other is drained cannot
//! deadlock.

use std::time::Duration;

use percore_process::{Command, Stdio};
use percore_runtime::time::timeout;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn megabytes_on_stdout_and_stderr() {
    percore_runtime::run(async {
        // stderr first, then stdout, then stderr again: reading either pipe
        // to its end before the other would deadlock.
        let script = "head -c 3000000 /dev/zero >&2; \
                      head -c 5000000 /dev/zero | tr '\\0' o; \
                      head -c 1000000 /dev/zero | tr '\\0' e >&2; exit 4";
        let output = timeout(LIMIT, Command::new("sh").args(["-c", script]).output())
            .await
            .expect("no deadlock")?;
        assert_eq!(output.status.code(), Some(4));
        assert_eq!(output.stdout.len(), 5_000_000);
        assert!(output.stdout.iter().all(|&b| b == b'o'));
        assert_eq!(output.stderr.len(), 4_000_000);
        assert!(output.stderr[..3_000_000].iter().all(|&b| b == 0));
        assert!(output.stderr[3_000_000..].iter().all(|&b| b == b'e'));
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

#[test]
fn output_defaults_and_explicit_stdio() {
    percore_runtime::run(async {
        // stdin is null for `output` unless set: `cat` reads end of file at once.
        let output = Command::new("cat").output().await?;
        assert!(output.status.success());
        assert!(output.stdout.is_empty());

        // An explicit null stdout is kept; stderr is still captured.
        let output = Command::new("sh")
            .args(["-c", "echo out; echo err >&2"])
            .stdout(Stdio::null())
            .output()
            .await?;
        assert!(output.stdout.is_empty());
        assert_eq!(output.stderr, b"err\n");

        // The same command spawned afterwards inherits again (no pipes).
        let mut command = Command::new("true");
        let _ = command.output().await?;
        let child = command.spawn()?;
        assert!(child.stdout.is_none() && child.stderr.is_none() && child.stdin.is_none());
        let mut child = child;
        assert!(child.wait().await?.success());
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

#[test]
fn wait_with_output_after_feeding_stdin() {
    percore_runtime::run(async {
        let mut child = Command::new("wc")
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let (res, _) = stdin.write_all(vec![b'x'; 1 << 20]).await;
        res?;
        drop(stdin);
        let output = child.wait_with_output().await?;
        assert!(output.status.success());
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "1048576");
        assert!(output.stderr.is_empty());
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}
