//! Reaps children dropped while still running, so none is left a zombie.
//!
//! A [`Child`](crate::Child) dropped before its exit was seen hands a
//! duplicate of its pidfd here. One thread per process, started on demand,
//! polls every such pidfd (and an eventfd that says a new one arrived) and
//! reaps each process as it exits; it ends once it has none left to watch.
//! A thread rather than a task of the core: a child may outlive the core and
//! the runtime, and a `Child` may be dropped off any core.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use crate::sys;

struct State {
    /// Pidfds handed over and not yet taken by the thread.
    queue: Vec<OwnedFd>,
    /// The running thread's wake-up, if a thread runs.
    wake: Option<Arc<OwnedFd>>,
}

static STATE: Mutex<State> = Mutex::new(State {
    queue: Vec::new(),
    wake: None,
});

fn lock() -> std::sync::MutexGuard<'static, State> {
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reaps process `pid` (a child of this process, not reaped yet, whose
/// pidfd is `pidfd`) once it exits.
pub(crate) fn reap_later(pidfd: &OwnedFd, pid: u32) {
    let Ok(pidfd) = pidfd.try_clone() else {
        return reap_alone(pid);
    };
    let mut state = lock();
    if let Some(wake) = state.wake.clone() {
        state.queue.push(pidfd);
        sys::eventfd_signal(&wake);
        return;
    }
    let started = sys::eventfd().map(Arc::new).and_then(|wake| {
        let theirs = wake.clone();
        std::thread::Builder::new()
            .name("percore-reaper".into())
            .spawn(move || watch(&theirs))
            .map(|_| wake)
    });
    match started {
        Ok(wake) => {
            state.queue.push(pidfd);
            state.wake = Some(wake);
        }
        Err(_) => {
            drop(state);
            reap_alone(pid);
        }
    }
}

/// Out of fds or threads: a plain thread that waits for `pid` alone (the pid
/// is still ours: nothing else reaps it), or, if even that cannot start,
/// nothing more can be done here.
fn reap_alone(pid: u32) {
    let _ = std::thread::Builder::new()
        .name("percore-reaper".into())
        .spawn(move || sys::reap_blocking(pid));
}

/// The reaper thread: polls its pidfds until none is left.
fn watch(wake: &OwnedFd) {
    let mut watched: Vec<OwnedFd> = Vec::new();
    loop {
        {
            let mut state = lock();
            watched.append(&mut state.queue);
            if watched.is_empty() {
                state.wake = None;
                return;
            }
        }
        let fds: Vec<RawFd> = std::iter::once(wake.as_raw_fd())
            .chain(watched.iter().map(AsRawFd::as_raw_fd))
            .collect();
        let Ok(ready) = sys::poll_readable(&fds) else {
            // Never expected (EINTR is retried); reap what can be and go on.
            std::thread::sleep(std::time::Duration::from_millis(10));
            watched.retain(|pidfd| matches!(sys::try_reap(pidfd.as_raw_fd()), Ok(None)));
            continue;
        };
        if ready[0] {
            sys::eventfd_drain(wake);
        }
        let mut index = 0;
        let mut unreapable = false;
        watched.retain(|pidfd| {
            index += 1;
            if !ready[index] {
                return true;
            }
            // A readable pidfd: the process exited. Reaped (or reaped by
            // someone else already, `ECHILD`): done with it.
            let keep = matches!(sys::try_reap(pidfd.as_raw_fd()), Ok(None));
            unreapable |= keep;
            keep
        });
        if unreapable {
            // Readable yet not reapable (a tracer sees the exit first): do
            // not spin on it.
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
