//! 4 KiB random reads of a 1 GiB file: percore beside fio (io_uring and psync),
//! monoio and tokio, at the same settings, on one core, in one run.
//!
//! Settings: O_DIRECT at queue depth 1 and 32, and buffered (page cache warm)
//! at 1 and 32. Each contender reads random 4 KiB-aligned blocks for a fixed
//! time with `depth` reads in flight (one task per read in flight; fio's own
//! `iodepth`), timing every read from issue to completion.
//!
//! Each setting has its own number of rounds and run length: O_DIRECT QD1,
//! bound by the device's latency, varies most from run to run (a virtio disk
//! moves single runs by ±10 %), so it gets more, shorter rounds. The rounds of
//! all settings are interleaved (round 1 of every setting, then round 2 of
//! those that have one, …), and within a round of a setting every contender
//! runs once, back to back, the first one rotating, so drift hits all alike.
//!
//! The table gives per contender and setting, over its rounds: the median
//! IOPS, p50 and p99; the ratio of its median IOPS to fio io_uring's; the
//! quartiles of its IOPS as ratios to fio io_uring's median (the spread); and
//! the paired ratio, the median over rounds of its IOPS / fio io_uring's IOPS
//! in the same round, which cancels drift between rounds. The percore rows
//! also get that paired ratio against monoio, and `percore-epoll` its IOPS
//! ratios to tokio's (the project's target: at least 3× at buffered QD32).
//!
//! - fio: `--ioengine=io_uring` (no fixed files or buffers, fio's defaults) and
//!   `--ioengine=psync` (queue depth 1 only: a sync engine has no queue), both
//!   `--invalidate=0` so buffered runs read the warm cache, `--lat_percentiles=1`
//!   (issue to completion, like ours). Skipped with a note if `fio` is not on PATH.
//! - percore: `DmaFile::read_at` into a reused buffer from
//!   `DmaFile::alloc_buffer`, or buffered `File::read_at` into a reused
//!   `DmaBuffer::new_registered`, on a default runtime. Both buffers come from
//!   the core's registered memory (what the docs tell users to allocate file
//!   buffers with), so the reads are `READ_FIXED`; monoio has no registered
//!   buffers. `percore heap` is the same with a plain heap buffer
//!   (`DmaBuffer::new`, as monoio's), so plain reads; `percore fixed` adds a
//!   registered file (`FixedFiles`) to registered buffers (`FixedBuffers`).
//!   Files also register themselves once hot (after 64 ops), so every percore
//!   row names its file by slot after the first 64 reads.
//! - Polling, O_DIRECT only: `percore poll` is `percore` on a runtime that
//!   polls its ring for up to 1 ms before parking (`Builder::spin_before_park`);
//!   `fio io_uring poll` is fio's io_uring engine with
//!   `--iodepth_batch_complete_min=0`, which polls for completions instead of
//!   waiting in the kernel (at queue depth 1 only: that way fio keeps just one
//!   read in flight whatever its `--iodepth`). Both spend the CPU the others
//!   sleep through; they are paired with each other after the table.
//! - `percore sleep`, O_DIRECT only: `percore` with `Builder::device_spin(ZERO)`,
//!   so the core sleeps in the kernel while its reads are at the device, as
//!   fio io_uring and monoio do. The other percore rows run on a default
//!   runtime, which first polls its ring for the completion (up to 200 µs,
//!   while one is due within that; `Builder::device_spin`). The CPU column
//!   shows what each way costs.
//! - `percore-epoll`: `percore` on a core with the epoll backend
//!   (`Builder::driver(Driver::Epoll)`; the other percore rows name
//!   `Driver::IoUring`, so `PERCORE_DRIVER` changes none of them). Its reads
//!   try `preadv2(RWF_NOWAIT)` on the core first, a page-cache hit costing no
//!   thread hop, and go to the blocking pool only when that would block (a
//!   cache miss, and every O_DIRECT read). Paired with tokio after the table:
//!   neither has io_uring, so that ratio is what the runtime adds.
//! - monoio: `monoio::fs::File::read_at` (io_uring driver) into a reused aligned buffer.
//! - tokio: `tokio::fs` has no positional read; it runs every file call as a
//!   blocking job, so this is that mechanism: `spawn_blocking(pread)` on a
//!   current-thread runtime, its blocking threads on the same CPU.
//!
//! Every read checks the block index written into the block's first 8 bytes,
//! so a contender that reads the wrong bytes fails instead of looking fast.

