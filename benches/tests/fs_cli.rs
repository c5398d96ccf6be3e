//! `percore-bench fs` as a user runs it: the built binary, tiny jobs (4 MiB,
//! 0.2 s) on files in the temp dir.

mod common;

use std::process::Command;

use serde_json::Value;

use common::{bench, stdout, temp_path};

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&stdout(&bench(args))).expect("stdout is JSON")
}

/// The fields every run has, with sane values; returns its IOPS.
fn check_run(run: &Value, bs: u64) -> f64 {
    let ops = run["ops"].as_u64().expect("ops");
    assert!(ops > 0, "{run}");
    assert_eq!(run["bytes"].as_u64(), Some(ops * bs));
    let iops = run["iops"].as_f64().expect("iops");
    assert!(iops > 0.0, "{run}");
    let mib = run["mib_per_s"].as_f64().expect("mib_per_s");
    assert!((mib - iops * bs as f64 / (1 << 20) as f64).abs() < 1e-6 * mib.max(1.0) + 0.5);
    assert!(run["elapsed_s"].as_f64().expect("elapsed_s") > 0.0);
    let latency = &run["latency_us"];
    let mut last = 0.0;
    for key in ["p50", "p90", "p99", "p99_9", "max"] {
        let value = latency[key]
            .as_f64()
            .unwrap_or_else(|| panic!("latency_us.{key} in {run}"));
        assert!(value > 0.0 && value >= last, "{key} = {value} after {last}");
        last = value;
    }
    assert!(latency["mean"].as_f64().expect("mean") > 0.0);
    // CPU in CPUs: no more than the machine has (fio rounds a short run's
    // share, which may come out as 0).
    let cpu = run["cpu"]
        .as_f64()
        .unwrap_or_else(|| panic!("cpu in {run}"));
    let cpus = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    assert!((0.0..=cpus * 1.1).contains(&cpu), "cpu = {cpu}");
    iops
}

