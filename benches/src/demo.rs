//! The demo workloads: each runs on a fresh percore runtime, times itself from
//! inside the runtime (so ring setup and teardown are not counted), and checks
//! its own result so a wrong answer is never reported as a fast one.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use percore::op::Nop;
use percore::time::{self, Instant};
use percore::{Builder, Op, Runtime};

use crate::cli::Rw;
use crate::fs_job::{self, Job, JobResult};
use crate::fs_layout::{self, TempFile};
use crate::load::{self, LoadConfig, LoadResult};
use crate::server::{Placement, Protocol, Server};

/// Workload sizes; `--quick` divides each by 10.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Tasks spawned and joined.
    pub tasks: usize,
    /// Concurrent sleeps.
    pub sleeps: usize,
    /// NOP operations.
    pub nops: usize,
    /// NOPs kept in flight at once.
    pub nops_in_flight: usize,
    /// Cores in the `run_on_all` smoke.
    pub cores: usize,
    /// Length of one echo or HTTP load run.
    pub net_run: Duration,
    /// Connections of the echo and HTTP runs.
    pub connections: usize,
    /// Bytes of the file of the random-read run.
    pub fs_size: u64,
    /// Length of one random-read run.
    pub fs_run: Duration,
}

impl Sizes {
    /// The sizes the README quotes.
    pub const FULL: Sizes = Sizes {
        tasks: 1_000_000,
        sleeps: 100_000,
        nops: 100_000,
        nops_in_flight: 64,
        cores: 2,
        net_run: Duration::from_secs(1),
        connections: 64,
        fs_size: 64 << 20,
        fs_run: Duration::from_secs(1),
    };

    /// A tenth of [`Sizes::FULL`] (cores and depth unchanged).
    pub fn quick() -> Sizes {
        Sizes {
            tasks: 100_000,
            sleeps: 10_000,
            nops: 10_000,
            net_run: Duration::from_millis(200),
            fs_size: 16 << 20,
            fs_run: Duration::from_millis(200),
            ..Sizes::FULL
        }
    }
}

/// One run of spawn+join.
#[derive(Debug, Clone, Copy)]
pub struct SpawnJoin {
    /// From the first spawn to the last join.
    pub elapsed: Duration,
}

/// One run of the concurrent sleeps.
#[derive(Debug, Clone, Copy)]
pub struct Sleeps {
    /// From the first spawn to the last completion.
    pub wall: Duration,
    /// The last completion minus the latest deadline of any task.
    pub overshoot: Duration,
}

/// One run of the NOP workload.
#[derive(Debug, Clone, Copy)]
pub struct Nops {
    /// From the first submission to the last completion.
    pub elapsed: Duration,
    /// `io_uring_enter` calls during the run.
    pub enters: u64,
    /// Submission entries pushed during the run.
    pub sqes: u64,
}

/// One run of the multi-core smoke.
#[derive(Debug, Clone, Copy)]
pub struct Smoke {
    /// From `run_on_all` being called to every core's answer being back.
    pub wall: Duration,
}

/// A single-core runtime for the demo. The stall detector is off because the
/// spawn loop is one poll that creates a million tasks, which is the point of
/// the workload, not a stall.
fn builder() -> Builder {
    Builder::new().stall_threshold(None)
}

fn wrong(what: String) -> io::Error {
    io::Error::other(what)
}

/// Spawns `n` tasks that each return their index, keeps every handle, then
/// awaits them in order and checks the sum.
///
/// # Errors
///
/// The runtime did not start, a task failed, or the sum is wrong.
pub fn spawn_join(n: usize) -> io::Result<SpawnJoin> {
    builder().block_on(async move {
        let start = Instant::now();
        let handles: Vec<_> = (0..n as u64)
            .map(|i| percore::spawn(async move { i }))
            .collect();
        let mut sum = 0u64;
        for handle in handles {
            sum += handle
                .await
                .map_err(|err| wrong(format!("spawn+join: a task failed: {err}")))?;
        }
        let elapsed = start.elapsed();
        let expected = (n as u64) * (n as u64).saturating_sub(1) / 2;
        if sum != expected {
            return Err(wrong(format!(
                "spawn+join: sum of outputs {sum}, expected {expected}"
            )));
        }
        Ok(SpawnJoin { elapsed })
    })?
}

/// Spawns `n` tasks where task `i` sleeps `1 + i % 100` ms, and awaits all.
///
/// # Errors
///
/// The runtime did not start, a task failed, or a sleep ended early.
pub fn sleeps(n: usize) -> io::Result<Sleeps> {
    builder().block_on(async move {
        let start = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|i| {
                percore::spawn(async move {
                    let sleep = time::sleep(Duration::from_millis(1 + (i % 100) as u64));
                    let deadline = sleep.deadline();
                    sleep.await;
                    (deadline, Instant::now())
                })
            })
            .collect();
        let mut last_deadline = start;
        let mut last_done = start;
        for handle in handles {
            let (deadline, done) = handle
                .await
                .map_err(|err| wrong(format!("sleeps: a task failed: {err}")))?;
            if done < deadline {
                return Err(wrong(format!(
                    "sleeps: a sleep ended {:?} before its deadline",
                    deadline - done
                )));
            }
            last_deadline = last_deadline.max(deadline);
            last_done = last_done.max(done);
        }
        Ok(Sleeps {
            wall: last_done - start,
            overshoot: last_done - last_deadline,
        })
    })?
}

