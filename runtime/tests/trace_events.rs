//! The `tracing` feature: starting a core says which backend it runs (and on
//! io_uring, how its ring was set up); a fallback to epoll says why; stalls
//! and the steps of a shutdown are events too.
//!
//! Each test records the events of its own thread (`with_default`), and runs
//! its core there (`block_on`), so parallel tests do not see each other's.
//! Run with `cargo test -p percore-runtime --features tracing`.

#![cfg(feature = "tracing")]

use std::fmt::{self, Write as _};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use percore_runtime::{Builder, Driver};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

#[path = "util/seccomp.rs"]
mod seccomp;

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

    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
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

impl Recorder {
    /// Runs `f` with this recorder as the thread's subscriber; the lines.
    fn record(f: impl FnOnce()) -> Vec<String> {
        let recorder = Recorder::default();
        tracing::subscriber::with_default(recorder.clone(), f);
        let lines = recorder.0.lock().unwrap().clone();
        lines
    }
}

fn find<'a>(lines: &'a [String], text: &str) -> Option<&'a String> {
    lines.iter().find(|line| line.contains(text))
}

#[test]
fn a_core_names_its_backend_and_its_ring() {
    let mut driver = Driver::Auto;
    let lines = Recorder::record(|| {
        driver = percore_runtime::run(async { percore_runtime::stats().driver }).unwrap();
    });
    let started = find(&lines, "core started").unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(started.starts_with("INFO"), "{started}");
    assert!(started.contains(&format!("driver={driver}")), "{started}");
    assert!(started.contains("core=0"), "{started}");
    let ring = find(&lines, "io_uring ring set up");
    if driver == Driver::IoUring {
        let ring = ring.unwrap_or_else(|| panic!("{lines:#?}"));
        assert!(ring.contains("sq_entries="), "{ring}");
        assert!(ring.contains("cq_entries="), "{ring}");
        assert!(ring.contains("mode="), "{ring}");
    } else {
        assert!(ring.is_none(), "{lines:#?}");
    }
    // The steps of the core's shutdown, in order.
    let at = |text| lines.iter().position(|line| line.contains(text));
    let shutting = at("core shutting down").unwrap_or_else(|| panic!("{lines:#?}"));
    let stopped = at("core stopped").unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(shutting < stopped, "{lines:#?}");
}

#[test]
fn forcing_epoll_names_epoll() {
    let lines = Recorder::record(|| {
        Builder::new()
            .driver(Driver::Epoll)
            .block_on(async {})
            .unwrap();
    });
    let started = find(&lines, "core started").unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(started.contains("driver=epoll"), "{started}");
    assert!(find(&lines, "io_uring ring set up").is_none(), "{lines:#?}");
}

#[test]
fn a_stall_is_an_event() {
    let lines = Recorder::record(|| {
        Builder::new()
            .stall_threshold(Some(Duration::from_millis(5)))
            .on_stall(|_| {}) // no line on stderr
            .block_on(async {
                let blocker = percore_runtime::spawn(async {
                    // Blocks the core on purpose: at least 30 ms, however busy
                    // the machine, against a 5 ms threshold.
                    std::thread::sleep(Duration::from_millis(30));
                });
                blocker.await.unwrap();
            })
            .unwrap();
    });
    let stall = find(&lines, "a poll blocked the core").unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(stall.starts_with("WARN"), "{stall}");
    assert!(stall.contains("core=0"), "{stall}");
    assert!(stall.contains("trace_events.rs"), "names the task: {stall}");
}

#[test]
fn a_graceful_shutdown_says_begun_and_drained() {
    let lines = Recorder::record(|| {
        percore_runtime::run(async {
            let shutdown = percore_runtime::shutdown::Shutdown::new();
            let guard = shutdown.guard();
            shutdown.begin();
            drop(guard);
            shutdown.drained().await;
        })
        .unwrap();
    });
    let begun = find(&lines, "graceful shutdown begun").unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(begun.contains("guards=1"), "{begun}");
    assert!(
        find(&lines, "graceful shutdown drained").is_some(),
        "{lines:#?}"
    );
}

const CHILD_ENV: &str = "PERCORE_TRACE_SECCOMP_CHILD";

/// Runs only in the child process the parent test starts.
#[test]
fn child_under_seccomp() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    seccomp::block_io_uring_setup();
    let lines = Recorder::record(|| {
        percore_runtime::run(async {}).unwrap();
    });
    for line in lines {
        println!("EVENT {line}");
    }
}

#[test]
fn a_fallback_to_epoll_says_why() {
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
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let fallback = stdout
        .lines()
        .find(|line| line.contains("running on epoll"))
        .unwrap_or_else(|| panic!("{stdout}\n{stderr}"));
    assert!(fallback.contains("EVENT WARN"), "{fallback}");
    assert!(fallback.contains("reason="), "{fallback}");
    assert!(
        fallback.contains("seccomp"),
        "names the likely cause: {fallback}"
    );
    assert!(
        stdout
            .lines()
            .any(|line| line.contains("core started") && line.contains("driver=epoll")),
        "{stdout}"
    );
}