use std::cell::RefCell;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use percore::fs::{DmaBuffer, DmaFile, File, FixedBuffers, FixedFiles};
use percore::Driver;
use percore_bench::cpu::own_cpu_time;
use percore_bench::fio::{self, FioJob};
use percore_bench::fs_layout::{self, Rng, LAYOUT_BLOCK};

// Not every shared helper is needed here.
#[allow(dead_code)]
mod common;
use common::{allowed_cpus, pin_to};

/// How long `percore poll` polls before parking: longer than a device read.
const POLL_SPIN: Duration = Duration::from_millis(1);

/// The block each read fetches; the layout stamps each with its index.
const BLOCK: usize = LAYOUT_BLOCK;

/// How many rounds a setting gets and how long each of its runs is.
#[derive(Clone, Copy)]
struct Plan {
    rounds: usize,
    run: Duration,
}

/// Sizes of the comparison: the file, and a plan per setting (in `SETTINGS` order).
#[derive(Clone, Copy)]
struct Config {
    file_size: u64,
    plans: [Plan; SETTINGS.len()],
}

impl Config {
    fn rounds(&self) -> usize {
        self.plans.iter().map(|p| p.rounds).max().unwrap_or(0)
    }

    /// The run of setting `s`.
    fn job(&self, s: usize) -> Job {
        Job {
            file_size: self.file_size,
            run: self.plans[s].run,
        }
    }
}

/// What `cargo bench` runs: about 10 minutes on the project's VM, 324 s of it
/// reading, in 285 runs: O_DIRECT QD1 15 rounds of 0.8 s (11 contenders,
/// 132 s), the other settings 5 rounds of 1.6 s (24 contender runs a round,
/// 192 s). The rest is start-up per run (fio's process, a runtime, opening the
/// file) and the two warming passes over the file (the first time, laying it
/// out).
const FULL: Config = Config {
    file_size: 1 << 30,
    plans: [
        // O_DIRECT QD1: device-latency bound, the noisiest; more, shorter rounds.
        Plan {
            rounds: 15,
            run: Duration::from_millis(800),
        },
        // O_DIRECT QD32, buffered QD1, buffered QD32.
        Plan {
            rounds: 5,
            run: Duration::from_millis(1600),
        },
        Plan {
            rounds: 5,
            run: Duration::from_millis(1600),
        },
        Plan {
            rounds: 5,
            run: Duration::from_millis(1600),
        },
    ],
};

/// What `cargo test --benches` runs: every contender once, briefly, on a small file.
const SMOKE: Config = Config {
    file_size: 16 << 20,
    plans: [Plan {
        rounds: 1,
        run: Duration::from_millis(100),
    }; SETTINGS.len()],
};

/// One timed run: the file's size and how long to read it.
#[derive(Clone, Copy)]
struct Job {
    file_size: u64,
    run: Duration,
}

#[derive(Clone, Copy, PartialEq)]
struct Setting {
    direct: bool,
    depth: usize,
}

const SETTINGS: [Setting; 4] = [
    Setting {
        direct: true,
        depth: 1,
    },
    Setting {
        direct: true,
        depth: 32,
    },
    Setting {
        direct: false,
        depth: 1,
    },
    Setting {
        direct: false,
        depth: 32,
    },
];

impl Setting {
    fn name(self) -> String {
        let mode = if self.direct { "O_DIRECT" } else { "buffered" };
        format!("{mode} QD{}", self.depth)
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Contender {
    FioUring,
    FioPsync,
    Percore,
    PercoreFixed,
    PercoreHeap,
    Monoio,
    Tokio,
    FioPoll,
    PercorePoll,
    PercoreSleep,
    PercoreEpoll,
}

const CONTENDERS: [Contender; 11] = [
    Contender::FioUring,
    Contender::FioPsync,
    Contender::Percore,
    Contender::PercoreFixed,
    Contender::PercoreHeap,
    Contender::Monoio,
    Contender::Tokio,
    Contender::FioPoll,
    Contender::PercorePoll,
    Contender::PercoreSleep,
    Contender::PercoreEpoll,
];

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::FioUring => "fio io_uring",
            Contender::FioPsync => "fio psync",
            Contender::Percore => "percore",
            Contender::PercoreFixed => "percore fixed",
            Contender::PercoreHeap => "percore heap",
            Contender::Monoio => "monoio",
            Contender::Tokio => "tokio",
            Contender::FioPoll => "fio io_uring poll",
            Contender::PercorePoll => "percore poll",
            Contender::PercoreSleep => "percore sleep",
            Contender::PercoreEpoll => "percore-epoll",
        }
    }

    fn runs(self, setting: Setting, fio: bool) -> bool {
        match self {
            Contender::FioUring => fio,
            Contender::FioPsync => fio && setting.depth == 1,
            // Polling only pays where a read waits on the device. fio's
            // polling (`--iodepth_batch_complete_min=0`) keeps one read in
            // flight whatever `--iodepth` says, so it runs at queue depth 1.
            Contender::FioPoll => fio && setting.direct && setting.depth == 1,
            Contender::PercorePoll | Contender::PercoreSleep => setting.direct,
            _ => true,
        }
    }
}

