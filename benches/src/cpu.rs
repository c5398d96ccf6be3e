//! CPUs and CPU time: pinning a thread, and how much CPU a process has used.

use std::io;
use std::time::Duration;

/// The CPUs this process may run on, in order (empty if the kernel would not say).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET only reads the set; the index is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Pins the calling thread to `cpu`.
///
/// # Errors
///
/// `cpu` is out of range, or the kernel refused (`sched_setaffinity(2)`).
pub fn pin_to(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is out of range"),
        ));
    }
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` < CPU_SETSIZE (checked above), so CPU_SET writes in bounds.
    unsafe { libc::CPU_SET(cpu, &mut one) };
    // SAFETY: `one` is a valid cpu_set_t of the size passed.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&one), &one) } != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!("pinning to CPU {cpu}: {err}"),
        ));
    }
    Ok(())
}

/// The CPU `i`-th of `count` threads of one side should run on, when `side`
/// takes the CPUs from `first` on (wrapping round the allowed CPUs).
pub fn cpu_for(first: usize, i: usize) -> Option<usize> {
    let cpus = allowed_cpus();
    if cpus.is_empty() {
        return None;
    }
    Some(cpus[(first + i) % cpus.len()])
}

/// CPU time (user + system) used so far by every thread of process `pid`,
/// summed from `/proc/<pid>/task/*/schedstat` (nanoseconds, unlike the
/// 10 ms ticks of `/proc/<pid>/stat`). Threads that already exited are not
/// counted, so read it while the process's threads are alive.
///
/// # Errors
///
/// The process is gone, or `/proc` is not readable.
pub fn process_cpu_time(pid: u32) -> io::Result<Duration> {
    let mut total = 0u64;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = entry?.path().join("schedstat");
        // A thread may exit between the listing and the read.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        total += text
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(Duration::from_nanos(total))
}

/// CPU time used so far by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time used so far by this process, every thread of it, including
/// threads that already exited (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn own_cpu_time() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// The machine, as figures that compare servers depend on it: the CPU's
/// model, the CPUs this process may use, and what one system call costs
/// (`getppid`, the fastest of 5 batches of 100,000 — the least disturbed).
///
/// An io_uring server's edge over an epoll one is mostly system calls it
/// does not make, so ratios measured on hosts whose system calls cost
/// differently (a CPU model, its speculation mitigations) do not compare.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "CPU model unknown".into());
    format!(
        "{model}, {} CPUs allowed, a system call {:.0} ns",
        allowed_cpus().len(),
        syscall_cost().as_secs_f64() * 1e9
    )
}

/// What one `getppid(2)` costs: the fastest of 5 batches of 100,000.
pub fn syscall_cost() -> Duration {
    const CALLS: u32 = 100_000;
    (0..5)
        .map(|_| {
            let start = std::time::Instant::now();
            for _ in 0..CALLS {
                // SAFETY: getppid takes no arguments and cannot fail; the raw
                // call keeps libc from answering without the kernel.
                std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
            }
            start.elapsed() / CALLS
        })
        .min()
        .unwrap_or_default()
}

/// `clock_gettime(id)`; zero if the kernel refuses.
fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_some_cpu() {
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        assert!(x > 0);
        assert!(process_cpu_time(std::process::id()).unwrap() > Duration::ZERO);
        assert!(thread_cpu_time() > Duration::ZERO);
        assert!(!allowed_cpus().is_empty());
    }

    #[test]
    fn the_machine_line_names_a_model_and_a_system_call_cost() {
        let cost = syscall_cost();
        assert!(
            cost > Duration::ZERO && cost < Duration::from_millis(1),
            "{cost:?}"
        );
        let line = machine();
        assert!(line.contains("CPUs allowed, a system call "), "{line}");
        assert!(line.ends_with(" ns"), "{line}");
    }
}
