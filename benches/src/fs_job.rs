//! One fio-like file job on percore: on a file already laid out
//! ([`fs_layout`](crate::fs_layout)), keep `iodepth` reads or writes in
//! flight per core for a fixed time, timing each from issue to completion
//! into an HDR histogram.
//!
//! Core `i` of `n` works on its own share of the file (the `i`-th `size / n`
//! bytes), as fio's `numjobs` with `offset_increment` does. Random jobs draw
//! `bs`-aligned offsets in that share; sequential ones take the next block
//! from a cursor shared by the core's tasks, wrapping round at the end. Each
//! task is one read or write in flight, reusing one buffer: `DmaFile` and a
//! `DmaBuffer` aligned for the file with `--direct`, `File` otherwise. Writes
//! send noise (and their offset in the first 8 bytes); a read or write that
//! moves fewer than `bs` bytes fails the run.

use std::cell::{Cell, RefCell};
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use percore::fs::{DmaBuffer, DmaFile, File, OpenOptions};
use percore::time::timeout_at;
use percore::Runtime;

use crate::cli::Rw;
use crate::cpu;
use crate::fs_layout::Rng;
use crate::load::{new_histogram, TIMELINE_STEP};
use crate::progress::Progress;

/// After the end of the run, how long ops in flight may still take.
const GRACE: Duration = Duration::from_secs(2);

/// What to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The access pattern.
    pub rw: Rw,
    /// Bytes per read or write.
    pub bs: usize,
    /// Reads or writes in flight per core.
    pub iodepth: usize,
    /// `O_DIRECT` (`DmaFile`), else buffered (`File`).
    pub direct: bool,
    /// Bytes of the file covered, split evenly over the cores.
    pub size: u64,
    /// How long to issue reads or writes.
    pub duration: Duration,
    /// percore cores, pinned from the first allowed CPU.
    pub cores: usize,
    /// Show a progress bar on stderr (runs over a second).
    pub progress: bool,
}