/// One timed run: reads done, how long it took, each read's latency.
struct Sample {
    iops: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// CPU time used (user and system, every thread of the contender) over
    /// the run's wall time, in one CPU's units; NaN if unknown.
    cpu: f64,
}

impl Sample {
    fn from_latencies(mut ns: Vec<u32>, elapsed: Duration) -> Sample {
        assert!(!ns.is_empty(), "a run completed no read");
        let iops = ns.len() as f64 / elapsed.as_secs_f64();
        let p50 = percentile(&mut ns, 0.50);
        let p99 = percentile(&mut ns, 0.99);
        let max = Duration::from_nanos(u64::from(ns.iter().copied().max().unwrap_or(0)));
        Sample {
            iops,
            p50,
            p99,
            max,
            cpu: f64::NAN,
        }
    }
}

fn percentile(ns: &mut [u32], q: f64) -> Duration {
    let k = ((ns.len() as f64 * q) as usize).min(ns.len() - 1);
    let (_, v, _) = ns.select_nth_unstable(k);
    Duration::from_nanos(u64::from(*v))
}

/// Checks a block read at `pos` starts with its index.
fn check(block: &[u8], pos: u64) {
    let want = pos / BLOCK as u64;
    let got = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
    assert_eq!(got, want, "read at {pos} returned the wrong block");
}

/// Lays the test file out as `percore-bench fs` does (each block starts with
/// its index, the rest is noise, synced), unless a file of that size with
/// those headers is already there.
fn prepare_file(path: &Path, size: u64) -> std::io::Result<()> {
    if let Ok(file) = std::fs::File::open(path) {
        let mut head = [0u8; 8];
        let ok = file.metadata()?.len() == size
            && [0, size / 2, size - BLOCK as u64].iter().all(|&pos| {
                file.read_exact_at(&mut head, pos).is_ok()
                    && u64::from_le_bytes(head) * BLOCK as u64 == pos
            });
        if ok {
            return Ok(());
        }
        std::fs::remove_file(path)?;
    }
    fs_layout::lay_out(path, size).map(drop)
}

/// Reads the whole file once, through the page cache or around it (`direct`).
fn warm_cache(path: &Path, direct: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    if direct {
        options.custom_flags(libc::O_DIRECT);
    }
    let file = options.open(path)?;
    let mut buf = DmaBuffer::new(1 << 20, BLOCK);
    let mut pos = 0;
    loop {
        let n = file.read_at(buf.as_full_mut_slice(), pos)?;
        if n == 0 {
            return Ok(());
        }
        pos += n as u64;
    }
}

// ---- percore ----

/// How the percore rows are set up.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// `DmaFile` / `File` on a default runtime, buffers from registered memory.
    Default,
    /// A registered file and registered buffers (`READ_FIXED`).
    Fixed,
    /// As `Default` with plain heap buffers.
    Heap,
    /// As `Default` on a runtime that polls its ring for up to 1 ms before
    /// it parks (`Builder::spin_before_park`).
    Poll,
    /// As `Default` on a runtime that never polls for device completions
    /// (`Builder::device_spin(ZERO)`): it sleeps in the kernel, as fio and
    /// monoio do.
    Sleep,
    /// As `Default` on the epoll backend (`Builder::driver(Driver::Epoll)`).
    Epoll,
}

