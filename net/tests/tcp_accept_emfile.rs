//! Out of fds: accept errors surface, the server backs off instead of spinning,
//! and it serves the waiting connections once fds are free again.
//!
//! Runs in a child process (this test binary re-executed with an env var),
//! since it lowers `RLIMIT_NOFILE` for the whole process.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use percore_net::TcpListener;
use percore_runtime::{spawn, time::sleep};

const CHILD_ENV: &str = "PERCORE_NET_EMFILE_CHILD";
const PENDING: usize = 16;
/// How long the server is left starved (and a thread spins, for comparison).
const WINDOW: Duration = Duration::from_millis(500);

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` only writes the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a `rusage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

fn set_fd_limit(limit: u64) {
    let rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: a valid pointer to an `rlimit`.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) };
    assert_eq!(rc, 0, "setrlimit");
}

/// The fd limit that leaves exactly `free` unused fd numbers below it (the
/// kernel hands out the lowest free number, and none at or above the limit).
fn limit_leaving(free: usize) -> u64 {
    let open: std::collections::HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .collect();
    (0..)
        .filter(|fd| !open.contains(fd))
        .nth(free)
        .unwrap_or(u64::MAX)
}

/// CPU this process uses while one thread spins for `WINDOW`, and the wall
/// time that took: what a spinning accept loop would get on this machine, as
/// busy as it is now.
fn busy_thread_cpu() -> (Duration, Duration) {
    let (before, start) = (cpu_time(), Instant::now());
    std::thread::spawn(|| {
        let start = Instant::now();
        while start.elapsed() < WINDOW {
            std::hint::spin_loop();
        }
    })
    .join()
    .unwrap();
    (cpu_time() - before, start.elapsed())
}

fn starved_server() {
    let (busy_cpu, busy_wall) = busy_thread_cpu();
    percore_runtime::run(async move {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        // The clients connect now; their connections wait in the backlog.
        let clients: Vec<_> = (0..PENDING)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        // Room for two more fds (`read_dir` above closed the one it used).
        set_fd_limit(limit_leaving(2));

        let held = Rc::new(RefCell::new(Vec::new()));
        let hold = Rc::new(Cell::new(true));
        let (accepted, errors) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let (h, k, a, e) = (held.clone(), hold.clone(), accepted.clone(), errors.clone());
        let _server = spawn(async move {
            let mut incoming = listener.incoming();
            while let Some(next) = incoming.next().await {
                match next {
                    Ok(stream) => {
                        a.set(a.get() + 1);
                        if k.get() {
                            h.borrow_mut().push(stream);
                        }
                    }
                    Err(err) => {
                        assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
                        e.set(e.get() + 1);
                    }
                }
            }
        });

        for _ in 0..5000 {
            if errors.get() > 0 {
                break;
            }
            sleep(Duration::from_millis(1)).await;
        }
        let errors_at_start = errors.get();
        let (before, start) = (cpu_time(), Instant::now());
        sleep(WINDOW).await;
        let (starved_cpu, starved_wall) = (cpu_time() - before, start.elapsed());
        let errors_starved = errors.get() - errors_at_start;
        let accepted_starved = accepted.get();

        // Free the fds: the waiting connections must all get through.
        hold.set(false);
        held.borrow_mut().clear();
        for _ in 0..10_000 {
            if accepted.get() == PENDING {
                break;
            }
            sleep(Duration::from_millis(1)).await;
        }
        println!(
            "RESULT errors={errors_at_start} accepted_starved={accepted_starved} \
             starved_cpu_us={} starved_wall_us={} busy_cpu_us={} busy_wall_us={} \
             errors_while_starved={errors_starved} accepted={} fd={}",
            starved_cpu.as_micros(),
            starved_wall.as_micros(),
            busy_cpu.as_micros(),
            busy_wall.as_micros(),
            accepted.get(),
            clients[0].as_raw_fd(),
        );
    })
    .unwrap();
}

/// Runs only in the child process the parent test starts.
#[test]
fn child() {
    if std::env::var_os(CHILD_ENV).is_some() {
        starved_server();
    }
}

fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[test]
fn accept_errors_surface_without_spinning_and_the_server_recovers() {
    let exe = std::env::current_exe().expect("test binary path");
    let output = Command::new(exe)
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|line| line.split_once("RESULT").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no result: {stdout}\n{stderr}"));
    eprintln!("child:{line}");
    assert!(field(line, "errors") >= 1, "EMFILE surfaced: {line}");
    assert!(field(line, "accepted_starved") < PENDING as u64, "{line}");
    assert_eq!(
        field(line, "accepted"),
        PENDING as u64,
        "all served after: {line}"
    );
    // Backing off costs next to nothing; a spinning accept loop would get as
    // much CPU as the thread that spun on purpose, however busy the machine.
    // (Rates, CPU per wall second: a busy machine stretches both windows.)
    let rate = |cpu: &str, wall: &str| field(line, cpu) as f64 / field(line, wall).max(1) as f64;
    let starved = rate("starved_cpu_us", "starved_wall_us");
    let busy = rate("busy_cpu_us", "busy_wall_us");
    assert!(
        starved * 10.0 < busy,
        "spun while starved ({starved:.3} CPUs, a spinning thread {busy:.3}): {line}"
    );
    // Tries back off from 1 ms, doubling up to 100 ms: about 7 to reach
    // 100 ms, then one per 100 ms of the window, however long load made it.
    // A loop that retries at once makes thousands.
    let most = 2 * (10 + field(line, "starved_wall_us") / 100_000);
    assert!(
        field(line, "errors_while_starved") <= most,
        "retried too often (more than {most}): {line}"
    );
}