impl Job {
    /// Whole blocks of `bs` in each core's share of the file.
    fn blocks_per_core(&self) -> u64 {
        self.size / self.cores.max(1) as u64 / self.bs.max(1) as u64
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// Reads or writes completed before the end.
    pub ops: u64,
    /// Bytes they moved.
    pub bytes: u64,
    /// The measured interval.
    pub elapsed: Duration,
    /// Latency of each op, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Ops completed in each [`TIMELINE_STEP`] from the start.
    pub timeline: Vec<u64>,
}

impl JobResult {
    /// Ops per second.
    pub fn iops(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// MiB per second.
    pub fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `job` on `path` (already laid out) and waits for it to finish.
///
/// # Errors
///
/// The runtime cannot start, the file cannot be opened (`O_DIRECT` refused),
/// `bs` is not a multiple of its direct I/O alignment, or a read or write
/// fails or is short. The message names the path.
pub fn run(job: &Job, path: &Path) -> io::Result<JobResult> {
    let runtime = Runtime::builder()
        .cores(job.cores)
        .stall_threshold(None)
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let bar = job
        .progress
        .then(|| Progress::start(job.duration, Some(done.clone()), "ops"))
        .flatten();
    let plan = Arc::new((job.clone(), Arc::<Path>::from(path)));
    let outcome = runtime.run_on_all(move |core| {
        let (job, path) = (*plan).clone();
        run_core(job, path, core, done.clone())
    });
    drop(bar);
    let mut total = JobResult {
        ops: 0,
        bytes: 0,
        elapsed: job.duration,
        latency: new_histogram(),
        timeline: Vec::new(),
    };
    for core in outcome? {
        let core = core?;
        total.ops += core.ops;
        total.bytes += core.ops * job.bs as u64;
        // Same bounds on every core, so adding cannot fail.
        let _ = total.latency.add(&core.latency);
        total
            .timeline
            .resize(total.timeline.len().max(core.timeline.len()), 0);
        for (sum, n) in total.timeline.iter_mut().zip(core.timeline) {
            *sum += n;
        }
    }
    Ok(total)
}

/// What one core measured; `Send`, so it can come back from the core.
#[derive(Debug)]
struct CoreResult {
    ops: u64,
    latency: Histogram<u64>,
    timeline: Vec<u64>,
}

/// The file a core works on, opened for the job.
enum Target {
    Buffered(File),
    Direct(DmaFile),
}

impl Target {
    async fn open(job: &Job, path: &Path) -> io::Result<Target> {
        let mut options = OpenOptions::new();
        options.read(true).write(job.rw.writes());
        if !job.direct {
            return Ok(Target::Buffered(options.open(path).await?));
        }
        let file = DmaFile::open_with(&options, path).await?;
        if job.bs % file.block_size() != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "--bs {} is not a multiple of {}'s direct I/O alignment ({} B)",
                    job.bs,
                    path.display(),
                    file.block_size()
                ),
            ));
        }
        Ok(Target::Direct(file))
    }

    fn path(&self) -> &Path {
        match self {
            Target::Buffered(file) => file.path(),
            Target::Direct(file) => file.path(),
        }
    }

    /// A buffer of exactly `bs` bytes, aligned for the file.
    fn buffer(&self, bs: usize) -> DmaBuffer {
        match self {
            Target::Direct(file) => file.alloc_buffer(bs),
            // Page-aligned when `bs` is a page or more; otherwise aligned to
            // the largest power of two not above `bs`, because a `DmaBuffer`
            // is at least one alignment long and reads fill its capacity. From
            // the core's registered memory, like `DmaFile`'s, so reads are fixed.
            Target::Buffered(_) => DmaBuffer::new_registered(bs, 1 << bs.clamp(1, 4096).ilog2()),
        }
    }

    async fn transfer(
        &self,
        rw: Rw,
        mut buf: DmaBuffer,
        pos: u64,
    ) -> (io::Result<usize>, DmaBuffer) {
        if !rw.writes() {
            buf.clear();
        }
        // A buffered transfer finishes what a short read or write left, as
        // fio does; `O_DIRECT` ones are never short short of the file's end.
        match (self, rw.writes()) {
            (Target::Buffered(file), false) => {
                let (res, buf) = file.read_exact_at(buf, pos).await;
                (res.map(|()| buf.len()), buf)
            }
            (Target::Buffered(file), true) => {
                let (res, buf) = file.write_all_at(buf, pos).await;
                (res.map(|()| buf.len()), buf)
            }
            (Target::Direct(file), false) => file.read_at(buf, pos).await,
            (Target::Direct(file), true) => file.write_at(buf, pos).await,
        }
    }
}

/// A core's counters and offsets, shared by its tasks.
struct CoreState {
    job: Job,
    /// This core's share of the file: its first byte and whole blocks.
    first: u64,
    blocks: u64,
    /// The next block of a sequential job.
    cursor: Cell<u64>,
    start: Instant,
    deadline: Instant,
    latency: RefCell<Histogram<u64>>,
    timeline: RefCell<Vec<u64>>,
    ops: Cell<u64>,
    /// The first failure; once set, every task stops.
    failed: RefCell<Option<io::Error>>,
    /// The progress bar's count, and this core's ops not yet added (256 at a time).
    done: Arc<AtomicU64>,
    unreported: Cell<u64>,
}

impl CoreState {
    fn offset(&self, rng: &mut Rng) -> u64 {
        let block = if self.job.rw.random() {
            rng.next_u64() % self.blocks
        } else {
            let block = self.cursor.get();
            self.cursor.set((block + 1) % self.blocks);
            block
        };
        self.first + block * self.job.bs as u64
    }

    fn record(&self, from: Instant, end: Instant) {
        self.latency
            .borrow_mut()
            .saturating_record((end - from).as_nanos() as u64);
        let step = ((end - self.start).as_nanos() / TIMELINE_STEP.as_nanos()) as usize;
        if let Some(slot) = self.timeline.borrow_mut().get_mut(step) {
            *slot += 1;
        }
        self.ops.set(self.ops.get() + 1);
        self.unreported.set(self.unreported.get() + 1);
        if self.unreported.get() == 256 {
            self.report_progress();
        }
    }