fn percore_run(path: &Path, setting: Setting, job: Job, variant: Variant) -> Sample {
    let blocks = job.file_size / BLOCK as u64;
    let fixed = variant == Variant::Fixed;
    let heap = variant == Variant::Heap;
    let spin = match variant {
        Variant::Poll => POLL_SPIN,
        _ => Duration::ZERO,
    };
    let driver = match variant {
        Variant::Epoll => Driver::Epoll,
        _ => Driver::IoUring,
    };
    let mut builder = percore::Builder::new()
        .driver(driver)
        .stall_threshold(None)
        .spin_before_park(spin);
    if variant == Variant::Sleep {
        builder = builder.device_spin(Duration::ZERO);
    }
    builder
        .block_on(async move {
            assert_eq!(
                percore::stats().driver,
                driver,
                "the core runs another backend"
            );
            let latencies = Rc::new(RefCell::new(Vec::with_capacity(1 << 22)));
            let start = Instant::now();
            let deadline = start + job.run;
            if fixed {
                percore_fixed_readers(path, setting, blocks, deadline, &latencies).await;
            } else if setting.direct {
                let file = Rc::new(DmaFile::open(path).await.expect("open O_DIRECT"));
                let alloc = {
                    let file = Rc::clone(&file);
                    move || match heap {
                        true => DmaBuffer::new(BLOCK, file.mem_alignment().max(BLOCK)),
                        false => file.alloc_buffer(BLOCK),
                    }
                };
                let read = move |buf, pos| {
                    let file = Rc::clone(&file);
                    async move { file.read_at(buf, pos).await }
                };
                percore_readers(setting.depth, blocks, deadline, &latencies, alloc, read).await;
            } else {
                let file = Rc::new(File::open(path).await.expect("open"));
                let alloc = move || match heap {
                    true => DmaBuffer::new(BLOCK, BLOCK),
                    false => DmaBuffer::new_registered(BLOCK, BLOCK),
                };
                let read = move |buf, pos| {
                    let file = Rc::clone(&file);
                    async move { file.read_at(buf, pos).await }
                };
                percore_readers(setting.depth, blocks, deadline, &latencies, alloc, read).await;
            }
            let elapsed = start.elapsed();
            let ns = latencies.take();
            Sample::from_latencies(ns, elapsed)
        })
        .expect("percore runtime")
}

/// `depth` tasks reading random blocks through `read` until `deadline`, each
/// into its own buffer from `alloc`, checking every block and recording its
/// latency.
async fn percore_readers<A, F, Fut>(
    depth: usize,
    blocks: u64,
    deadline: Instant,
    latencies: &Rc<RefCell<Vec<u32>>>,
    alloc: A,
    read: F,
) where
    A: Fn() -> DmaBuffer,
    F: Fn(DmaBuffer, u64) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = percore::BufResult<usize, DmaBuffer>> + 'static,
{
    let readers = (0..depth).map(|i| {
        let (read, lat) = (read.clone(), latencies.clone());
        let mut buf = alloc();
        percore::spawn(async move {
            let mut rng = Rng::new(i as u64 + 1);
            loop {
                let pos = rng.next_u64() % blocks * BLOCK as u64;
                let t0 = Instant::now();
                let (res, back) = read(buf, pos).await;
                let t1 = Instant::now();
                assert_eq!(res.expect("read"), BLOCK);
                check(&back, pos);
                lat.borrow_mut().push((t1 - t0).as_nanos() as u32);
                buf = back;
                buf.clear();
                if t1 >= deadline {
                    break;
                }
            }
        })
    });
    for reader in readers.collect::<Vec<_>>() {
        reader.await.expect("reader");
    }
}

/// percore with a registered file and registered buffers (`READ_FIXED`).
async fn percore_fixed_readers(
    path: &Path,
    setting: Setting,
    blocks: u64,
    deadline: Instant,
    latencies: &Rc<RefCell<Vec<u32>>>,
) {
    let mut options = percore::fs::OpenOptions::new();
    options.read(true);
    if setting.direct {
        options.custom_flags(libc::O_DIRECT);
    }
    let files = FixedFiles::new(1).expect("register a file table");
    let file = Rc::new(
        files
            .register(options.open(path).await.expect("open"))
            .expect("register"),
    );
    let bufs = Rc::new(FixedBuffers::new(setting.depth, BLOCK, BLOCK).expect("register buffers"));
    let readers = (0..setting.depth).map(|i| {
        let (file, lat, bufs) = (file.clone(), latencies.clone(), bufs.clone());
        percore::spawn(async move {
            let mut buf = bufs.get().expect("one buffer per reader");
            let mut rng = Rng::new(i as u64 + 1);
            loop {
                let pos = rng.next_u64() % blocks * BLOCK as u64;
                let t0 = Instant::now();
                let (res, back) = file.read_fixed_at(buf, pos).await;
                let t1 = Instant::now();
                assert_eq!(res.expect("read"), BLOCK);
                check(&back, pos);
                lat.borrow_mut().push((t1 - t0).as_nanos() as u32);
                buf = back;
                buf.buffer_mut().clear();
                if t1 >= deadline {
                    break;
                }
            }
        })
    });
    for reader in readers.collect::<Vec<_>>() {
        reader.await.expect("reader");
    }
}

// ---- monoio ----

