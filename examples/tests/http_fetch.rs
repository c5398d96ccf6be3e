//! The `fetch` example binary against servers started here (percore-http
//! serving an axum `Router`, in the clear and over TLS with a CA made at
//! test time): it prints the status line, the headers, a blank line and the
//! body, over HTTP/1.1, h2c (`--http2`) and HTTPS (h2 by ALPN), follows a
//! redirect, prints a 404 as an answer; and it exits 1 with a message that
//! says what failed when it cannot fetch.

mod util;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::thread::JoinHandle;

use axum::response::Redirect;
use axum::routing::get;
use axum::Router;
use percore::http::io::Io;
use percore::http::server::{Accept, Accepted, Protocol, Server};
use percore::http::tls::{TlsAcceptor, TlsStream};
use percore::shutdown::Shutdown;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use util::example;

/// 1 MiB of a pattern that is not text.
fn big() -> Vec<u8> {
    (0..1u32 << 20).map(|i| (i % 251) as u8).collect()
}

fn app() -> Router {
    Router::new()
        .route(
            "/hello",
            get(|| async { ([("x-test", "yes")], "hello from the test") }),
        )
        .route("/old", get(|| async { Redirect::to("/hello") }))
        .route("/big", get(|| async { big() }))
}

/// The TLS step of the test's HTTPS server: the handshake, then the
/// protocol ALPN chose.
#[derive(Clone)]
struct Tls(TlsAcceptor);

impl Accept for Tls {
    type Conn = TlsStream<Io>;

    fn accept(&self, io: Io) -> impl Future<Output = io::Result<Accepted<TlsStream<Io>>>> {
        let acceptor = self.0.clone();
        async move {
            let tls = acceptor.accept(io).await?;
            let protocol = if tls.is_h2() {
                Protocol::Http2
            } else {
                Protocol::Http1
            };
            Ok(Accepted {
                conn: tls,
                protocol: Some(protocol),
            })
        }
    }
}

/// A server on one core, stopped (and joined) on drop.
struct Running {
    addr: SocketAddr,
    shutdown: Shutdown,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.begin();
        if let Some(thread) = self.thread.take() {
            let served = thread.join().expect("the server did not panic");
            if !std::thread::panicking() {
                served.expect("the server served");
            }
        }
    }
}

/// Serves [`app`] on 127.0.0.1, over TLS if `tls` is given.
fn serve(tls: Option<TlsAcceptor>) -> Running {
    let builder = Server::builder().cores(1).signals(false);
    let (addr, shutdown, thread) = match tls {
        None => {
            let server = builder.bind("127.0.0.1:0").expect("bind");
            let (addr, shutdown) = (server.local_addr(), server.shutdown_handle());
            (addr, shutdown, std::thread::spawn(|| server.serve(app())))
        }
        Some(acceptor) => {
            let server = builder
                .acceptor(Tls(acceptor))
                .bind("127.0.0.1:0")
                .expect("bind");
            let (addr, shutdown) = (server.local_addr(), server.shutdown_handle());
            (addr, shutdown, std::thread::spawn(|| server.serve(app())))
        }
    };
    Running {
        addr,
        shutdown,
        thread: Some(thread),
    }
}

/// A CA and a certificate it signed for `localhost`, as PEM files in a
/// folder of this test's, removed on drop.
struct Pki {
    dir: std::path::PathBuf,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "percore-examples-fetch-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "percore fetch test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let pki = Pki { dir };
        std::fs::write(pki.file("ca.pem"), ca.pem()).unwrap();
        std::fs::write(pki.file("cert.pem"), cert.pem()).unwrap();
        std::fs::write(pki.file("key.pem"), key.serialize_pem()).unwrap();
        pki
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from_pem_files(self.file("cert.pem"), self.file("key.pem")).unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `fetch --timeout 60 ARGS` (so that a fetch that hangs fails),
/// with no CA store of the system's in reach (a test must not depend on
/// the machine's).
fn fetch(args: &[&str]) -> Output {
    Command::new(example("fetch"))
        .args(["--timeout", "60"])
        .args(args)
        .env("SSL_CERT_FILE", "/nonexistent/ca.pem")
        .env("SSL_CERT_DIR", "/nonexistent")
        .output()
        .expect("fetch runs")
}

/// The head (status line and headers, as `fetch` prints them) and the
/// body of a successful fetch.
fn answer(output: &Output) -> (String, &[u8]) {
    assert!(
        output.status.success(),
        "fetch failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // (stderr may hold the runtime's stall reports on a loaded machine.)
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("fetch:"), "{stderr}");
    let end = output
        .stdout
        .windows(2)
        .position(|pair| pair == b"\n\n")
        .unwrap_or_else(|| panic!("a blank line after the head: {:?}", output.stdout));
    let head = String::from_utf8(output.stdout[..end + 1].to_vec()).expect("a text head");
    (head, &output.stdout[end + 2..])
}

/// `fetch` failed: exit 1, nothing on stdout, and its message on stderr
/// (after the runtime's stall reports, if any) says `says`. The message
/// and what follows it (the usage).
fn failed(output: &Output, says: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty(), "{:?}", output.stdout);
    let at = stderr
        .find("fetch: ")
        .unwrap_or_else(|| panic!("a message: {stderr}"));
    let message = stderr[at..].to_string();
    assert!(message.contains(says), "{says:?} in {message}");
    message
}