#[test]
fn json_has_the_documented_fields() {
    let doc = json(&[
        "fs",
        "randread",
        "--size",
        "4m",
        "--duration",
        "0.2",
        "--iodepth",
        "4",
        "--json",
    ]);
    assert_eq!(doc["schema"], "percore-bench.fs.v1");
    assert_eq!(doc["rw"], "randread");
    assert_eq!(doc["bs"], 4096);
    assert_eq!(doc["iodepth"], 4);
    assert_eq!(doc["direct"], false);
    assert_eq!(doc["size"], 4 << 20);
    assert_eq!(doc["duration_s"], 0.2);
    assert_eq!(doc["cores"], 1);
    assert_eq!(doc["compare"], false);
    assert_eq!(doc["fio"], Value::Null);
    assert_eq!(doc["laid_out"], true);
    assert_eq!(doc["removed"], true);
    let file = doc["file"].as_str().expect("file");
    assert!(
        !std::path::Path::new(file).exists(),
        "{file} was not removed"
    );
    let runs = doc["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["engine"], "percore");
    assert_eq!(runs[0]["round"], 0);
    let iops = check_run(&runs[0], 4096);
    assert_eq!(runs[0]["timeline"]["step_ms"], 100);
    let timeline = runs[0]["timeline"]["ops"].as_array().expect("timeline");
    let total: u64 = timeline.iter().filter_map(Value::as_u64).sum();
    assert_eq!(Some(total), runs[0]["ops"].as_u64());
    assert_eq!(doc["summary"][0]["engine"], "percore");
    assert_eq!(doc["summary"][0]["iops"].as_f64(), Some(iops));
    assert!(doc["summary"][0]["p99_us"].as_f64().expect("p99_us") > 0.0);
    // The CPU a percore run reports covers its core's work. Its share of a
    // CPU depends on how busy the machine is, but the CPU time it spends per
    // read does not: a 4 KiB read from the page cache costs a core a
    // microsecond or more (copy, enter, completion, task), so 100 ns per read
    // holds however little CPU the run got, and a figure taken from a thread
    // that does not run the core comes out far below it.
    let cpu = runs[0]["cpu"].as_f64().expect("cpu");
    let elapsed = runs[0]["elapsed_s"].as_f64().expect("elapsed_s");
    let ops = runs[0]["ops"].as_u64().expect("ops") as f64;
    assert!(
        cpu * elapsed / ops > 100e-9,
        "{:.0} ns of CPU per read: {}",
        cpu * elapsed / ops * 1e9,
        runs[0]
    );
    assert_eq!(doc["summary"][0]["cpu"], runs[0]["cpu"]);
    assert_eq!(doc["ratios"].as_array().map(Vec::len), Some(0));
}

#[test]
fn every_job_runs_direct_and_buffered_on_a_kept_file() {
    let path = temp_path("jobs");
    let file = path.to_str().expect("a UTF-8 temp dir");
    for rw in ["randread", "randwrite", "read", "write"] {
        for direct in [false, true] {
            let mut args = vec![
                "fs",
                rw,
                "--file",
                file,
                "--size",
                "4m",
                "--bs",
                "8k",
                "--iodepth",
                "2",
                "--duration",
                "0.1",
                "--json",
            ];
            if direct {
                args.push("--direct");
            }
            let doc = json(&args);
            assert_eq!(doc["rw"], rw);
            assert_eq!(doc["direct"], direct);
            assert_eq!(doc["removed"], false);
            check_run(&doc["runs"][0], 8192);
        }
    }
    // Given with --file, the file stays, laid out to the size asked.
    let len = std::fs::metadata(&path).map(|m| m.len());
    std::fs::remove_file(&path).ok();
    assert_eq!(len.ok(), Some(4 << 20));
}

#[test]
fn the_table_names_every_column_and_two_cores_share_the_file() {
    let table = stdout(&bench(&[
        "fs",
        "read",
        "--size",
        "4m",
        "--duration",
        "0.2",
        "--cores",
        "2",
    ]));
    for column in ["IOPS", "MiB/s", "p50", "p90", "p99", "p99.9", "max"] {
        assert!(table.contains(column), "{column} missing from\n{table}");
    }
    assert!(table.contains("percore-bench fs read"), "{table}");
    assert!(table.contains("2 cores"), "{table}");
}

#[test]
fn compare_runs_fio_and_prints_ratios() {
    let output = bench(&[
        "fs",
        "randread",
        "--compare",
        "--rounds",
        "1",
        "--size",
        "4m",
        "--duration",
        "0.2",
        "--iodepth",
        "4",
        "--json",
    ]);
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("stdout is JSON");
    if doc["fio"].is_null() {
        // The note a user sees, and percore alone.
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("fio is not on PATH"), "{stderr}");
        assert_eq!(doc["runs"].as_array().map(Vec::len), Some(1));
        return;
    }
    let engines: Vec<&str> = doc["summary"]
        .as_array()
        .expect("summary")
        .iter()
        .filter_map(|s| s["engine"].as_str())
        .collect();
    assert_eq!(engines, ["percore", "fio"]);
    for run in doc["runs"].as_array().expect("runs") {
        check_run(run, 4096);
    }
    // fio's timeline comes from its IOPS log.
    let fio_ops = doc["runs"][1]["timeline"]["ops"]
        .as_array()
        .expect("fio's timeline");
    assert!(fio_ops.iter().filter_map(Value::as_u64).sum::<u64>() > 0);
    let ratio = &doc["ratios"][0];
    assert_eq!(ratio["numerator"], "percore");
    assert_eq!(ratio["denominator"], "fio");
    for key in ["iops", "mib_per_s", "p50", "p99"] {
        assert!(ratio[key].as_f64().expect(key) > 0.0, "{ratio}");
    }
}