/// An aligned buffer monoio can read into (its `IoBufMut` is its own trait).
struct MonoioBuf(DmaBuffer);

// SAFETY: the `DmaBuffer`'s heap storage does not move while the wrapper moves,
// and its `len` bytes are initialised (it is zeroed at allocation).
unsafe impl monoio::buf::IoBuf for MonoioBuf {
    fn read_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.0.len()
    }
}

// SAFETY: as above; monoio writes at most `bytes_total` bytes from `write_ptr`.
unsafe impl monoio::buf::IoBufMut for MonoioBuf {
    fn write_ptr(&mut self) -> *mut u8 {
        self.0.as_full_mut_slice().as_mut_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.0.capacity()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: the caller (monoio) promises `pos` bytes were written, within
        // the capacity; the `DmaBuffer` memory is initialised anyway.
        unsafe { percore::IoBufMut::set_init(&mut self.0, pos) };
    }
}

fn monoio_run(path: &Path, setting: Setting, job: Job) -> Sample {
    let blocks = job.file_size / BLOCK as u64;
    let path = path.to_path_buf();
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .build()
        .expect("monoio io_uring runtime");
    rt.block_on(async move {
        let mut options = monoio::fs::OpenOptions::new();
        options.read(true);
        if setting.direct {
            options.custom_flags(libc::O_DIRECT);
        }
        let file = Rc::new(options.open(&path).await.expect("open"));
        let latencies = Rc::new(RefCell::new(Vec::with_capacity(1 << 22)));
        let start = Instant::now();
        let deadline = start + job.run;
        let readers: Vec<_> = (0..setting.depth)
            .map(|i| {
                let (file, lat) = (file.clone(), latencies.clone());
                monoio::spawn(async move {
                    let mut buf = MonoioBuf(DmaBuffer::new(BLOCK, BLOCK));
                    let mut rng = Rng::new(i as u64 + 1);
                    loop {
                        let pos = rng.next_u64() % blocks * BLOCK as u64;
                        let t0 = Instant::now();
                        let (res, back) = file.read_at(buf, pos).await;
                        let t1 = Instant::now();
                        assert_eq!(res.expect("read"), BLOCK);
                        check(&back.0, pos);
                        lat.borrow_mut().push((t1 - t0).as_nanos() as u32);
                        buf = back;
                        buf.0.clear();
                        if t1 >= deadline {
                            break;
                        }
                    }
                })
            })
            .collect();
        for reader in readers {
            reader.await;
        }
        let elapsed = start.elapsed();
        let ns = latencies.take();
        Sample::from_latencies(ns, elapsed)
    })
}

// ---- tokio ----

fn tokio_run(path: &Path, setting: Setting, job: Job) -> Sample {
    let blocks = job.file_size / BLOCK as u64;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    if setting.direct {
        options.custom_flags(libc::O_DIRECT);
    }
    let file = Arc::new(options.open(path).expect("open"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let start = Instant::now();
        let deadline = start + job.run;
        let readers: Vec<_> = (0..setting.depth)
            .map(|i| {
                let file = file.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(1 << 20);
                    let mut buf = DmaBuffer::new(BLOCK, BLOCK);
                    let mut rng = Rng::new(i as u64 + 1);
                    loop {
                        let pos = rng.next_u64() % blocks * BLOCK as u64;
                        let t0 = Instant::now();
                        let file = file.clone();
                        let (res, back) = tokio::task::spawn_blocking(move || {
                            let res = file.read_at(buf.as_full_mut_slice(), pos);
                            (res, buf)
                        })
                        .await
                        .expect("blocking read");
                        let t1 = Instant::now();
                        assert_eq!(res.expect("read"), BLOCK);
                        check(back.as_full_slice(), pos);
                        lat.push((t1 - t0).as_nanos() as u32);
                        buf = back;
                        if t1 >= deadline {
                            break;
                        }
                    }
                    lat
                })
            })
            .collect();
        let mut ns = Vec::new();
        for reader in readers {
            ns.extend(reader.await.expect("reader"));
        }
        Sample::from_latencies(ns, start.elapsed())
    })
}

// ---- fio ----

