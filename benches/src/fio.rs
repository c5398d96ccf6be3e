//! fio as a peer: run one job with `--output-format=json` and read back its
//! IOPS, bytes and latency percentiles (and, from an IOPS log, ops over
//! time). Used by `percore-bench fs --compare` and the `fs_compare` bench.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// The latency quantiles fio is asked for (`--percentile_list`, at most 20
/// entries) and percore's histograms are read at, so both report the same points.
pub const QUANTILES: [f64; 18] = [
    0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995,
    0.9998, 0.9999,
];

/// One fio job, in fio's own terms.
#[derive(Debug, Clone)]
pub struct FioJob<'a> {
    /// `--filename`.
    pub path: &'a Path,
    /// `--rw`: `randread`, `randwrite`, `read` or `write`.
    pub rw: &'a str,
    /// `--bs`, bytes.
    pub bs: usize,
    /// `--iodepth`.
    pub iodepth: usize,
    /// `--direct=1`.
    pub direct: bool,
    /// Bytes each job covers (`--size`); job `i` starts at `i × size`
    /// (`--offset_increment`).
    pub size: u64,
    /// `--runtime`, time based.
    pub runtime: Duration,
    /// `--ioengine`: `io_uring`, `psync`…
    pub engine: &'a str,
    /// `--numjobs`, reported as one group.
    pub jobs: usize,
    /// `--cpus_allowed` (one CPU per job, `split`); `None`: not pinned.
    pub cpus: Option<Vec<usize>>,
    /// Also log IOPS averaged over this step (`--write_iops_log`,
    /// `--log_avg_msec`) into [`FioResult::timeline`]; `None`: no log.
    pub timeline_step: Option<Duration>,
    /// Busy-poll for completions instead of blocking in the kernel
    /// (`--iodepth_batch_complete_min=0`).
    pub busy_poll: bool,
}

/// What one fio run measured (total latency: submission to completion).
#[derive(Debug, Clone)]
pub struct FioResult {
    /// Reads or writes completed.
    pub ops: u64,
    /// Bytes read or written.
    pub bytes: u64,
    /// fio's runtime of the group.
    pub elapsed: Duration,
    /// fio's IOPS.
    pub iops: f64,
    /// `(quantile, latency)` at each of [`QUANTILES`].
    pub percentiles: Vec<(f64, Duration)>,
    /// The longest latency.
    pub max: Duration,
    /// The mean latency.
    pub mean: Duration,
    /// CPU the jobs used, user and system, over their runtime, in CPUs (1.0:
    /// one CPU busy the whole run): fio's `usr_cpu + sys_cpu` summed over jobs.
    pub cpu: Option<f64>,
    /// Ops completed in each step of [`FioJob::timeline_step`], all jobs
    /// together; empty without a log.
    pub timeline: Vec<u64>,
}

/// fio's version line (`fio-3.33`), or `None` when `fio` is not on PATH.
pub fn version() -> Option<String> {
    let out = Command::new("fio").arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl FioJob<'_> {
    /// fio's arguments for this job.
    pub fn args(&self) -> Vec<String> {
        self.args_logging_to(None)
    }

    /// fio's arguments, with the IOPS log (if asked for) under `log_prefix`.
    fn args_logging_to(&self, log_prefix: Option<&Path>) -> Vec<String> {
        let percentiles: Vec<String> = QUANTILES
            .iter()
            .map(|q| format!("{:.2}", q * 100.0))
            .collect();
        let mut args: Vec<String> = [
            "--name=percore-bench",
            "--time_based",
            // Like percore's runs: offsets drawn afresh, the page cache left as it is.
            "--norandommap",
            "--randrepeat=0",
            "--invalidate=0",
            "--lat_percentiles=1",
            "--group_reporting",
            "--output-format=json",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend([
            // fio splits `--filename` at `:` (a list of files) unless escaped.
            format!(
                "--filename={}",
                self.path.display().to_string().replace(':', "\\:")
            ),
            format!("--rw={}", self.rw),
            format!("--bs={}", self.bs),
            format!("--iodepth={}", self.iodepth),
            format!("--direct={}", u8::from(self.direct)),
            format!("--size={}", self.size),
            format!("--offset_increment={}", self.size),
            format!("--numjobs={}", self.jobs.max(1)),
            format!("--runtime={}ms", self.runtime.as_millis().max(1)),
            format!("--ioengine={}", self.engine),
            format!("--percentile_list={}", percentiles.join(":")),
        ]);
        if self.busy_poll {
            args.push("--iodepth_batch_complete_min=0".into());
        }
        if let Some(cpus) = &self.cpus {
            let list: Vec<String> = cpus.iter().map(usize::to_string).collect();
            args.push(format!("--cpus_allowed={}", list.join(",")));
            args.push("--cpus_allowed_policy=split".into());
        }
        if let (Some(step), Some(prefix)) = (self.timeline_step, log_prefix) {
            args.push(format!("--write_iops_log={}", prefix.display()));
            args.push(format!("--log_avg_msec={}", step.as_millis().max(1)));
            args.push("--per_job_logs=0".into());
        }
        args
    }

    /// Runs fio and reads its JSON report.
    ///
    /// # Errors
    ///
    /// fio cannot start, exits with an error (its last stderr line is in the
    /// message), or prints a report without the figures expected.
    pub fn run(&self) -> io::Result<FioResult> {
        let prefix = std::env::temp_dir().join(format!("percore-bench-fio-{}", std::process::id()));
        // fio names the log `<prefix>_iops.log` (one file for all jobs).
        let log = PathBuf::from(format!("{}_iops.log", prefix.display()));
        let out = Command::new("fio")
            .args(self.args_logging_to(Some(&prefix)))
            .output()
            .map_err(|err| io::Error::new(err.kind(), format!("cannot run fio: {err}")));
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let out = out?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(io::Error::other(format!(
                "fio failed ({}): {why}",
                out.status
            )));
        }
        let direction = if self.rw.contains("write") {
            "write"
        } else {
            "read"
        };
        let mut result = parse(&stdout, direction)
            .ok_or_else(|| io::Error::other("fio printed a report without IOPS or latencies"))?;
        if let Some(step) = self.timeline_step {
            result.timeline = parse_iops_log(&log_text, step);
        }
        Ok(result)
    }
}