#[test]
fn compare_without_fio_says_so_once_and_runs_percore_alone() {
    let output = Command::new(env!("CARGO_BIN_EXE_percore-bench"))
        .args(["fs", "read", "--compare", "--rounds", "2"])
        .args(["--size", "1m", "--duration", "0.1", "--json"])
        .env("PATH", "/nonexistent")
        .output()
        .expect("the percore-bench binary runs");
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("stdout is JSON");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("fio is not on PATH"), "{stderr}");
    assert_eq!(doc["fio"], Value::Null);
    let runs = doc["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "one percore run per round");
    assert!(runs.iter().all(|run| run["engine"] == "percore"));
    assert_eq!(doc["ratios"].as_array().map(Vec::len), Some(0));
}

#[test]
fn plot_writes_an_svg_with_both_charts() {
    let path = temp_path("fs-plot.svg");
    let table = stdout(&bench(&[
        "fs",
        "randwrite",
        "--size",
        "4m",
        "--duration",
        "0.3",
        "--plot",
        path.to_str().expect("a UTF-8 temp dir"),
    ]));
    assert!(table.contains("percore"), "{table}");
    let svg = std::fs::read_to_string(&path).expect("the plot was written");
    std::fs::remove_file(&path).ok();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    for text in [
        "latency by percentile",
        "percentile",
        "latency (µs)",
        "throughput over time",
        "time (s)",
        "IOPS",
        "percore",
    ] {
        assert!(svg.contains(text), "the SVG lacks {text:?}");
    }
    assert!(svg.matches("<polyline").count() >= 2, "no series drawn");
}

/// Bad arguments: one line on stderr, exit status 2, no panic.
fn assert_usage_error(args: &[&str], says: &[&str]) {
    let output = bench(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    for part in says {
        assert!(
            stderr.contains(part),
            "{args:?} should say {part:?}: {stderr}"
        );
    }
}

#[test]
fn bad_arguments_give_one_line_and_status_2() {
    assert_usage_error(&["fs"], &["needs a job"]);
    assert_usage_error(&["fs", "scan"], &["`fs scan`"]);
    assert_usage_error(&["fs", "randread", "--bs", "0"], &["--bs 0"]);
    assert_usage_error(&["fs", "randread", "--bs", "4x"], &["--bs 4x"]);
    assert_usage_error(&["fs", "randread", "--iodepth", "0"], &["--iodepth 0"]);
    assert_usage_error(&["fs", "randread", "--size", "0"], &["--size 0"]);
    assert_usage_error(&["fs", "randread", "--size", "1k"], &["--size 1024"]);
    assert_usage_error(&["fs", "randread", "--duration", "0"], &["--duration 0"]);
}

#[test]
fn a_bs_off_the_direct_alignment_gives_one_line_and_status_2() {
    assert_usage_error(
        &[
            "fs",
            "randread",
            "--direct",
            "--bs",
            "1000",
            "--size",
            "1m",
            "--duration",
            "0.1",
        ],
        &["--bs 1000", "direct I/O alignment"],
    );
}

#[test]
fn a_file_in_a_read_only_or_full_place_gives_one_line_and_status_2() {
    // As root, permissions stop nothing, so the places are ones the kernel
    // itself refuses: /proc and /sys take no new files, /dev/full no bytes.
    for (file, error) in [
        ("/proc/percore-bench-test", "No such file or directory"),
        ("/sys/percore-bench-test", "Permission denied"),
        ("/dev/full", "No space left on device"),
    ] {
        assert_usage_error(
            &[
                "fs",
                "randwrite",
                "--file",
                file,
                "--size",
                "1m",
                "--duration",
                "0.1",
            ],
            &[file, error],
        );
    }
    assert_usage_error(
        &["fs", "read", "--file", "/dev/shm", "--size", "1m"],
        &["/dev/shm is a directory"],
    );
    let plot = ["fs", "read", "--size", "1m", "--plot", "/proc/version"];
    assert_usage_error(&plot, &["--plot /proc/version"]);
}
