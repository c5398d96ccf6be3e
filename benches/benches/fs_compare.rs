//! 4 KiB random reads of a 1 GiB file: percore beside fio (io_uring and psync),
//! monoio and tokio, at the same settings, on one core, in one run.
//!
//! Settings: O_DIRECT at queue depth 1 and 32, and buffered (page cache warm)
//! at 1 and 32. Each contender reads random 4 KiB-aligned blocks for a fixed
//! time with `depth` reads in flight (one task per read in flight; fio's own
//! `iodepth`), timing every read from issue to completion. Rounds alternate
//! the contenders (the first one rotates); the table gives per contender the
//! median IOPS, p50 and p99 over the rounds, and the ratio to fio io_uring.
//!
//! - fio: `--ioengine=io_uring` (no fixed files or buffers, fio's defaults) and
//!   `--ioengine=psync` (queue depth 1 only: a sync engine has no queue), both
//!   `--invalidate=0` so buffered runs read the warm cache, `--lat_percentiles=1`
//!   (issue to completion, like ours). Skipped with a note if `fio` is not on PATH.
//! - percore: `DmaFile::read_at` / `File::read_at` into a reused `DmaBuffer`
//!   on a default runtime; `percore fixed` is the same with a registered file
//!   and registered buffers (`READ_FIXED`); `percore budget=1` is the default
//!   path on a runtime that polls one task per tick, so every read reaches the
//!   kernel as soon as it is issued (what fio does) instead of with the tick's
//!   batch: the device then sees its full queue depth, at one syscall per read.
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
use percore_bench::fio::{self, FioJob};
use percore_bench::fs_layout::{self, Rng, LAYOUT_BLOCK};

// Not every shared helper is needed here.
#[allow(dead_code)]
mod common;
use common::{allowed_cpus, pin_to};

/// The block each read fetches; the layout stamps each with its index.
const BLOCK: usize = LAYOUT_BLOCK;

/// Sizes of one run of the comparison.
#[derive(Clone, Copy)]
struct Config {
    file_size: u64,
    run: Duration,
    rounds: usize,
}

/// What `cargo bench` runs: about 4 minutes (26 runs of 1.6 s per round).
const FULL: Config = Config {
    file_size: 1 << 30,
    run: Duration::from_millis(1600),
    rounds: 5,
};

/// What `cargo test --benches` runs: every contender once, briefly, on a small file.
const SMOKE: Config = Config {
    file_size: 16 << 20,
    run: Duration::from_millis(100),
    rounds: 1,
};

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
    PercoreEager,
    Monoio,
    Tokio,
}

