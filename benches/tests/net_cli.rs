//! `percore-bench net` and `serve` as a user runs them: the built binary,
//! against servers on 127.0.0.1, with short runs.

mod common;

use serde_json::Value;

use common::{bench, stdout, temp_path};

#[test]
fn json_has_the_documented_fields() {
    let output = bench(&[
        "net",
        "echo",
        "--connections",
        "4",
        "--size",
        "64",
        "--duration",
        "0.3",
        "--json",
    ]);
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("stdout is JSON");
    assert_eq!(doc["schema"], "percore-bench.net.v1");
    assert_eq!(doc["protocol"], "echo");
    assert_eq!(doc["connections"], 4);
    assert_eq!(doc["size"], 64);
    assert_eq!(doc["target"], Value::Null);
    let runs = doc["runs"].as_array().expect("runs is an array");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["server"], "percore");
    assert_eq!(run["errors"], 0);
    assert_eq!(run["connected"], 4);
    assert!(run["requests"].as_u64().expect("requests") > 0);
    assert!(run["req_per_s"].as_f64().expect("req_per_s") > 0.0);
    let latency = &run["latency_us"];
    let mut last = 0.0;
    for key in ["p50", "p90", "p99", "p99_9", "max"] {
        let value = latency[key]
            .as_f64()
            .unwrap_or_else(|| panic!("latency_us.{key}"));
        assert!(value > 0.0 && value >= last, "{key} = {value} after {last}");
        last = value;
    }
    assert!(latency["mean"].as_f64().is_some());
    assert!(
        run["server_cpu_us_per_request"]
            .as_f64()
            .expect("server CPU")
            > 0.0
    );
    // The percore server reports its counters and its backend: on io_uring at
    // least one SQE per request; on epoll (`PERCORE_DRIVER=epoll`, or no
    // io_uring here) no SQE figure, its SQEs being the backend's emulation.
    match run["server_driver"].as_str() {
        Some("io_uring") => {
            assert!(run["server_sqes_per_request"].as_f64().expect("SQEs") >= 1.0)
        }
        Some("epoll") => assert!(run["server_sqes_per_request"].is_null()),
        other => panic!("server_driver = {other:?}"),
    }
    assert!(run["server_enters_per_request"].as_f64().is_some());
    assert_eq!(run["timeline"]["step_ms"], 100);
    let timeline = run["timeline"]["requests"].as_array().expect("timeline");
    let total: u64 = timeline.iter().filter_map(Value::as_u64).sum();
    assert_eq!(total, run["requests"].as_u64().unwrap());
    assert_eq!(doc["summary"][0]["server"], "percore");
    assert_eq!(doc["ratios"].as_array().map(Vec::len), Some(0));
}

#[test]
fn plot_writes_an_svg_with_both_charts() {
    let path = temp_path("plot.svg");
    let output = bench(&[
        "net",
        "http",
        "--connections",
        "4",
        "--duration",
        "0.3",
        "--plot",
        path.to_str().unwrap(),
    ]);
    let table = stdout(&output);
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
        "req/s",
        "percore",
    ] {
        assert!(svg.contains(text), "the SVG lacks {text:?}");
    }
    // One line per series and chart.
    assert!(svg.matches("<polyline").count() >= 2, "no series drawn");
}

#[test]
fn the_table_names_every_percentile() {
    let table = stdout(&bench(&[
        "net",
        "echo",
        "--connections",
        "2",
        "--duration",
        "0.2",
        "--rate",
        "2000",
    ]));
    for column in [
        "req/s",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "server CPU/req",
    ] {
        assert!(table.contains(column), "{column} missing from\n{table}");
    }
    assert!(table.contains("open loop"), "{table}");
}

#[test]
fn compare_runs_every_peer_and_prints_ratios() {
    let output = bench(&[
        "net",
        "echo",
        "--compare",
        "--rounds",
        "1",
        "--connections",
        "4",
        "--duration",
        "0.2",
        "--json",
    ]);
    if output.status.code() == Some(2)
        && String::from_utf8_lossy(&output.stderr).contains("--example peer_server")
    {
        // `cargo test` builds examples, so this happens only when the test
        // binary runs on its own; the message is the one a user sees.
        eprintln!("peer_server not built: skipping");
        return;
    }
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("stdout is JSON");
    let servers: Vec<&str> = doc["summary"]
        .as_array()
        .expect("summary")
        .iter()
        .filter_map(|s| s["server"].as_str())
        .collect();
    assert_eq!(servers, ["percore", "tokio", "monoio"]);
    let ratios = doc["ratios"].as_array().expect("ratios");
    assert_eq!(ratios.len(), 2);
    for ratio in ratios {
        assert_eq!(ratio["numerator"], "percore");
        assert!(ratio["req_per_s"].as_f64().expect("ratio") > 0.0);
        assert!(ratio["server_cpu_per_request"].as_f64().expect("CPU ratio") > 0.0);
    }
    // The machine the ratios were measured on.
    let machine = doc["machine"].as_str().expect("machine");
    assert!(machine.contains("a system call"), "{machine}");
}

