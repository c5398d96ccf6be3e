//! A task that blocks its core is reported with core, duration and spawn site.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use percore_runtime::{Builder, StallReport};

#[test]
fn a_task_blocking_for_200ms_is_reported() {
    let reports: Arc<Mutex<Vec<StallReport>>> = Arc::default();
    let sink = reports.clone();
    let line = line!() + 6;
    Builder::new()
        .stall_threshold(Some(Duration::from_millis(50)))
        .on_stall(move |report| sink.lock().unwrap().push(report.clone()))
        .block_on(async {
            let quick = percore_runtime::spawn(async { 1 });
            let blocker = percore_runtime::spawn(async {
                std::thread::sleep(Duration::from_millis(200));
            });
            quick.await.unwrap();
            blocker.await.unwrap();
            assert!(percore_runtime::stats().stalls >= 1);
        })
        .unwrap();
    // On a loaded machine another poll may be preempted past 50 ms and be
    // reported too; the blocking one must be among the reports, once.
    // (`time_paused.rs` checks "exactly one, of exactly its length" on a
    // paused clock, where load cannot add to a poll's duration.)
    let reports = reports.lock().unwrap();
    let blocking: Vec<_> = reports
        .iter()
        .filter(|r| r.location.line() == line)
        .collect();
    assert_eq!(
        blocking.len(),
        1,
        "the blocking poll is reported once: {reports:?}"
    );
    let report = blocking[0];
    assert_eq!(report.core, 0);
    assert!(report.duration >= Duration::from_millis(190), "{report:?}");
    assert!(
        report.location.file().ends_with("stall_detector.rs"),
        "{report:?}"
    );
    assert_eq!(
        report.location.line(),
        line,
        "the spawn site of the blocking task"
    );
}
