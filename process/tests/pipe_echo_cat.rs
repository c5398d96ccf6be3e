//! `echo hi | cat` through pipes: copied by percore from one child's stdout
//! to the next one's stdin, and handed over as the next one's stdin.

mod util;

use std::time::Duration;

use percore_process::{Command, Stdio};
use percore_runtime::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn echo_hi_into_cat_through_percore() {
    percore_runtime::run(async {
        let mut echo = Command::new("echo")
            .arg("hi")
            .stdout(Stdio::piped())
            .spawn()?;
        let mut cat = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let from = echo.stdout.take().expect("echo's stdout is piped");
        let to = cat.stdin.take().expect("cat's stdin is piped");
        let out = cat.stdout.take().expect("cat's stdout is piped");

        // Copy until echo's end of stream, then close cat's stdin.
        let mut buf = Vec::with_capacity(4096);
        loop {
            buf.clear();
            let (res, back) = from.read(buf).await;
            if res? == 0 {
                break;
            }
            let (res, back) = to.write_all(back).await;
            res?;
            buf = back;
        }
        drop(to);

        let (res, got) = out.read_to_end(Vec::new()).await;
        res?;
        assert_eq!(got, b"hi\n");
        assert!(echo.wait().await?.success());
        assert!(cat.wait().await?.success());
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

#[test]
fn echo_stdout_handed_to_cat_as_stdin() {
    percore_runtime::run(async {
        let mut echo = Command::new("echo")
            .arg("hi")
            .stdout(Stdio::piped())
            .spawn()?;
        let pipe = echo.stdout.take().expect("piped");
        let cat = Command::new("cat")
            .stdin(Stdio::try_from(pipe)?)
            .output()
            .await?;
        assert!(cat.status.success());
        assert_eq!(cat.stdout, b"hi\n");
        assert!(echo.wait().await?.success());
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

/// 8 MiB through `cat` while reading its output at the same time: the
/// writes wait on a full pipe (backpressure) and nothing deadlocks.
#[test]
fn megabytes_through_cat_both_ways_at_once() {
    percore_runtime::run(async {
        let mut cat = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = cat.stdin.take().expect("piped");
        let stdout = cat.stdout.take().expect("piped");
        let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = percore_runtime::spawn(async move {
            let (res, _) = stdin.write_all(data).await;
            res
            // `stdin` drops here: cat sees end of file.
        });
        let (res, got) = timeout(LIMIT, stdout.read_to_end(Vec::new()))
            .await
            .expect("cat's output within the limit");
        res?;
        writer.await.expect("writer task")?;
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "cat gave back other bytes");
        assert!(cat.wait().await?.success());
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

/// A write after the child closed its stdin fails with `BrokenPipe` (this
/// test binary ignores SIGPIPE, as Rust programs do).
#[test]
fn write_to_a_child_that_exited_is_broken_pipe() {
    percore_runtime::run(async {
        let mut child = Command::new("true").stdin(Stdio::piped()).spawn()?;
        let stdin = child.stdin.take().expect("piped");
        assert!(child.wait().await?.success());
        let (res, _) = stdin.write_all(vec![0u8; 1 << 20]).await;
        assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}
