//! An idle runtime sleeps in the kernel: its threads use (almost) no CPU.
//! (Alone in its file: CPU time is measured for the whole test process.)

use std::time::Duration;

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

#[test]
fn an_idle_runtime_uses_under_5ms_of_cpu_per_second() {
    idle_cpu_check(Duration::ZERO);
    // Spinning before parking costs CPU only when a core runs out of work, not
    // while it stays idle.
    idle_cpu_check(Duration::from_micros(200));
}

fn idle_cpu_check(spin: Duration) {
    let runtime = percore_runtime::Runtime::builder()
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
    std::thread::sleep(Duration::from_millis(50));
    let before = cpu_time();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time() - before;
    assert!(
        used < Duration::from_millis(5),
        "an idle runtime (spin {spin:?}) used {used:?} of CPU in 1 s"
    );
    // Still responsive after the idle second.
    assert_eq!(runtime.run_on(1, || async { 7 }).unwrap(), 7);
}
