//! A `Child` dropped without a wait is reaped: at once if it already exited,
//! when it exits otherwise — also after the runtime is gone.

mod util;

use std::time::Duration;

use percore_process::Command;

const LIMIT: Duration = Duration::from_secs(10);

fn assert_gone(pid: u32) {
    assert!(
        util::eventually(LIMIT, || util::gone(pid)),
        "process {pid} is still there: state {:?}",
        util::state(pid)
    );
}

#[test]
fn dropped_after_exit_is_reaped_at_once() {
    percore_runtime::run(async {
        let child = Command::new("true").spawn()?;
        let pid = child.id().expect("running");
        // Let it exit (a zombie until reaped).
        assert!(util::eventually(LIMIT, || util::state(pid) == Some('Z')));
        drop(child);
        assert!(util::gone(pid), "state {:?}", util::state(pid));
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

#[test]
fn dropped_while_running_is_reaped_when_it_exits() {
    let pids = percore_runtime::run(async {
        let mut pids = Vec::new();
        for i in 0..20 {
            let child = Command::new("sleep")
                .arg(format!("0.{:02}", 5 + i))
                .spawn()?;
            pids.push(child.id().expect("running"));
        }
        std::io::Result::Ok(pids)
    })
    .unwrap()
    .unwrap();
    for pid in pids {
        assert_gone(pid);
    }
}

#[test]
fn dropped_after_the_runtime_is_gone() {
    // `run` returns the child: it outlives its core.
    let child = percore_runtime::run(async { Command::new("sleep").arg("0.1").spawn() })
        .unwrap()
        .unwrap();
    let pid = child.id().expect("running");
    drop(child);
    assert_gone(pid);
}