/// Runs `n` NOP operations with `depth` in flight (one task per slot, each
/// submitting its share back to back) and reads the core's counters around it.
///
/// # Errors
///
/// The runtime did not start, or an operation failed.
pub fn nops(n: usize, depth: usize) -> io::Result<Nops> {
    let depth = depth.clamp(1, n.max(1));
    builder().block_on(async move {
        let failed: Rc<Cell<Option<io::Error>>> = Rc::new(Cell::new(None));
        let before = percore::stats();
        let start = Instant::now();
        let handles: Vec<_> = (0..depth)
            .map(|slot| {
                // Spread the remainder so exactly `n` ops run.
                let share = n / depth + usize::from(slot < n % depth);
                let failed = failed.clone();
                percore::spawn(async move {
                    for _ in 0..share {
                        if let Err(err) = Op::new(Nop::new()).await {
                            failed.set(Some(err));
                            return;
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle
                .await
                .map_err(|err| wrong(format!("nops: a task failed: {err}")))?;
        }
        let elapsed = start.elapsed();
        let after = percore::stats();
        if let Some(err) = failed.take() {
            return Err(io::Error::new(
                err.kind(),
                format!("nops: a NOP failed: {err}"),
            ));
        }
        Ok(Nops {
            elapsed,
            enters: after.enters - before.enters,
            sqes: after.sqes - before.sqes,
        })
    })?
}

/// Starts a pinned multi-core runtime and, on every core at once, spawns and
/// joins `tasks` tasks, sleeps 1 ms and runs one NOP; checks each core answered
/// as itself. Building and dropping the runtime are not timed.
///
/// # Errors
///
/// The runtime did not start (e.g. pinning refused), or a core answered wrong.
pub fn smoke(cores: usize, tasks: usize) -> io::Result<Smoke> {
    let runtime = Runtime::builder()
        .cores(cores)
        .pin(true)
        .stall_threshold(None)
        .build()
        .map_err(|err| io::Error::new(err.kind(), format!("starting {cores} cores: {err}")))?;
    let start = Instant::now();
    let answers = runtime.run_on_all(move |core| async move {
        let handles: Vec<_> = (0..tasks as u64)
            .map(|i| percore::spawn(async move { i }))
            .collect();
        let mut sum = 0u64;
        for handle in handles {
            sum += handle
                .await
                .map_err(|err| format!("a task failed: {err}"))?;
        }
        time::sleep(Duration::from_millis(1)).await;
        Op::new(Nop::new())
            .await
            .map_err(|err| format!("NOP failed: {err}"))?;
        Ok::<_, String>((core, percore::current_core(), sum))
    })?;
    let wall = start.elapsed();
    let expected = (tasks as u64) * (tasks as u64).saturating_sub(1) / 2;
    for (index, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok((core, current, sum)) if core == index && current == index && sum == expected => {}
            Ok((core, current, sum)) => {
                return Err(wrong(format!(
                    "run_on_all: slot {index} answered core {core} (current_core {current}), \
                     sum {sum}, expected core {index}, sum {expected}"
                )))
            }
            Err(err) => return Err(wrong(format!("run_on_all: core {index}: {err}"))),
        }
    }
    drop(runtime);
    Ok(Smoke { wall })
}

/// One load run against a percore server in this process.
#[derive(Debug, Clone)]
pub struct NetRun {
    /// What the client measured.
    pub load: LoadResult,
    /// CPU time of the server's core during the run.
    pub server_cpu: Duration,
    /// The server core's `io_uring_enter` calls during the run.
    pub enters: u64,
    /// The server core's SQEs during the run.
    pub sqes: u64,
}

/// Starts a one-core percore server on 127.0.0.1 (first CPU) and loads it
/// from one client core (second CPU) with `connections` connections for `duration`.
///
/// # Errors
///
/// The server or client cannot start, or no connection could be made.
pub fn net(
    protocol: Protocol,
    size: usize,
    connections: usize,
    duration: Duration,
) -> io::Result<NetRun> {
    let server = Server::start(
        protocol,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        1,
        Some(0),
        Placement::Kernel,
    )?;
    let config = LoadConfig {
        target: server.addr(),
        protocol,
        size,
        connections,
        duration,
        cores: 1,
        rate: None,
        first_cpu: Some(1),
        progress: false,
        send_alone: false,
    };
    let (cpu_before, stats_before) = (server.cpu_time()?, server.stats()?);
    let load = load::run(&config)?;
    let (cpu_after, stats_after) = (server.cpu_time()?, server.stats()?);
    if load.errors > 0 {
        return Err(wrong(format!(
            "{protocol}: {} requests failed, first: {}",
            load.errors,
            load.first_error.as_deref().unwrap_or("?")
        )));
    }
    Ok(NetRun {
        load,
        server_cpu: cpu_after.saturating_sub(cpu_before),
        enters: stats_after.enters - stats_before.enters,
        sqes: stats_after.sqes - stats_before.sqes,
    })
}

/// The random-read job of the demo: 4 KiB, 32 in flight, buffered (the page
/// cache is warm: the file was just written), one core.
pub fn fs_randread_job(size: u64, duration: Duration) -> Job {
    Job {
        rw: Rw::RandRead,
        bs: 4096,
        iodepth: 32,
        direct: false,
        size,
        duration,
        cores: 1,
        progress: false,
    }
}

/// Lays out a `size`-byte file in the temp dir, runs [`fs_randread_job`] on it `runs`
/// times, and removes it.
///
/// # Errors
///
/// The file cannot be laid out (temp dir full or read-only) or a read fails.
pub fn fs_randread(size: u64, duration: Duration, runs: usize) -> io::Result<Vec<JobResult>> {
    let file = TempFile::new("demo");
    fs_layout::lay_out(file.path(), size)?;
    let job = fs_randread_job(size, duration);
    (0..runs).map(|_| fs_job::run(&job, file.path())).collect()
}