fn fio_run(
    path: &Path,
    setting: Setting,
    job: Job,
    engine: &str,
    busy_poll: bool,
    cpu: Option<usize>,
) -> Sample {
    let fio = FioJob {
        path,
        rw: "randread",
        bs: BLOCK,
        iodepth: setting.depth,
        direct: setting.direct,
        size: job.file_size,
        runtime: job.run,
        engine,
        jobs: 1,
        cpus: cpu.map(|cpu| vec![cpu]),
        timeline_step: None,
        busy_poll,
    };
    let result = fio.run().unwrap_or_else(|err| panic!("{err}"));
    let at = |q: f64| {
        result
            .percentiles
            .iter()
            .find(|(p, _)| (p - q).abs() < 1e-9)
            .map_or(Duration::ZERO, |&(_, d)| d)
    };
    Sample {
        iops: result.iops,
        p50: at(0.5),
        p99: at(0.99),
        max: result.max,
        cpu: result.cpu.unwrap_or(f64::NAN),
    }
}

// ---- the comparison ----

fn run(
    contender: Contender,
    path: &Path,
    setting: Setting,
    job: Job,
    cpu: Option<usize>,
) -> Sample {
    let in_process = !matches!(
        contender,
        Contender::FioUring | Contender::FioPsync | Contender::FioPoll
    );
    let (cpu_start, start) = (own_cpu_time(), Instant::now());
    let mut sample = run_contender(contender, path, setting, job, cpu);
    if in_process {
        let used = own_cpu_time().saturating_sub(cpu_start);
        sample.cpu = used.as_secs_f64() / start.elapsed().as_secs_f64();
    }
    sample
}

fn run_contender(
    contender: Contender,
    path: &Path,
    setting: Setting,
    job: Job,
    cpu: Option<usize>,
) -> Sample {
    match contender {
        Contender::FioUring => fio_run(path, setting, job, "io_uring", false, cpu),
        Contender::FioPsync => fio_run(path, setting, job, "psync", false, cpu),
        Contender::FioPoll => fio_run(path, setting, job, "io_uring", true, cpu),
        Contender::PercorePoll => percore_run(path, setting, job, Variant::Poll),
        Contender::PercoreSleep => percore_run(path, setting, job, Variant::Sleep),
        Contender::Percore => percore_run(path, setting, job, Variant::Default),
        Contender::PercoreFixed => percore_run(path, setting, job, Variant::Fixed),
        Contender::PercoreHeap => percore_run(path, setting, job, Variant::Heap),
        Contender::PercoreEpoll => percore_run(path, setting, job, Variant::Epoll),
        Contender::Monoio => monoio_run(path, setting, job),
        Contender::Tokio => tokio_run(path, setting, job),
    }
}

/// Whether a row was asked for (no filter: every row).
fn selected(filters: &[String], setting: Setting, contender: Contender) -> bool {
    let row = format!("{} {}", setting.name(), contender.name());
    filters.is_empty() || filters.iter().any(|f| row.contains(f.as_str()))
}

/// The contenders that run at `setting`, as indices into `CONTENDERS`. The
/// same in every round of a setting, so its samples pair up by round index.
fn active(setting: Setting, fio: bool, filters: &[String]) -> Vec<usize> {
    (0..CONTENDERS.len())
        .filter(|&c| CONTENDERS[c].runs(setting, fio))
        .filter(|&c| selected(filters, setting, CONTENDERS[c]))
        .collect()
}

fn index(contender: Contender) -> usize {
    CONTENDERS
        .iter()
        .position(|&c| c == contender)
        .expect("every contender is in CONTENDERS")
}

/// The `q` quantile of `values` (linear between the nearest two ranks; 0.5 is
/// the median). `values` must not be empty.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pos = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// The median over rounds of `f` of each round's sample.
fn median_by(runs: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(&runs.iter().map(f).collect::<Vec<_>>())
}

fn iops_of(runs: &[Sample]) -> Vec<f64> {
    runs.iter().map(|x| x.iops).collect()
}

/// The median over rounds of `a`'s IOPS / `b`'s IOPS in the same round; `None`
/// if either did not run.
fn paired(a: &[Sample], b: &[Sample]) -> Option<f64> {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a.iops / b.iops).collect();
    (!ratios.is_empty()).then(|| median(&ratios))
}

fn micros(d: f64) -> String {
    format!("{:.1}", d / 1000.0)
}

/// `O_DIRECT QD1 15 × 800ms, …`: each setting's rounds and run length.
fn plans_text(cfg: &Config) -> String {
    SETTINGS
        .iter()
        .zip(&cfg.plans)
        .map(|(setting, plan)| format!("{} {} × {:?}", setting.name(), plan.rounds, plan.run))
        .collect::<Vec<_>>()
        .join(", ")
}

/// samples[setting][contender][round]
type Samples = Vec<Vec<Vec<Sample>>>;

