//! An idle runtime sleeps in the kernel: its threads use (almost) no CPU.
//! (Alone in its file: CPU time is measured for the whole test process.)
//!
//! How much CPU "almost none" is depends on the machine, and how much a
//! spinning core would get depends on how busy the machine is, so the idle
//! runtime is compared with a thread that spins on purpose over a window of
//! the same length, right before. And since CPU alone misses a core woken
//! often but briefly, each core also counts its parks over the window: that
//! count depends on what woke the core, not on how fast the machine is.

use std::time::{Duration, Instant};

use percore_runtime::{Runtime, Stats};

/// How long the runtime is left idle (and the busy thread spins).
const WINDOW: Duration = Duration::from_secs(1);

fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage for getrusage to fill.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    // SAFETY: getrusage succeeded, so it initialised the struct.
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU this process uses while one thread spins for `WINDOW`: what a core
/// that never sleeps would get on this machine, as busy as it is now.
fn busy_thread_cpu() -> Duration {
    let before = cpu_time();
    std::thread::spawn(|| {
        let start = Instant::now();
        while start.elapsed() < WINDOW {
            std::hint::spin_loop();
        }
    })
    .join()
    .unwrap();
    cpu_time() - before
}

fn stats_of_every_core(runtime: &Runtime) -> Vec<Stats> {
    runtime
        .run_on_all(|_| async { percore_runtime::stats() })
        .unwrap()
}

#[test]
fn an_idle_runtime_uses_next_to_no_cpu() {
    idle_cpu_check(Duration::ZERO);
    // Spinning before parking costs CPU only when a core runs out of work, not
    // while it stays idle.
    idle_cpu_check(Duration::from_micros(200));
}

fn idle_cpu_check(spin: Duration) {
    let runtime = Runtime::builder()
        .cores(2)
        .spin_before_park(spin)
        .build()
        .unwrap();
    // Some work first, so every core has run, armed its wake read and parked.
    runtime
        .run_on_all(|_| async {
            percore_runtime::time::sleep(Duration::from_millis(5)).await;
        })
        .unwrap();
    let busy = busy_thread_cpu();
    let before = stats_of_every_core(&runtime);
    let cpu_before = cpu_time();
    std::thread::sleep(WINDOW);
    let used = cpu_time() - cpu_before;
    let after = stats_of_every_core(&runtime);
    eprintln!("spin {spin:?}: idle runtime {used:?} of CPU, spinning thread {busy:?}");
    // A core that spins or polls while idle gets about what the busy thread
    // got; an idle one gets next to nothing.
    assert!(
        used * 10 < busy,
        "an idle runtime (spin {spin:?}) used {used:?} of CPU in {WINDOW:?}, \
         a spinning thread {busy:?}"
    );
    // Between the two snapshots an idle core parks once (after the first)
    // and wakes for the second; a core woken every 10 ms would park 100 times.
    for (before, after) in before.iter().zip(&after) {
        let parks = after.parks - before.parks;
        let spins = after.spins - before.spins;
        assert!(
            parks <= 10 && spins <= 10,
            "core {} (spin {spin:?}) parked {parks} and polled {spins} times in an idle {WINDOW:?}",
            after.core
        );
    }
    // Still responsive after the idle window.
    assert_eq!(runtime.run_on(1, || async { 7 }).unwrap(), 7);
}
