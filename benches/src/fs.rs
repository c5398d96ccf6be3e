//! `percore-bench fs`: lay the file out, then run the job on percore, or
//! alternate it with fio's run of the same job (`--compare`).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::FsOptions;
use crate::fio::{self, FioJob, FioResult, QUANTILES};
use crate::fs_job::{self, Job, JobResult};
use crate::fs_layout::{self, TempFile};
use crate::load::TIMELINE_STEP;
use crate::progress::{Progress, Status};
use crate::{cpu, report};

/// Who runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// percore's job ([`fs_job`]).
    Percore,
    /// fio, `--ioengine=io_uring`.
    Fio,
}

impl Engine {
    /// The name in the table and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Percore => "percore",
            Engine::Fio => "fio",
        }
    }
}

/// The engines `--compare` runs, in the order of the first round.
pub const ENGINES: [Engine; 2] = [Engine::Percore, Engine::Fio];

/// What one run measured, whichever engine ran it.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Reads or writes completed.
    pub ops: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// The measured interval.
    pub elapsed: Duration,
    /// `(quantile, latency)` at each of [`fio::QUANTILES`].
    pub percentiles: Vec<(f64, Duration)>,
    /// The longest latency.
    pub max: Duration,
    /// The mean latency.
    pub mean: Duration,
    /// Ops completed per [`TIMELINE_STEP`]
    /// (fio's from its IOPS log; `None` if it wrote none).
    pub timeline: Option<Vec<u64>>,
    /// CPU time the engine used over the measured interval, in CPUs (1.0: one
    /// CPU busy the whole run); `None` if unknown.
    pub cpu: Option<f64>,
}

