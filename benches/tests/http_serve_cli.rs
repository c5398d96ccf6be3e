//! `percore-bench serve http --server percore-http`: the hello-world service
//! on percore-http, driven as the HTTP comparison drives it (`--control`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use percore_bench::child::listening_addr;
use percore_bench::http_compare::idle::{self, IdleProtocol};

struct Server {
    child: Child,
    addr: SocketAddr,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_percore-bench"))
            .args(["serve", "http", "--server", "percore-http"])
            .args(["--addr", "127.0.0.1:0", "--control"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("percore-http"), "{line:?}");
        let addr = listening_addr(&line).unwrap();
        Server {
            child,
            addr,
            stdout,
        }
    }

    fn stats(&mut self) -> serde_json::Value {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "stats").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        // Closing stdin ends it; kill in case it did not.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serves_hello_over_http1_and_h2c_and_reports_counters() {
    let mut server = Server::start(&[]);
    let before = server.stats();
    assert!(before["heap"].as_u64().is_some(), "{before}");
    assert!(before["driver"].is_string(), "{before}");

    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    stream.read_to_string(&mut got).unwrap();
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got:?}");
    assert!(got.ends_with("\r\n\r\nHello, world!"), "{got:?}");

    // Held open: each answered once, over HTTP/1.1 and over h2c.
    let h1 = idle::open(server.addr, IdleProtocol::H1, 5).unwrap();
    let h2 = idle::open(server.addr, IdleProtocol::H2c, 5).unwrap();
    assert_eq!((h1.len(), h2.len()), (5, 5));

    let after = server.stats();
    assert!(
        after["sqes"].as_u64().unwrap() > before["sqes"].as_u64().unwrap(),
        "{before} -> {after}"
    );
}

#[test]
fn serves_https_with_h2_by_alpn() {
    let server = Server::start(&["--tls"]);
    // HTTP/1.1 by ALPN over TLS, held open as the idle-memory figure holds
    // them: each answered once.
    let held = idle::open(server.addr, IdleProtocol::H1Tls, 3).unwrap();
    assert_eq!(held.len(), 3);
    // A plain request to a TLS server is no answer.
    assert!(idle::open(server.addr, IdleProtocol::H1, 1).is_err());
    let Ok(output) = Command::new("curl")
        .args([
            "-sk",
            "--http2",
            "--max-time",
            "10",
            "-w",
            " %{http_version}",
        ])
        .arg(format!("https://{}/", server.addr))
        .output()
    else {
        eprintln!("curl is not installed: the HTTPS check is skipped");
        return;
    };
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(text, "Hello, world! 2", "{output:?}");
}

#[test]
fn percore_http_flags_are_checked() {
    for bad in [
        &["serve", "echo", "--server", "percore-http"][..],
        &["serve", "http", "--tls"],
        &["serve", "http", "--server", "nginx"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_percore-bench"))
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {output:?}");
    }
}