/// Runs every round: round r of each setting that has one, in turn, so the
/// settings' rounds interleave and drift hits them alike.
fn run_rounds(
    cfg: &Config,
    path: &Path,
    fio: bool,
    filters: &[String],
    cpu: Option<usize>,
) -> Samples {
    let mut samples: Samples = SETTINGS
        .iter()
        .map(|_| CONTENDERS.iter().map(|_| Vec::new()).collect())
        .collect();
    for round in 0..cfg.rounds() {
        for (s, &setting) in SETTINGS.iter().enumerate() {
            if round >= cfg.plans[s].rounds {
                continue;
            }
            let active = active(setting, fio, filters);
            // Rotate who goes first, by round and by setting, so that drift
            // (the host's cache warming, a neighbour's build) hits all alike.
            for k in 0..active.len() {
                let c = active[(round + s + k) % active.len()];
                let sample = run(CONTENDERS[c], path, setting, cfg.job(s), cpu);
                print_round(round, setting, CONTENDERS[c], &sample);
                samples[s][c].push(sample);
            }
        }
    }
    samples
}

fn print_round(round: usize, setting: Setting, contender: Contender, sample: &Sample) {
    println!(
        "  round {:<2} {:<13} {:<16} {:>9.0} IOPS  p50 {:>6} µs  p99 {:>6} µs  max {:>7} µs  CPU {:>4.0} %",
        round + 1,
        setting.name(),
        contender.name(),
        sample.iops,
        micros(sample.p50.as_nanos() as f64),
        micros(sample.p99.as_nanos() as f64),
        micros(sample.max.as_nanos() as f64),
        sample.cpu * 100.0,
    );
}

fn print_summary(samples: &Samples) {
    println!();
    println!(
        "per contender and setting, over its rounds: IOPS, p50, p99 = medians; \
         ratio = median IOPS / fio io_uring's median IOPS;"
    );
    println!(
        "  IOPS q1–q3 = its IOPS's quartiles / fio io_uring's median IOPS; \
         paired = median of (its IOPS / fio io_uring's IOPS in the same round);"
    );
    println!(
        "  CPU = median CPU time over wall time (100 % = one CPU busy); \
         µs/read = median CPU time per read"
    );
    println!(
        "  {:<13} {:<16} {:>9} {:>9} {:>9} {:>7} {:>11} {:>7} {:>5} {:>8}",
        "setting",
        "runtime",
        "IOPS",
        "p50 µs",
        "p99 µs",
        "ratio",
        "IOPS q1–q3",
        "paired",
        "CPU",
        "µs/read"
    );
    let fio = index(Contender::FioUring);
    for (s, &setting) in SETTINGS.iter().enumerate() {
        for (c, &contender) in CONTENDERS.iter().enumerate() {
            if !samples[s][c].is_empty() {
                print_row(setting, contender, &samples[s][c], &samples[s][fio]);
            }
        }
    }
}

/// One contender's row; `fio` is fio io_uring's rounds at the same setting
/// (empty if it did not run: no ratios then).
fn print_row(setting: Setting, contender: Contender, runs: &[Sample], fio: &[Sample]) {
    let iops = iops_of(runs);
    let median_iops = median(&iops);
    let p50 = median_by(runs, |x| x.p50.as_nanos() as f64);
    let p99 = median_by(runs, |x| x.p99.as_nanos() as f64);
    let fio_iops = (!fio.is_empty()).then(|| median(&iops_of(fio)));
    let ratio = fio_iops.map_or("-".to_owned(), |f| format!("{:.2}x", median_iops / f));
    let spread = fio_iops.map_or("-".to_owned(), |f| {
        let (q1, q3) = (quantile(&iops, 0.25), quantile(&iops, 0.75));
        format!("{:.2}–{:.2}", q1 / f, q3 / f)
    });
    let paired = paired(runs, fio).map_or("-".to_owned(), |r| format!("{r:.2}x"));
    let cpu = median_by(runs, |x| x.cpu);
    let per_read = median_by(runs, |x| x.cpu / x.iops * 1e6);
    println!(
        "  {:<13} {:<16} {:>9.0} {:>9} {:>9} {:>7} {:>11} {:>7} {:>4.0}% {:>8.1}",
        setting.name(),
        contender.name(),
        median_iops,
        micros(p50),
        micros(p99),
        ratio,
        spread,
        paired,
        cpu * 100.0,
        per_read
    );
}