const CONTENDERS: [Contender; 7] = [
    Contender::FioUring,
    Contender::FioPsync,
    Contender::Percore,
    Contender::PercoreFixed,
    Contender::PercoreEager,
    Contender::Monoio,
    Contender::Tokio,
];

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::FioUring => "fio io_uring",
            Contender::FioPsync => "fio psync",
            Contender::Percore => "percore",
            Contender::PercoreFixed => "percore fixed",
            Contender::PercoreEager => "percore budget=1",
            Contender::Monoio => "monoio",
            Contender::Tokio => "tokio",
        }
    }

    fn runs(self, setting: Setting, fio: bool) -> bool {
        match self {
            Contender::FioUring => fio,
            Contender::FioPsync => fio && setting.depth == 1,
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
    /// `DmaFile` / `File` on a default runtime.
    Default,
    /// A registered file and registered buffers (`READ_FIXED`).
    Fixed,
    /// As `Default` on a runtime that polls one task per tick
    /// (`Builder::budget(1)`), so each read is submitted as soon as it is
    /// issued instead of with the tick's batch.
    Eager,
}

fn percore_run(path: &Path, setting: Setting, cfg: Config, variant: Variant) -> Sample {
    let blocks = cfg.file_size / BLOCK as u64;
    let fixed = variant == Variant::Fixed;
    let budget = if variant == Variant::Eager { 1 } else { 128 };
    percore::Builder::new()
        .stall_threshold(None)
        .budget(budget)
        .block_on(async move {
            let latencies = Rc::new(RefCell::new(Vec::with_capacity(1 << 22)));
            let start = Instant::now();
            let deadline = start + cfg.run;
            if fixed {
                percore_fixed_readers(path, setting, blocks, deadline, &latencies).await;
            } else if setting.direct {
                let file = Rc::new(DmaFile::open(path).await.expect("open O_DIRECT"));
                let buf = file.alloc_buffer(BLOCK);
                let read = move |buf, pos| {
                    let file = Rc::clone(&file);
                    async move { file.read_at(buf, pos).await }
                };
                percore_readers(setting.depth, blocks, deadline, &latencies, buf, read).await;
            } else {
                let file = Rc::new(File::open(path).await.expect("open"));
                let read = move |buf, pos| {
                    let file = Rc::clone(&file);
                    async move { file.read_at(buf, pos).await }
                };
                let buf = DmaBuffer::new(BLOCK, BLOCK);
                percore_readers(setting.depth, blocks, deadline, &latencies, buf, read).await;
            }
            let elapsed = start.elapsed();
            let ns = latencies.take();
            Sample::from_latencies(ns, elapsed)
        })
        .expect("percore runtime")
}

/// percore with a registered file and registered buffers (`READ_FIXED`).
/// `depth` tasks reading random blocks through `read` until `deadline`, each
/// with a buffer like `buf`, checking every block and recording its latency.
async fn percore_readers<F, Fut>(
    depth: usize,
    blocks: u64,
    deadline: Instant,
    latencies: &Rc<RefCell<Vec<u32>>>,
    buf: DmaBuffer,
    read: F,
) where
    F: Fn(DmaBuffer, u64) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = percore::BufResult<usize, DmaBuffer>> + 'static,
{
    let (size, align) = (buf.capacity(), buf.alignment());
    let readers = (0..depth).map(|i| {
        let (read, lat) = (read.clone(), latencies.clone());
        percore::spawn(async move {
            let mut buf = DmaBuffer::new(size, align);
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

fn monoio_run(path: &Path, setting: Setting, cfg: Config) -> Sample {
    let blocks = cfg.file_size / BLOCK as u64;
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
        let deadline = start + cfg.run;
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

fn tokio_run(path: &Path, setting: Setting, cfg: Config) -> Sample {
    let blocks = cfg.file_size / BLOCK as u64;
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
        let deadline = start + cfg.run;
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

fn fio_run(path: &Path, setting: Setting, cfg: Config, engine: &str, cpu: Option<usize>) -> Sample {
    let job = FioJob {
        path,
        rw: "randread",
        bs: BLOCK,
        iodepth: setting.depth,
        direct: setting.direct,
        size: cfg.file_size,
        runtime: cfg.run,
        engine,
        jobs: 1,
        cpus: cpu.map(|cpu| vec![cpu]),
        timeline_step: None,
    };
    let result = job.run().unwrap_or_else(|err| panic!("{err}"));
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
    }
}

// ---- the comparison ----

fn run(
    contender: Contender,
    path: &Path,
    setting: Setting,
    cfg: Config,
    cpu: Option<usize>,
) -> Sample {
    match contender {
        Contender::FioUring => fio_run(path, setting, cfg, "io_uring", cpu),
        Contender::FioPsync => fio_run(path, setting, cfg, "psync", cpu),
        Contender::Percore => percore_run(path, setting, cfg, Variant::Default),
        Contender::PercoreFixed => percore_run(path, setting, cfg, Variant::Fixed),
        Contender::PercoreEager => percore_run(path, setting, cfg, Variant::Eager),
        Contender::Monoio => monoio_run(path, setting, cfg),
        Contender::Tokio => tokio_run(path, setting, cfg),
    }
}

/// Whether a row was asked for (no filter: every row).
fn selected(filters: &[String], setting: Setting, contender: Contender) -> bool {
    let row = format!("{} {}", setting.name(), contender.name());
    filters.is_empty() || filters.iter().any(|f| row.contains(f.as_str()))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn micros(d: f64) -> String {
    format!("{:.1}", d / 1000.0)
}

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
        "fs_compare{}: 4 KiB random reads of a {} MiB file ({}), {} rounds of {:?} per contender and setting, {}",
        if benchmarking { "" } else { " (smoke: no --bench argument)" },
        cfg.file_size >> 20,
        path.display(),
        cfg.rounds,
        cfg.run,
        match cpu {
            Some(cpu) => format!("everything on CPU {cpu}"),
            None => "not pinned (sched_setaffinity refused)".to_owned(),
        }
    );
    if !fio {
        println!("  fio is not on PATH: its rows are skipped (apt-get install fio)");
    }
    prepare_file(&path, cfg.file_size).expect("write the test file");
    // One pass through the page cache and one around it, so the first
    // contender does not pay for cold caches (ours, or the VM host's).
    warm_cache(&path, false).expect("read the test file");
    warm_cache(&path, true).expect("read the test file with O_DIRECT");

    // samples[setting][contender]
    let mut samples: Vec<Vec<Vec<Sample>>> = SETTINGS
        .iter()
        .map(|_| CONTENDERS.iter().map(|_| Vec::new()).collect())
        .collect();
    for round in 0..cfg.rounds {
        for (s, &setting) in SETTINGS.iter().enumerate() {
            let active: Vec<usize> = (0..CONTENDERS.len())
                .filter(|&c| CONTENDERS[c].runs(setting, fio))
                .filter(|&c| selected(&filters, setting, CONTENDERS[c]))
                .collect();
            // Rotate who goes first, by round and by setting, so that drift
            // (the host's cache warming, a neighbour's build) hits all alike.
            for k in 0..active.len() {
                let c = active[(round + s + k) % active.len()];
                let contender = CONTENDERS[c];
                let sample = run(contender, &path, setting, cfg, cpu);
                println!(
                    "  round {} {:<13} {:<16} {:>9.0} IOPS  p50 {:>6} µs  p99 {:>6} µs  max {:>7} µs",
                    round + 1,
                    setting.name(),
                    contender.name(),
                    sample.iops,
                    micros(sample.p50.as_nanos() as f64),
                    micros(sample.p99.as_nanos() as f64),
                    micros(sample.max.as_nanos() as f64),
                );
                samples[s][c].push(sample);
            }
        }
    }

    println!();
    println!(
        "medians over {} rounds (ratio = IOPS / fio io_uring IOPS):",
        cfg.rounds
    );
    println!(
        "  {:<13} {:<16} {:>9} {:>9} {:>9} {:>7}",
        "setting", "runtime", "IOPS", "p50 µs", "p99 µs", "ratio"
    );
    for (s, &setting) in SETTINGS.iter().enumerate() {
        let fio_iops = (!samples[s][0].is_empty())
            .then(|| median(samples[s][0].iter().map(|x| x.iops).collect()));
        for (c, &contender) in CONTENDERS.iter().enumerate() {
            let runs = &samples[s][c];
            if runs.is_empty() {
                continue;
            }
            let iops = median(runs.iter().map(|x| x.iops).collect());
            let p50 = median(runs.iter().map(|x| x.p50.as_nanos() as f64).collect());
            let p99 = median(runs.iter().map(|x| x.p99.as_nanos() as f64).collect());
            let ratio = fio_iops.map_or("-".to_owned(), |f| format!("{:.2}x", iops / f));
            println!(
                "  {:<13} {:<16} {:>9.0} {:>9} {:>9} {:>7}",
                setting.name(),
                contender.name(),
                iops,
                micros(p50),
                micros(p99),
                ratio
            );
        }
    }
    if std::env::var_os("PERCORE_FS_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_file(&path);
    }
}