/// `true` (and a note) when `output` is the missing-`peer_server` error.
fn peer_server_missing(output: &std::process::Output) -> bool {
    let missing = output.status.code() == Some(2)
        && String::from_utf8_lossy(&output.stderr).contains("--example peer_server");
    if missing {
        eprintln!("peer_server not built: skipping");
    }
    missing
}

#[test]
fn clients_take_turns_against_fresh_servers_with_ratios_per_round() {
    let output = bench(&[
        "net",
        "echo",
        "--compare",
        "--servers",
        "percore,tokio",
        "--client",
        "percore,tokio",
        "--rounds",
        "2",
        "--connections",
        "4",
        "--duration",
        "0.2",
        "--json",
    ]);
    if peer_server_missing(&output) {
        return;
    }
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("stdout is JSON");
    assert_eq!(doc["clients"], serde_json::json!(["percore", "tokio"]));
    assert_eq!(doc["fresh_servers"], true);
    let runs = doc["runs"].as_array().expect("runs");
    // 2 rounds x 2 clients x 2 servers.
    assert_eq!(runs.len(), 8);
    for run in runs {
        assert_eq!(run["errors"], 0, "{run}");
        assert!(run["requests"].as_u64().expect("requests") > 0);
        assert!(
            run["server_cpu_us_per_request"]
                .as_f64()
                .expect("server CPU")
                > 0.0
        );
        assert!(
            run["client_cpu_us_per_request"]
                .as_f64()
                .expect("client CPU")
                > 0.0
        );
        assert!(run["server_sleeps_per_request"].as_f64().is_some());
    }
    let tokio_runs = runs.iter().filter(|r| r["client"] == "tokio").count();
    assert_eq!(tokio_runs, 4);
    assert_eq!(runs.iter().filter(|r| r["round"] == 1).count(), 4);
    let ratios = doc["ratios"].as_array().expect("ratios");
    assert_eq!(ratios.len(), 2, "percore/tokio once per client");
    for ratio in ratios {
        assert_eq!(ratio["denominator"], "tokio");
        let rounds = ratio["server_cpu_per_request_by_round"]
            .as_array()
            .expect("per-round ratios");
        assert_eq!(rounds.len(), 2);
        assert!(
            ratio["server_cpu_per_request_median_of_rounds"]
                .as_f64()
                .expect("median")
                > 0.0
        );
    }
    let table = stdout(&bench(&[
        "net",
        "echo",
        "--compare",
        "--servers",
        "percore,tokio",
        "--client",
        "tokio",
        "--rounds",
        "2",
        "--connections",
        "4",
        "--duration",
        "0.2",
    ]));
    assert!(table.contains("tokio client, 1 thread"), "{table}");
    assert!(table.contains("per round"), "{table}");
}

#[test]
fn wrk_loads_http_when_installed() {
    if std::process::Command::new("wrk")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("wrk not installed: skipping");
        return;
    }
    let output = bench(&[
        "net",
        "http",
        "--client",
        "wrk",
        "--connections",
        "4",
        "--duration",
        "0.2",
        "--json",
    ]);
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("stdout is JSON");
    let run = &doc["runs"][0];
    assert_eq!(run["client"], "wrk");
    assert_eq!(run["errors"], 0, "{run}");
    assert!(run["requests"].as_u64().expect("requests") > 0);
    // wrk runs whole seconds.
    assert!(run["elapsed_s"].as_f64().expect("elapsed") >= 0.9);
    assert!(run["latency_us"]["p50"].as_f64().expect("p50") > 0.0);
    assert!(
        run["server_cpu_us_per_request"]
            .as_f64()
            .expect("server CPU")
            > 0.0
    );
}