/// `rows` against `base`, paired by round, for the settings where both ran.
fn print_paired(samples: &Samples, base: Contender, rows: &[Contender]) {
    let b = index(base);
    let lines: Vec<String> = rows
        .iter()
        .filter_map(|&contender| {
            let c = index(contender);
            let cells: Vec<String> = SETTINGS
                .iter()
                .enumerate()
                .filter_map(|(s, setting)| {
                    let ratio = paired(&samples[s][c], &samples[s][b])?;
                    Some(format!("{} {ratio:.2}x", setting.name()))
                })
                .collect();
            (!cells.is_empty()).then(|| format!("  {:<16} {}", contender.name(), cells.join("  ")))
        })
        .collect();
    if lines.is_empty() {
        return;
    }
    println!();
    println!(
        "against {0}, paired by round (median over rounds of its IOPS / {0}'s IOPS in the same round):",
        base.name()
    );
    for line in lines {
        println!("{line}");
    }
}

/// percore-epoll's IOPS over tokio's, per setting where both ran: the median
/// of each and paired by round, and for buffered QD32 the project's target
/// (judged only under `--bench`).
fn print_epoll_vs_tokio(samples: &Samples, benchmarking: bool) {
    let (e, t) = (index(Contender::PercoreEpoll), index(Contender::Tokio));
    let lines: Vec<String> = SETTINGS
        .iter()
        .enumerate()
        .filter(|(s, _)| !samples[*s][e].is_empty() && !samples[*s][t].is_empty())
        .map(|(s, &setting)| {
            let ratio = median(&iops_of(&samples[s][e])) / median(&iops_of(&samples[s][t]));
            let paired = paired(&samples[s][e], &samples[s][t]).unwrap_or(f64::NAN);
            let target = if setting != EPOLL_TARGET_SETTING {
                String::new()
            } else if benchmarking {
                let verdict = if ratio >= EPOLL_IOPS_TARGET {
                    "PASS"
                } else {
                    "MISS"
                };
                format!("  (target >= {EPOLL_IOPS_TARGET})  {verdict}")
            } else {
                format!("  (target >= {EPOLL_IOPS_TARGET}; not judged in a smoke run)")
            };
            format!(
                "  {:<13} {ratio:>5.2}x  paired {paired:.2}x{target}",
                setting.name()
            )
        })
        .collect();
    if lines.is_empty() {
        return;
    }
    println!();
    println!(
        "percore-epoll / tokio (tokio::fs's spawn_blocking pread), IOPS: median over median, \
         and paired by round; neither uses io_uring, so this is what the runtime adds:"
    );
    for line in lines {
        println!("{line}");
    }
}

/// Where percore-epoll has an IOPS target against tokio, and the target.
const EPOLL_TARGET_SETTING: Setting = Setting {
    direct: false,
    depth: 32,
};
const EPOLL_IOPS_TARGET: f64 = 3.0;

fn main() {
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    // Other arguments not starting with `-` pick rows: `-- "QD32 percore"`.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let cfg = if benchmarking { FULL } else { SMOKE };
    let cpu = allowed_cpus().first().copied().filter(|&cpu| pin_to(cpu));
    let fio = fio::version().is_some();
    let dir: PathBuf = std::env::var_os("PERCORE_FS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("percore-fs-bench-{}m", cfg.file_size >> 20));
    println!(
        "fs_compare{}: 4 KiB random reads of a {} MiB file ({}), {}",
        if benchmarking {
            ""
        } else {
            " (smoke: no --bench argument)"
        },
        cfg.file_size >> 20,
        path.display(),
        match cpu {
            Some(cpu) => format!("everything on CPU {cpu}"),
            None => "not pinned (sched_setaffinity refused)".to_owned(),
        }
    );
    println!("  rounds × run per contender: {}", plans_text(&cfg));
    if !fio {
        println!("  fio is not on PATH: its rows are skipped (apt-get install fio)");
    }
    prepare_file(&path, cfg.file_size).expect("write the test file");
    // One pass through the page cache and one around it, so the first
    // contender does not pay for cold caches (ours, or the VM host's).
    warm_cache(&path, false).expect("read the test file");
    warm_cache(&path, true).expect("read the test file with O_DIRECT");

    let samples = run_rounds(&cfg, &path, fio, &filters, cpu);
    print_summary(&samples);
    let percores = [
        Contender::Percore,
        Contender::PercoreFixed,
        Contender::PercoreHeap,
        Contender::PercoreSleep,
    ];
    print_paired(&samples, Contender::Monoio, &percores);
    // Both polling for completions instead of sleeping in the kernel.
    print_paired(&samples, Contender::FioPoll, &[Contender::PercorePoll]);
    print_epoll_vs_tokio(&samples, benchmarking);
    if std::env::var_os("PERCORE_FS_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_file(&path);
    }
}
