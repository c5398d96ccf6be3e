//! The progress bar of runs over a second: a thread that redraws an
//! `indicatif` bar on stderr every 100 ms (indicatif draws nothing when stderr
//! is not a terminal) until the run ends; and a spinner for work of unknown length.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs this long or shorter get no bar.
const MIN_RUN: Duration = Duration::from_secs(1);

/// A bar for one run; cleared when dropped.
#[derive(Debug)]
pub struct Progress {
    finished: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts a bar over `duration` showing the seconds gone and, with a
    /// counter, what it counts (`done`, named `what`: "responses", "ops") and
    /// its rate. `None` for runs of a second or less.
    pub fn start(
        duration: Duration,
        done: Option<Arc<AtomicU64>>,
        what: &'static str,
    ) -> Option<Progress> {
        if duration <= MIN_RUN {
            return None;
        }
        let finished = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let finished = finished.clone();
            move || draw(duration, done, what, &finished)
        });
        Some(Progress {
            finished,
            thread: Some(thread),
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finished.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A spinner with a message, for work of unknown length (laying a file out);
/// cleared when dropped.
#[derive(Debug)]
pub struct Status(indicatif::ProgressBar);

impl Status {
    /// Shows `message` beside a spinner until dropped.
    pub fn show(message: String) -> Status {
        let bar = indicatif::ProgressBar::new_spinner().with_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        Status(bar)
    }
}

impl Drop for Status {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

fn draw(duration: Duration, done: Option<Arc<AtomicU64>>, what: &str, finished: &AtomicBool) {
    let bar = indicatif::ProgressBar::new(duration.as_millis() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    while !finished.load(Ordering::Acquire) {
        let elapsed = start.elapsed();
        bar.set_position(elapsed.as_millis().min(duration.as_millis()) as u64);
        let seconds = format!(
            "{:.1}/{:.1} s",
            elapsed.as_secs_f64().min(duration.as_secs_f64()),
            duration.as_secs_f64()
        );
        bar.set_message(match &done {
            Some(done) => {
                let count = done.load(Ordering::Relaxed);
                let rate = count as f64 / elapsed.as_secs_f64().max(1e-3);
                format!("{seconds}, {count} {what} ({rate:.0}/s)")
            }
            None => format!("{seconds}, {what}"),
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}