    fn report_progress(&self) {
        self.done
            .fetch_add(self.unreported.take(), Ordering::Relaxed);
    }

    fn fail(&self, err: io::Error) {
        self.failed.borrow_mut().get_or_insert(err);
    }

    fn running(&self) -> bool {
        self.failed.borrow().is_none() && Instant::now() < self.deadline
    }
}

async fn run_core(
    job: Job,
    path: Arc<Path>,
    core: usize,
    done: Arc<AtomicU64>,
) -> io::Result<CoreResult> {
    if let Some(cpu) = cpu::cpu_for(0, core) {
        // Best effort: an unpinned core still measures correctly.
        let _ = cpu::pin_to(cpu);
    }
    let target = Rc::new(Target::open(&job, &path).await?);
    let blocks = job.blocks_per_core().max(1);
    let steps = (job.duration.as_nanos() / TIMELINE_STEP.as_nanos()) as usize + 1;
    let start = Instant::now();
    let state = Rc::new(CoreState {
        first: core as u64 * blocks * job.bs as u64,
        blocks,
        cursor: Cell::new(0),
        start,
        deadline: start + job.duration,
        latency: RefCell::new(new_histogram()),
        timeline: RefCell::new(vec![0; steps]),
        ops: Cell::new(0),
        failed: RefCell::new(None),
        done,
        unreported: Cell::new(0),
        job,
    });
    let tasks: Vec<_> = (0..state.job.iodepth)
        .map(|i| {
            let seed = (core * MAX_TASKS_PER_CORE + i) as u64 + 1;
            let task = supervise(target.clone(), state.clone(), path.clone(), seed);
            percore::spawn(task)
        })
        .collect();
    for task in tasks {
        if let Err(err) = task.await {
            state.fail(io::Error::other(format!("a job task failed: {err}")));
        }
    }
    state.report_progress();
    if let Some(err) = state.failed.take() {
        return Err(err);
    }
    Ok(CoreResult {
        ops: state.ops.get(),
        latency: state.latency.replace(new_histogram()),
        timeline: state.timeline.take(),
    })
}

/// Runs one [`worker`] until the deadline (plus [`GRACE`] for the op in
/// flight); its failure stops every task of the core.
async fn supervise(target: Rc<Target>, state: Rc<CoreState>, path: Arc<Path>, seed: u64) {
    match timeout_at(
        (state.deadline + GRACE).into(),
        worker(&target, &state, seed),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(err)) => state.fail(err),
        Err(_) => state.fail(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "an op on {} took over {GRACE:?} past the end",
                path.display()
            ),
        )),
    }
}

/// Seeds of different cores' tasks never meet below this many tasks a core.
const MAX_TASKS_PER_CORE: usize = 1 << 20;

/// One read or write in flight until the deadline or a failure.
async fn worker(target: &Target, state: &CoreState, seed: u64) -> io::Result<()> {
    let bs = state.job.bs;
    let rw = state.job.rw;
    let mut rng = Rng::new(seed);
    let mut buf = target.buffer(bs);
    if rw.writes() {
        buf.resize(bs, 0);
        rng.fill(&mut buf);
    }
    while state.running() {
        let pos = state.offset(&mut rng);
        if rw.writes() && bs >= 8 {
            buf[..8].copy_from_slice(&pos.to_le_bytes());
        }
        let from = Instant::now();
        let (res, back) = target.transfer(rw, buf, pos).await;
        let end = Instant::now();
        buf = back;
        let n = res?;
        if n != bs {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: a {} of {bs} bytes at {pos} moved {n}",
                    target.path().display(),
                    if rw.writes() { "write" } else { "read" }
                ),
            ));
        }
        if end > state.deadline {
            break;
        }
        state.record(from, end);
    }
    Ok(())
}
