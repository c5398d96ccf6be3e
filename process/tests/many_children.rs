//! 1,000 short children, spawned 50 at a time: every one reaped, no zombie
//! and no fd left.

mod util;

use std::time::Duration;

use percore_process::Command;

const CHILDREN: usize = 1_000;
const AT_ONCE: usize = 50;

#[test]
fn a_thousand_short_children_leave_no_zombie() {
    let fds_before = util::open_fds();
    percore_runtime::run(async {
        for batch in 0..CHILDREN / AT_ONCE {
            let tasks: Vec<_> = (0..AT_ONCE)
                .map(|i| {
                    percore_runtime::spawn(async move {
                        let mut child = Command::new("true").spawn()?;
                        // Every tenth is dropped without a wait: the
                        // reaper's job.
                        if (batch * AT_ONCE + i) % 10 == 9 {
                            drop(child);
                            return Ok(None);
                        }
                        child.wait().await.map(Some)
                    })
                })
                .collect();
            for task in tasks {
                if let Some(status) = task.await.expect("task")? {
                    assert!(status.success(), "{status}");
                }
            }
        }
        std::io::Result::Ok(())
    })
    .unwrap()
    .unwrap();
    assert!(
        util::eventually(Duration::from_secs(10), || util::zombies().is_empty()),
        "zombies left: {:?}",
        util::zombies()
    );
    assert!(
        util::eventually(Duration::from_secs(10), || util::children().is_empty()),
        "children left: {:?}",
        util::children()
    );
    // The pidfds are closed (and the reaper thread's eventfd once it ends).
    assert!(
        util::eventually(Duration::from_secs(10), || util::open_fds() <= fds_before),
        "fds: {fds_before} before, {} after",
        util::open_fds()
    );
}
