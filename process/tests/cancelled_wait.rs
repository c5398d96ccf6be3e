//! A wait dropped in flight reaps nothing and loses nothing: the next wait
//! gets the status, and a `Child` dropped after it is still reaped.

mod util;

use std::time::Duration;

use percore_process::Command;
use percore_runtime::time::timeout;

#[test]
fn a_timed_out_wait_then_a_full_one() {
    percore_runtime::run(async {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 0.3; exit 5"])
            .spawn()?;
        let res = timeout(Duration::from_millis(20), child.wait()).await;
        assert!(res.is_err(), "exited early: {res:?}");
        assert_eq!(child.try_wait()?, None);
        assert!(child.id().is_some());
        assert_eq!(child.wait().await?.code(), Some(5));
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

/// Waits dropped right as the child exits: the dropped op may complete
/// (the child exited) or be cancelled; either way the status survives.
#[test]
fn many_waits_dropped_around_the_exit() {
    percore_runtime::run(async {
        for round in 0..200u64 {
            let mut child = Command::new("true").spawn()?;
            let pid = child.id().expect("running");
            // Drop a few waits at different moments of the child's life.
            for i in 0..3 {
                let limit = Duration::from_micros((round * 37 + i * 101) % 700);
                let _ = timeout(limit, child.wait()).await;
            }
            let status = child.wait().await?;
            assert!(status.success(), "round {round}: {status}");
            assert!(util::gone(pid));
        }
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

#[test]
fn dropped_wait_then_dropped_child_is_reaped() {
    let pid = percore_runtime::run(async {
        let mut child = Command::new("sleep").arg("0.2").spawn()?;
        let pid = child.id().expect("running");
        let res = timeout(Duration::from_millis(10), child.wait()).await;
        assert!(res.is_err());
        drop(child);
        std::io::Result::Ok(pid)
    })
    .unwrap()
    .unwrap();
    assert!(
        util::eventually(Duration::from_secs(10), || util::gone(pid)),
        "process {pid} is still there: state {:?}",
        util::state(pid)
    );
}

/// The runtime ends with a task in `wait`: the wait is dropped with the
/// task, the `Child` with it, and the child is still reaped when it exits.
#[test]
fn a_wait_in_flight_when_the_runtime_ends() {
    let pids = percore_runtime::run(async {
        let mut pids = Vec::new();
        for kill_on_drop in [false, true] {
            let mut child = Command::new("sleep")
                .arg("0.2")
                .kill_on_drop(kill_on_drop)
                .spawn()?;
            pids.push(child.id().expect("running"));
            drop(percore_runtime::spawn(async move { child.wait().await }));
        }
        // Let both tasks start their wait.
        percore_runtime::yield_now().await;
        std::io::Result::Ok(pids)
    })
    .unwrap()
    .unwrap();
    for pid in pids {
        assert!(
            util::eventually(Duration::from_secs(10), || util::gone(pid)),
            "process {pid} is still there: state {:?}",
            util::state(pid)
        );
    }
}