#[test]
fn fetch_prints_status_headers_and_body_over_http1_and_h2c() {
    let server = serve(None);
    let url = format!("http://{}/hello", server.addr);
    for (args, status_line) in [
        (vec![url.as_str()], "HTTP/1.1 200 OK\n"),
        (vec!["--http2", url.as_str()], "HTTP/2.0 200 OK\n"),
    ] {
        let output = fetch(&args);
        let (head, body) = answer(&output);
        assert!(head.starts_with(status_line), "{args:?}: {head}");
        assert!(head.contains("\nx-test: yes\n"), "{head}");
        assert!(head.contains("\ncontent-length: 19\n"), "{head}");
        assert_eq!(body, b"hello from the test");
    }
    // A body that is not text comes out byte for byte.
    let output = fetch(&[&format!("http://{}/big", server.addr)]);
    let (head, body) = answer(&output);
    assert!(head.contains("\ncontent-length: 1048576\n"), "{head}");
    assert!(body == big(), "1 MiB intact");
    // A redirect is followed; the answer printed is the last.
    let output = fetch(&[&format!("http://{}/old", server.addr)]);
    let (head, body) = answer(&output);
    assert!(head.starts_with("HTTP/1.1 200 OK\n"), "{head}");
    assert_eq!(body, b"hello from the test");
    // A 404 is an answer: printed, exit 0.
    let output = fetch(&[&format!("http://{}/missing", server.addr)]);
    let (head, body) = answer(&output);
    assert!(head.starts_with("HTTP/1.1 404 Not Found\n"), "{head}");
    assert!(body.is_empty());
}

#[test]
fn fetch_speaks_https_with_h2_by_alpn_and_checks_the_certificate() {
    let pki = Pki::new("https");
    let server = serve(Some(pki.acceptor()));
    let url = format!("https://localhost:{}/hello", server.addr.port());
    let output = fetch(&["--cacert", &pki.file("ca.pem"), &url]);
    let (head, body) = answer(&output);
    assert!(head.starts_with("HTTP/2.0 200 OK\n"), "{head}");
    assert_eq!(body, b"hello from the test");
    // Trusting no CA that signed it (the system's store is out of reach):
    // refused, with the reason.
    let output = fetch(&[&url]);
    let stderr = failed(&output, "connect failed");
    assert!(
        stderr.contains("CA") || stderr.contains("certificate"),
        "{stderr}"
    );
    // A certificate trusted, for another name.
    let other = format!("https://127.0.0.1:{}/hello", server.addr.port());
    let output = fetch(&["--cacert", &pki.file("ca.pem"), &other]);
    failed(&output, "connect failed");
    // A CA file that is not there.
    let output = fetch(&["--cacert", &pki.file("missing.pem"), &url]);
    failed(&output, "missing.pem");
}

#[test]
fn fetch_fails_with_exit_1_saying_why() {
    // A port with no listener: connect refused.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let output = fetch(&[&format!("http://{addr}/")]);
    let stderr = failed(&output, "connect failed");
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(stderr.contains("refused"), "{stderr}");
    failed(&fetch(&["ftp://127.0.0.1/"]), "invalid URL");
    failed(&fetch(&["not a url"]), "invalid URL");
    // Command-line errors come with the usage.
    for (args, says) in [
        (&[][..], "no URL"),
        (&["--nope", "http://a/"][..], "unknown flag"),
        (&["--timeout", "soon", "http://a/"][..], "not a number"),
    ] {
        let stderr = failed(&fetch(args), says);
        assert!(stderr.contains("usage: fetch"), "{stderr}");
    }
    let help = fetch(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: fetch"));
}
