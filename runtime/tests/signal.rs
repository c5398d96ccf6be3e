//! Signals through the driver: every listener on every core sees each
//! delivery; nothing is left open when the runtime ends.

use std::io;
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::Duration;

use percore_runtime::signal::unix::{signal, SignalKind};
use percore_runtime::time::timeout;
use percore_runtime::{Builder, Runtime};

/// The tests send process-wide signals and count fds: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends `signal` to the process (any thread may take it, as with `kill`).
fn raise(signal: i32) {
    // SAFETY: sends a signal to this process; its handler is installed by the
    // test before it sends.
    assert_eq!(unsafe { libc::kill(libc::getpid(), signal) }, 0, "kill");
}

/// Sends `signal` to this thread: its handler has run when this returns.
fn raise_here(signal: i32) {
    // SAFETY: as in `raise`.
    assert_eq!(unsafe { libc::raise(signal) }, 0, "raise");
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// Far longer than a delivery takes on a loaded machine; reached only if a
/// delivery is lost.
const PATIENCE: Duration = Duration::from_secs(20);

#[test]
fn sigusr1_reaches_a_listener_on_each_of_two_cores() {
    let _serial = serial();
    let fds_before = open_fds();
    let runtime = Runtime::builder().cores(2).build().expect("two cores");
    let listening = Arc::new(Barrier::new(3));
    let mut handles = Vec::new();
    for core in 0..2 {
        let listening = Arc::clone(&listening);
        handles.push(
            runtime
                .spawn_on(core, move || async move {
                    let mut user1 = signal(SignalKind::user_defined1())?;
                    // Listening (handler and eventfd in place) before the signal is sent.
                    listening.wait();
                    timeout(PATIENCE, user1.recv())
                        .await
                        .map_err(|_| io::Error::other("no SIGUSR1 within the patience"))?;
                    io::Result::Ok(percore_runtime::current_core())
                })
                .expect("spawn on a core"),
        );
    }
    listening.wait();
    raise(libc::SIGUSR1);
    let mut cores: Vec<usize> = handles
        .into_iter()
        .map(|handle| {
            runtime
                .run_on(0, move || handle)
                .expect("core 0 runs")
                .expect("the task ended")
                .expect("the signal arrived")
        })
        .collect();
    cores.sort_unstable();
    assert_eq!(cores, [0, 1], "one listener on each core saw it");
    drop(runtime);
    assert_eq!(open_fds(), fds_before, "fd delta after the runtime ended");
}

#[test]
fn many_listeners_on_one_core_each_see_every_delivery() {
    let _serial = serial();
    Builder::new()
        .block_on(async {
            let mut listeners: Vec<_> = (0..10)
                .map(|_| signal(SignalKind::user_defined2()).expect("listen"))
                .collect();
            for round in 0..3 {
                raise(libc::SIGUSR2);
                for (i, listener) in listeners.iter_mut().enumerate() {
                    timeout(PATIENCE, listener.recv())
                        .await
                        .unwrap_or_else(|_| panic!("round {round}: listener {i} missed it"));
                }
            }
        })
        .expect("the runtime starts");
}

#[test]
fn deliveries_between_two_recvs_count_as_one_and_none_is_invented() {
    let _serial = serial();
    Builder::new()
        .block_on(async {
            let mut user2 = signal(SignalKind::user_defined2()).expect("listen");
            // Both handled before the first recv looks.
            raise_here(libc::SIGUSR2);
            raise_here(libc::SIGUSR2);
            timeout(PATIENCE, user2.recv()).await.expect("a delivery");
            // Nothing was sent since: however slow the machine, no recv may
            // complete (the wait only bounds how long we look).
            assert!(
                timeout(Duration::from_millis(200), user2.recv())
                    .await
                    .is_err(),
                "a second recv completed with no delivery after the first"
            );
        })
        .expect("the runtime starts");
}

#[test]
fn a_signal_made_before_a_delivery_reports_it_even_if_recv_comes_later() {
    let _serial = serial();
    Builder::new()
        .block_on(async {
            let mut user1 = signal(SignalKind::user_defined1()).expect("listen");
            raise(libc::SIGUSR1);
            // Let the delivery land before anyone waits.
            for _ in 0..10 {
                percore_runtime::yield_now().await;
            }
            timeout(PATIENCE, user1.recv())
                .await
                .expect("the earlier delivery");
        })
        .expect("the runtime starts");
}

#[test]
fn signals_that_cannot_be_listened_for_are_refused_and_outside_a_runtime_says_so() {
    let _serial = serial();
    Builder::new()
        .block_on(async {
            for raw in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, 0, 99] {
                let err = signal(SignalKind::from_raw(raw)).expect_err("refused");
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{raw}: {err}");
            }
        })
        .expect("the runtime starts");
    let err = signal(SignalKind::user_defined1()).expect_err("no runtime");
    assert!(
        err.to_string().contains("inside a percore runtime"),
        "{err}"
    );
}

#[test]
fn ctrl_c_completes_at_sigint_and_the_process_lives_on() {
    let _serial = serial();
    Builder::new()
        .block_on(async {
            let ctrl_c = percore_runtime::spawn(percore_runtime::signal::ctrl_c());
            // The task has to listen before the signal is sent.
            for _ in 0..10 {
                percore_runtime::yield_now().await;
            }
            raise(libc::SIGINT);
            timeout(PATIENCE, ctrl_c)
                .await
                .expect("ctrl_c completed")
                .expect("the task ran")
                .expect("no error");
        })
        .expect("the runtime starts");
}

#[test]
fn dropped_listeners_leave_no_fd_and_a_later_runtime_listens_again() {
    let _serial = serial();
    let fds_before = open_fds();
    for _ in 0..3 {
        Builder::new()
            .block_on(async {
                let mut user1 = signal(SignalKind::user_defined1()).expect("listen");
                drop(signal(SignalKind::user_defined1()).expect("listen"));
                raise(libc::SIGUSR1);
                timeout(PATIENCE, user1.recv()).await.expect("delivered");
            })
            .expect("the runtime starts");
    }
    assert_eq!(open_fds(), fds_before, "fd delta after three runtimes");
}

#[test]
fn a_signal_kept_past_its_runtime_does_not_deafen_the_next_one() {
    let _serial = serial();
    let kept = Builder::new()
        .block_on(async { signal(SignalKind::user_defined2()).expect("listen") })
        .expect("the runtime starts");
    Builder::new()
        .block_on(async {
            let mut user2 = signal(SignalKind::user_defined2()).expect("listen");
            // Waiting before the signal is sent: only a wake can end it.
            let waiter = percore_runtime::spawn(async move { user2.recv().await });
            for _ in 0..10 {
                percore_runtime::yield_now().await;
            }
            raise(libc::SIGUSR2);
            timeout(PATIENCE, waiter)
                .await
                .expect("delivered in the new runtime")
                .expect("the task ran");
        })
        .expect("the runtime starts");
    drop(kept);
}