#[test]
fn open_loop_never_sends_ahead_of_its_schedule() {
    // 1,000 req/s over 2 connections for 0.3 s: at most 150 due per connection.
    let output = bench(&[
        "net",
        "http",
        "--connections",
        "2",
        "--duration",
        "0.3",
        "--rate",
        "1000",
        "--json",
    ]);
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("stdout is JSON");
    assert_eq!(doc["rate"], 1000.0);
    let requests = doc["runs"][0]["requests"].as_u64().expect("requests");
    assert!((1..=300).contains(&requests), "{requests} requests");
    assert_eq!(doc["runs"][0]["errors"], 0);
}

/// Bad arguments: one line on stderr, exit status 2, no panic.
fn assert_usage_error(args: &[&str], says: &str) {
    let output = bench(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(
        stderr.contains(says),
        "{args:?} should say {says:?}: {stderr}"
    );
}

#[test]
fn bad_arguments_give_one_line_and_status_2() {
    assert_usage_error(&["net", "echo", "--connections", "0"], "--connections 0");
    assert_usage_error(&["net", "ftp"], "expected `echo` or `http`");
    assert_usage_error(&["net", "http", "--target", "not-an-address"], "IP:PORT");
    assert_usage_error(&["demo", "--runs", "0"], "--runs 0");
}

#[test]
fn an_unreachable_target_gives_one_line_and_status_2() {
    // Bind and drop: nothing listens on this port now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let target = format!("127.0.0.1:{port}");
    assert_usage_error(
        &["net", "echo", "--target", &target, "--duration", "0.2"],
        "cannot connect",
    );
}

#[test]
fn an_unwritable_plot_file_gives_one_line_and_status_2() {
    // A full device, and a folder that does not exist (as root, nearly every
    // path is writable, so these stand for read-only paths too).
    assert_usage_error(
        &["net", "echo", "--duration", "0.2", "--plot", "/dev/full"],
        "--plot /dev/full",
    );
    assert_usage_error(
        &[
            "net",
            "echo",
            "--duration",
            "0.2",
            "--plot",
            "/nonexistent-dir/p.svg",
        ],
        "--plot /nonexistent-dir/p.svg",
    );
    assert_usage_error(
        &[
            "net",
            "echo",
            "--duration",
            "0.2",
            "--plot",
            "/proc/version",
        ],
        "--plot /proc/version",
    );
}

#[test]
fn serve_on_a_port_in_use_gives_one_line_and_status_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    // SO_REUSEPORT would share a port only with sockets that also set it.
    assert_usage_error(&["serve", "echo", "--addr", &addr], "serve:");
}

/// `serve` under SIGTERM: what was received is answered, the connection
/// closes with a FIN, new connects are refused, and it exits 0.
#[test]
fn serve_drains_on_sigterm_and_exits_0() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    /// Kills the server if the test fails before it exits.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    for protocol in ["echo", "http"] {
        let mut child = Killed(
            Command::new(env!("CARGO_BIN_EXE_percore-bench"))
                .args(["serve", protocol, "--addr", "127.0.0.1:0", "--cores", "2"])
                .args(["--grace", "20"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("serve starts"),
        );
        let mut out = child.0.stdout.take().expect("piped stdout");
        let mut line = Vec::new();
        let mut byte = [0];
        while out.read(&mut byte).expect("stdout") == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        let addr: std::net::SocketAddr = line
            .split_whitespace()
            .nth(5)
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("{protocol}: no address in {line:?}"));
        let request: &[u8] = match protocol {
            "echo" => b"ping",
            _ => b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        };
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream.write_all(request).expect("request");
        let mut first = vec![0; 4];
        stream.read_exact(&mut first).expect("an answer begins");
        // A second request in flight when the signal arrives.
        stream.write_all(request).expect("request");
        let pid = i32::try_from(child.0.id()).expect("a pid");
        // SAFETY: SIGTERM to our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let mut rest = Vec::new();
        stream
            .read_to_end(&mut rest)
            .unwrap_or_else(|err| panic!("{protocol}: FIN expected, got {err}"));
        let all = [first, rest].concat();
        match protocol {
            "echo" => assert_eq!(all, b"pingping", "both echoed, then FIN"),
            _ => assert_eq!(
                String::from_utf8_lossy(&all).matches("200 OK").count(),
                2,
                "both answered, then FIN: {:?}",
                String::from_utf8_lossy(&all)
            ),
        }
        let status = child.0.wait().expect("wait");
        let mut text = String::new();
        out.read_to_string(&mut text).expect("stdout");
        assert!(status.success(), "{protocol}: {status}; stdout {text:?}");
        assert!(
            text.contains("shut down (0 connections cut"),
            "{protocol}: {text:?}"
        );
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{protocol}: a connect succeeded after the exit"
        );
    }
}
