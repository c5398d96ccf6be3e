//! `kill_on_drop(true)`: dropping the `Child` (or a `status` future) kills
//! the process and leaves nothing behind in `/proc`, not even a zombie.

mod util;

use std::time::Duration;

use percore_process::Command;
use percore_runtime::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn dropped_child_is_killed_and_reaped() {
    let pids = percore_runtime::run(async {
        let mut pids = Vec::new();
        for _ in 0..20 {
            let child = Command::new("sleep")
                .arg("100")
                .kill_on_drop(true)
                .spawn()?;
            let pid = child.id().expect("running");
            assert!(!util::gone(pid));
            drop(child);
            pids.push(pid);
        }
        std::io::Result::Ok(pids)
    })
    .unwrap()
    .unwrap();
    for pid in pids {
        assert!(
            util::eventually(LIMIT, || util::gone(pid)),
            "process {pid} is still there: state {:?}",
            util::state(pid)
        );
    }
}

#[test]
fn dropped_status_future_kills_its_child() {
    percore_runtime::run(async {
        // `sleep` writes its pid first, so the test knows whom to look for.
        let mut command = Command::new("sh");
        command.args(["-c", "echo $$ > \"$0\"; exec sleep 100"]);
        let file =
            std::env::temp_dir().join(format!("percore-kill-on-drop-{}", std::process::id()));
        command.arg(&file).kill_on_drop(true);
        let res = timeout(Duration::from_millis(300), command.status()).await;
        assert!(res.is_err(), "sleep 100 finished early: {res:?}");
        let pid: u32 = std::fs::read_to_string(&file)?
            .trim()
            .parse()
            .expect("a pid");
        std::fs::remove_file(&file)?;
        assert!(
            util::eventually(LIMIT, || util::gone(pid)),
            "process {pid} is still there: state {:?}",
            util::state(pid)
        );
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
}

#[test]
fn without_kill_on_drop_the_child_runs_on_and_is_reaped_at_exit() {
    let pid = percore_runtime::run(async {
        let child = Command::new("sleep").arg("100").spawn()?;
        let pid = child.id().expect("running");
        drop(child);
        std::io::Result::Ok(pid)
    })
    .unwrap()
    .unwrap();
    // The runtime is gone, the child is not.
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        matches!(util::state(pid), Some(state) if state != 'Z'),
        "{:?}",
        util::state(pid)
    );
    // SAFETY: sending a signal to a pid we spawned and that is not reaped yet.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    assert!(
        util::eventually(LIMIT, || util::gone(pid)),
        "process {pid} is still there: state {:?}",
        util::state(pid)
    );
}
