//! Helpers shared by the TLS tests: a CA and a server certificate made at
//! test time (rcgen), written as PEM files; hyper servers over TLS; fd counts.

#![allow(dead_code)]

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::rt::{Read, ReadBuf, Write};
use hyper::{Request, Response};
use percore_http::io::Io;
use percore_http::rt::Executor;
use percore_http::tls::{TlsAcceptor, TlsConnector, TlsStream};
use percore_net::{TcpListener, TcpStream};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A folder of its own under the temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "percore-http-{}-{name}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA, a certificate for `localhost` and `127.0.0.1` it signed, and the
/// PEM files of both (`ca.pem`, `cert.pem`, `key.pem`) in a temp dir.
pub struct Pki {
    pub dir: TempDir,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("percore test CA {name}"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();

        let pki = Pki {
            dir: TempDir::new(name),
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        std::fs::write(pki.ca_file(), &pki.ca_pem).unwrap();
        std::fs::write(pki.cert_file(), &pki.cert_pem).unwrap();
        std::fs::write(pki.key_file(), &pki.key_pem).unwrap();
        pki
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn cert_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// The server side, built from the PEM files.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from_pem_files(self.cert_file(), self.key_file()).unwrap()
    }

    /// A client trusting this CA, built from its PEM file.
    pub fn connector(&self) -> TlsConnector {
        TlsConnector::from_ca_pem_file(self.ca_file()).unwrap()
    }
}

/// Open fds of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// A listener on 127.0.0.1 with a free port.
pub fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Answers `GET /x` with `hello /x`, and any other request with its own body.
pub async fn echo(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    if request.method() == hyper::Method::GET {
        let body = format!("hello {}", request.uri().path());
        return Ok(Response::new(Full::new(Bytes::from(body))));
    }
    let body = request.into_body().collect().await?.to_bytes();
    Ok(Response::new(Full::new(body)))
}

/// Serves one TLS connection with hyper: HTTP/2 if ALPN chose it, else
/// HTTP/1.1.
pub async fn serve_tls(tls: TlsStream<Io>) -> Result<(), hyper::Error> {
    let service = hyper::service::service_fn(echo);
    if tls.is_h2() {
        hyper::server::conn::http2::Builder::new(Executor)
            .serve_connection(tls, service)
            .await
    } else {
        hyper::server::conn::http1::Builder::new()
            .serve_connection(tls, service)
            .await
    }
}

/// Accepts connections forever on this core: TLS handshake, then
/// [`serve_tls`]. Handshake errors go to `errors` (if given).
pub async fn tls_server(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    errors: Option<percore::sync::mpsc::Sender<io::Error>>,
) {
    let mut incoming = listener.incoming();
    while let Some(stream) = incoming.next().await {
        let Ok(stream) = stream else { continue };
        let acceptor = acceptor.clone();
        let errors = errors.clone();
        drop(percore::spawn(async move {
            match acceptor.accept(Io::new(stream)).await {
                Ok(tls) => drop(serve_tls(tls).await),
                Err(e) => {
                    if let Some(errors) = errors {
                        let _ = errors.send(e).await;
                    }
                }
            }
        }));
    }
}

/// A TLS connection to `addr` (TCP, then the handshake for `name`).
pub async fn connect(
    connector: &TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> io::Result<TlsStream<Io>> {
    let stream = TcpStream::connect(addr).await?;
    connector.connect(name, Io::new(stream)).await
}

/// A request: GET `path` without a body, or POST with `body`.
pub fn request(path: &str, body: Option<Bytes>) -> Request<Full<Bytes>> {
    let builder = Request::builder().uri(format!("https://localhost{path}"));
    match body {
        None => builder.method("GET").body(Full::new(Bytes::new())),
        Some(body) => builder.method("POST").body(Full::new(body)),
    }
    .unwrap()
}

/// Reads into `buf` once; the number of bytes read (0 = end of stream).
pub async fn read_some<T: Read + Unpin>(io: &mut T, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| {
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut *io).poll_read(cx, rb.unfilled()) {
            std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(Ok(rb.filled().len())),
            std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    })
    .await
}

/// Reads to the end of stream.
pub async fn read_to_end<T: Read + Unpin>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = vec![0; 16 * 1024];
    loop {
        match read_some(io, &mut buf).await? {
            0 => return Ok(all),
            n => all.extend_from_slice(&buf[..n]),
        }
    }
}

/// Writes all of `data`, then flushes.
pub async fn write_all<T: Write + Unpin>(io: &mut T, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, data)).await?;
        assert!(n > 0, "poll_write took no bytes");
        data = &data[n..];
    }
    poll_fn(|cx| Pin::new(&mut *io).poll_flush(cx)).await
}

/// Sends close_notify and shuts the writing side.
pub async fn shutdown<T: Write + Unpin>(io: &mut T) -> io::Result<()> {
    poll_fn(|cx| Pin::new(&mut *io).poll_shutdown(cx)).await
}
