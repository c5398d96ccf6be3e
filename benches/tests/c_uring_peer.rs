//! The hand-written C io_uring server (`benches/c/uring_server.c`), the
//! `c-uring` peer of `percore-bench net --compare`.
//!
//! The suite must not need liburing, so the tests that build and run the C
//! server are `#[ignore]`d; run them with
//! `cargo test -p percore-bench --test c_uring_peer -- --include-ignored`
//! (needs a C compiler and `apt-get install -y liburing-dev`). They are about
//! io_uring itself: on a kernel without it (or `PERCORE_DRIVER=epoll`, which
//! does not change what a C program uses) they still run the C server, which
//! then fails to start and says why.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use percore_bench::child::{c_uring_server_near, listening_addr};
use percore_bench::http::{BAD_REQUEST, RESPONSE};
use serde_json::Value;

use common::{bench, stdout};

fn bench_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_percore-bench"))
}

/// Without the C server next to the binary, `--servers c-uring` is a one-line
/// error naming the build script; with it, the comparison runs.
#[test]
fn c_uring_needs_its_build_script_or_runs() {
    let output = bench(&[
        "net",
        "echo",
        "--compare",
        "--servers",
        "percore,c-uring",
        "--rounds",
        "1",
        "--connections",
        "2",
        "--duration",
        "0.2",
    ]);
    if c_uring_server_near(&bench_binary()).is_file() {
        let table = stdout(&output);
        assert!(table.contains("percore/c-uring"), "{table}");
    } else {
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("build_c_server.sh"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

/// Builds the C server next to the test's `percore-bench` with the script,
/// once per test process (tests run in parallel; one must not overwrite the
/// program another runs).
fn build() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_now).clone()
}

fn build_now() -> PathBuf {
    let path = c_uring_server_near(&bench_binary());
    let dir = path.parent().expect("a folder").to_path_buf();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build_c_server.sh");
    let status = Command::new(script)
        .arg(&dir)
        .status()
        .expect("the build script runs");
    assert!(status.success(), "build_c_server.sh failed");
    path
}

/// A C server child; dropping it closes its stdin, which ends it.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(program: &Path, protocol: &str) -> Server {
        let mut child = Command::new(program)
            .args([
                protocol,
                "--addr",
                "127.0.0.1:0",
                "--cores",
                "2",
                "--control",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the C server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with(&format!("c-uring: {protocol} listening on 127.0.0.1:")));
        assert!(line.trim_end().ends_with("(2 cores)"), "{line}");
        let addr = listening_addr(&line).expect("an address");
        Server { child, addr }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        if !std::thread::panicking() {
            assert!(status.success(), "the C server exited with {status}");
        }
    }
}

#[test]
#[ignore = "needs liburing-dev and a C compiler: --include-ignored"]
fn echo_sends_back_every_byte_in_order() {
    let server = Server::start(&build(), "echo");
    let mut stream = server.connect();
    // More than the whole buffer ring (16 MiB), so buffers must come back.
    let sent: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut writer = stream.try_clone().unwrap();
    let data = sent.clone();
    let writing = std::thread::spawn(move || writer.write_all(&data).unwrap());
    let mut got = vec![0; sent.len()];
    stream.read_exact(&mut got).unwrap();
    writing.join().unwrap();
    assert!(got == sent, "the echo differs from what was sent");
}

#[test]
#[ignore = "needs liburing-dev and a C compiler: --include-ignored"]
fn http_answers_pipelined_and_split_heads_and_closes_on_a_huge_one() {
    let server = Server::start(&build(), "http");
    let mut stream = server.connect();
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    // Two heads at once, then one split inside its "\r\n\r\n".
    stream
        .write_all(&[&request[..], &request[..]].concat())
        .unwrap();
    stream.write_all(&request[..request.len() - 2]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(b"\r\n").unwrap();
    let mut got = vec![0; 3 * RESPONSE.len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(got, RESPONSE.repeat(3));

    let mut huge = server.connect();
    huge.write_all(b"GET / HTTP/1.1\r\nX: ").unwrap();
    huge.write_all(&[b'a'; 9 * 1024]).unwrap();
    let mut answer = Vec::new();
    huge.read_to_end(&mut answer).unwrap();
    assert_eq!(answer, BAD_REQUEST);
}

#[test]
#[ignore = "needs liburing-dev and a C compiler: --include-ignored"]
fn http_compare_prints_c_uring_over_tokio() {
    build();
    let output = bench(&[
        "net",
        "http",
        "--compare",
        "--servers",
        "percore,tokio,c-uring",
        "--rounds",
        "2",
        "--connections",
        "4",
        "--duration",
        "0.3",
        "--json",
    ]);
    if output.status.code() == Some(2)
        && String::from_utf8_lossy(&output.stderr).contains("--example peer_server")
    {
        eprintln!("peer_server not built: skipping");
        return;
    }
    let doc: Value = serde_json::from_str(&stdout(&output)).expect("stdout is JSON");
    for run in doc["runs"].as_array().expect("runs") {
        assert_eq!(run["errors"], 0, "{run}");
        assert!(run["requests"].as_u64().expect("requests") > 0, "{run}");
    }
    let pairs: Vec<(String, String)> = doc["ratios"]
        .as_array()
        .expect("ratios")
        .iter()
        .map(|r| {
            (
                r["numerator"].as_str().unwrap().to_owned(),
                r["denominator"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        pairs,
        [
            pair("percore", "tokio"),
            pair("percore", "c-uring"),
            pair("c-uring", "tokio")
        ]
    );
}