impl Measured {
    /// Ops per second.
    pub fn iops(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// MiB per second.
    pub fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / (1 << 20) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at `quantile`: one of [`fio::QUANTILES`], or 1 for the maximum.
    pub fn quantile(&self, quantile: f64) -> Option<Duration> {
        if quantile >= 1.0 {
            return Some(self.max);
        }
        self.percentiles
            .iter()
            .find(|(q, _)| (q - quantile).abs() < 1e-9)
            .map(|&(_, d)| d)
    }
}

impl From<JobResult> for Measured {
    fn from(run: JobResult) -> Measured {
        let at = |q: f64| Duration::from_nanos(run.latency.value_at_quantile(q));
        Measured {
            ops: run.ops,
            bytes: run.bytes,
            elapsed: run.elapsed,
            percentiles: QUANTILES.iter().map(|&q| (q, at(q))).collect(),
            max: at(1.0),
            mean: Duration::from_nanos(run.latency.mean() as u64),
            timeline: Some(run.timeline),
            cpu: None,
        }
    }
}

impl From<FioResult> for Measured {
    fn from(run: FioResult) -> Measured {
        Measured {
            ops: run.ops,
            bytes: run.bytes,
            elapsed: run.elapsed,
            percentiles: run.percentiles,
            max: run.max,
            mean: run.mean,
            timeline: (!run.timeline.is_empty()).then_some(run.timeline),
            cpu: run.cpu,
        }
    }
}

/// One run of one engine.
#[derive(Debug, Clone)]
pub struct Run {
    /// `percore` or `fio`.
    pub engine: String,
    /// Round of `--compare`, from 0.
    pub round: usize,
    /// What it measured.
    pub measured: Measured,
}

/// Everything `percore-bench fs` ran.
#[derive(Debug, Clone)]
pub struct Report {
    /// The file the job ran on.
    pub path: PathBuf,
    /// Whether it was laid out (written) first.
    pub laid_out: bool,
    /// Whether it was removed at the end (the default file).
    pub removed: bool,
    /// fio's version when `--compare` ran it; `None` otherwise.
    pub fio: Option<String>,
    /// Every run, in the order run.
    pub runs: Vec<Run>,
}

/// Runs `options`: one percore run, or with `--compare` `--rounds` rounds of
/// percore and fio (when fio is on PATH) in turn. Without fio, one note line
/// goes to stderr.
///
/// # Errors
///
/// The file cannot be laid out (read-only place, full device…) or opened,
/// `--bs` does not suit `--direct`, a run fails. The message names the path.
pub fn run(options: &FsOptions) -> io::Result<Report> {
    // The default file is removed when `temp` drops, on errors too.
    let (path, temp) = match &options.file {
        Some(file) => (file.clone(), None),
        None => {
            let temp = TempFile::new(&format!("{}m", options.size >> 20));
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let laid_out = prepare(options, &path)?;
    let fio = if options.compare {
        fio::version()
    } else {
        None
    };
    if options.compare && fio.is_none() {
        note("fio is not on PATH: running percore alone (apt-get install fio)");
    }
    let engines = if fio.is_some() {
        &ENGINES[..]
    } else {
        &ENGINES[..1]
    };
    let rounds = if options.compare { options.rounds } else { 1 };
    let mut runs = Vec::with_capacity(rounds * engines.len());
    for round in 0..rounds {
        // Rotate who goes first, so drift on a shared machine hits both alike.
        for i in 0..engines.len() {
            let engine = engines[(round + i) % engines.len()];
            let measured = match engine {
                Engine::Percore => run_percore(options, &path)?,
                Engine::Fio => run_fio(options, &path)?.into(),
            };
            runs.push(Run {
                engine: engine.name().to_owned(),
                round,
                measured,
            });
        }
    }
    Ok(Report {
        path,
        laid_out,
        removed: temp.is_some(),
        fio,
        runs,
    })
}

/// Lays `path` out if it is short, and warms the page cache for a buffered
/// read job; returns whether it was laid out.
fn prepare(options: &FsOptions, path: &Path) -> io::Result<bool> {
    let laid_out = fs_layout::needs_layout(path, options.size);
    {
        // "laying out" shows on a terminal only, like the progress bar, so an
        // error is the one line on stderr; the report says it was laid out.
        let _status = laid_out.then(|| {
            let size = report::bytes(options.size);
            Status::show(format!("laying out {} ({size})", path.display()))
        });
        fs_layout::lay_out(path, options.size)?;
    }
    if !options.rw.writes() && !options.direct {
        // A warm page cache for every engine, the first one included.
        fs_layout::read_through(path, options.size)?;
    }
    Ok(laid_out)
}

fn note(line: &str) {
    eprintln!("percore-bench: {line}");
}

/// The percore job `options` describe.
pub fn job(options: &FsOptions) -> Job {
    Job {
        rw: options.rw,
        bs: options.bs,
        iodepth: options.iodepth,
        direct: options.direct,
        size: options.size,
        duration: options.duration,
        cores: options.cores,
        progress: !options.json,
    }
}

/// percore's run, with the CPU this process used meanwhile (every core's
/// thread; the runtime's start-up and the progress bar are in it too).
fn run_percore(options: &FsOptions, path: &Path) -> io::Result<Measured> {
    let before = cpu::own_cpu_time();
    let result = fs_job::run(&job(options), path)?;
    let used = cpu::own_cpu_time().saturating_sub(before);
    let cpu = used.as_secs_f64() / result.elapsed.as_secs_f64().max(1e-9);
    Ok(Measured {
        cpu: Some(cpu),
        ..result.into()
    })
}

fn run_fio(options: &FsOptions, path: &Path) -> io::Result<FioResult> {
    let cpus: Option<Vec<usize>> = (0..options.cores).map(|i| cpu::cpu_for(0, i)).collect();
    let job = FioJob {
        path,
        rw: options.rw.name(),
        bs: options.bs,
        iodepth: options.iodepth,
        direct: options.direct,
        size: options.size / options.cores as u64,
        runtime: options.duration,
        engine: "io_uring",
        jobs: options.cores,
        cpus,
        timeline_step: Some(TIMELINE_STEP),
        busy_poll: false,
    };
    let _bar = (!options.json)
        .then(|| Progress::start(options.duration, None, "fio"))
        .flatten();
    job.run()
}

/// The median of `figure` over the runs of `engine`.
pub fn median_of(
    runs: &[Run],
    engine: &str,
    figure: impl Fn(&Measured) -> Option<f64>,
) -> Option<f64> {
    let values: Vec<f64> = runs
        .iter()
        .filter(|run| run.engine == engine)
        .filter_map(|run| figure(&run.measured))
        .collect();
    (!values.is_empty()).then(|| report::median_f64(values))
}

/// The engines that appear in `runs`, in first-seen order.
pub fn engines(runs: &[Run]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for run in runs {
        if !names.contains(&run.engine) {
            names.push(run.engine.clone());
        }
    }
    names
}