/// The `direction` (`read` or `write`) side of the first job of fio's JSON
/// report; `None` if a figure is missing. fio may print notes before the
/// JSON, so the report starts at the first `{`.
pub fn parse(output: &str, direction: &str) -> Option<FioResult> {
    let doc: Value = serde_json::from_str(&output[output.find('{')?..]).ok()?;
    let side = &doc["jobs"][0][direction];
    let lat = &side["lat_ns"];
    let nanos = |v: &Value| {
        v.as_f64()
            .map(|ns| Duration::from_nanos(ns.max(0.0) as u64))
    };
    let percentiles = QUANTILES
        .iter()
        .map(|&q| {
            let key = format!("{:.6}", q * 100.0);
            Some((q, nanos(&lat["percentile"][key.as_str()])?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(FioResult {
        ops: side["total_ios"].as_u64()?,
        bytes: side["io_bytes"].as_u64()?,
        elapsed: Duration::from_millis(side["runtime"].as_u64()?),
        iops: side["iops"].as_f64()?,
        percentiles,
        max: nanos(&lat["max"])?,
        mean: nanos(&lat["mean"])?,
        cpu: cpu_share(&doc["jobs"]),
        timeline: Vec::new(),
    })
}

/// Every job's `usr_cpu + sys_cpu` (percent of its runtime), summed, in CPUs.
fn cpu_share(jobs: &Value) -> Option<f64> {
    jobs.as_array()?
        .iter()
        .map(|job| Some(job["usr_cpu"].as_f64()? + job["sys_cpu"].as_f64()?))
        .sum::<Option<f64>>()
        .map(|percent| percent / 100.0)
}

/// Ops per `step` from fio's averaged IOPS log: lines of `end of window (ms),
/// IOPS, direction, …`, one per job and window; jobs are summed.
pub fn parse_iops_log(text: &str, step: Duration) -> Vec<u64> {
    let step_ms = step.as_millis().max(1) as u64;
    let mut ops: Vec<f64> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split(',').map(str::trim);
        let (Some(Ok(end_ms)), Some(Ok(iops))) = (
            fields.next().map(str::parse::<u64>),
            fields.next().map(str::parse::<f64>),
        ) else {
            continue;
        };
        let index = (end_ms.saturating_sub(1) / step_ms) as usize;
        if ops.len() <= index {
            ops.resize(index + 1, 0.0);
        }
        ops[index] += iops * step.as_secs_f64();
    }
    ops.into_iter().map(|n| n.round() as u64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_side_asked_for() {
        let percentiles: serde_json::Map<String, Value> = QUANTILES
            .iter()
            .enumerate()
            .map(|(i, q)| (format!("{:.6}", q * 100.0), Value::from(1000 * (i + 1))))
            .collect();
        let doc = serde_json::json!({
            "fio version": "fio-3.33",
            "jobs": [{
                "usr_cpu": 12.5, "sys_cpu": 50.0,
                "read": {
                    "io_bytes": 8192, "total_ios": 2, "runtime": 500, "iops": 4.0,
                    "lat_ns": { "max": 9e4, "mean": 5e3, "percentile": percentiles },
                },
                "write": { "io_bytes": 0, "total_ios": 0 },
            }, {
                // A second job (`--numjobs`) adds its CPU.
                "usr_cpu": 10.0, "sys_cpu": 2.5,
            }],
        });
        let text = format!("note: a line fio prints first\n{doc}");
        let result = parse(&text, "read").expect("a report");
        assert_eq!((result.ops, result.bytes), (2, 8192));
        assert_eq!(result.elapsed, Duration::from_millis(500));
        assert_eq!(result.percentiles[4], (0.5, Duration::from_micros(5)));
        assert_eq!(result.max, Duration::from_micros(90));
        assert_eq!(result.cpu, Some(0.75));
        assert!(parse(&text, "write").is_none());
        assert!(parse("no json", "read").is_none());
    }

    #[test]
    fn iops_logs_sum_jobs_per_step() {
        let log = "100, 26460, 0, 0, 0\n100, 30000, 0, 0, 0\n200, 10000, 0, 0, 0\nbad line\n";
        let step = Duration::from_millis(100);
        assert_eq!(parse_iops_log(log, step), [5646, 1000]);
        assert!(parse_iops_log("", step).is_empty());
    }
}
