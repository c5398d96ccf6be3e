//! The `tracing` feature: an accept stream out of fds says so in an event
//! (the error and the pause) each time it backs off.
//!
//! Runs in a child process (this test binary re-executed with an env var),
//! since it lowers `RLIMIT_NOFILE` for the whole process. Run with
//! `cargo test -p percore-net --features tracing`.

#![cfg(feature = "tracing")]

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use percore_net::TcpListener;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const CHILD_ENV: &str = "PERCORE_NET_TRACE_CHILD";

/// A subscriber that keeps every event as one line: `LEVEL message k=v …`.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = match field.name() {
            "message" => write!(self.0, " {value:?}"),
            name => write!(self.0, " {name}={value:?}"),
        };
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(event.metadata().level().to_string());
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Sets the soft fd limit, keeping the hard one (so it can be raised again).
fn set_soft_fd_limit(soft: u64) -> u64 {
    // SAFETY: `getrlimit` only writes the struct we pass.
    let mut rlimit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to an `rlimit`.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlimit) },
        0
    );
    let old = rlimit.rlim_cur;
    rlimit.rlim_cur = soft;
    // SAFETY: a valid pointer to an `rlimit`.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) }, 0);
    old
}

/// The lowest fd number not in use (the kernel hands out the lowest free
/// one): a soft limit there leaves none free.
fn lowest_free_fd() -> u64 {
    use std::os::fd::AsRawFd;
    let probe = std::fs::File::open("/dev/null").unwrap();
    probe.as_raw_fd() as u64
}

fn starved_accept() {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || {
        percore_runtime::run(async {
            let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
            let addr = listener.local_addr().unwrap();
            let _client = std::net::TcpStream::connect(addr).unwrap();
            let old = set_soft_fd_limit(lowest_free_fd());
            let mut incoming = listener.incoming();
            let mut errors = 0;
            // Bounded: the first accept fails at once (no fd left); the
            // backlog's connection is taken once fds are back.
            for _ in 0..100 {
                match incoming.next().await {
                    Some(Ok(_stream)) => break,
                    Some(Err(err)) => {
                        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
                        errors += 1;
                        if errors == 2 {
                            set_soft_fd_limit(old);
                        }
                    }
                    None => unreachable!("Incoming never ends"),
                }
            }
            println!("RESULT errors={errors}");
            percore_runtime::time::sleep(Duration::from_millis(1)).await;
        })
        .unwrap();
    });
    for line in recorder.0.lock().unwrap().iter() {
        println!("EVENT {line}");
    }
}

/// Runs only in the child process the parent test starts.
#[test]
fn child() {
    if std::env::var_os(CHILD_ENV).is_some() {
        starved_accept();
    }
}

#[test]
fn backing_off_after_emfile_is_an_event() {
    let exe = std::env::current_exe().expect("test binary path");
    let output = Command::new(exe)
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("RESULT errors=2"), "{stdout}\n{stderr}");
    let backoffs: Vec<_> = stdout
        .lines()
        .filter(|line| line.contains("accept failed; backing off"))
        .collect();
    assert_eq!(backoffs.len(), 2, "one event per back-off: {stdout}");
    assert!(backoffs[0].starts_with("EVENT WARN"), "{}", backoffs[0]);
    // The error, and the pause doubling from 1 ms.
    assert!(backoffs[0].contains("os error 24"), "{}", backoffs[0]);
    assert!(backoffs[0].contains("backoff_ms=1"), "{}", backoffs[0]);
    assert!(backoffs[1].contains("backoff_ms=2"), "{}", backoffs[1]);
}
