//! Idle keep-alive connections: opened from this process with blocking
//! sockets, one request answered on each (HTTP/1.1, h2c with prior
//! knowledge, or HTTP/1.1 over TLS), then held open while the server's
//! memory is read.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use percore::http::tls::rustls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

use crate::http_serve::HELLO;

/// The protocol the idle connections spoke once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleProtocol {
    /// One HTTP/1.1 keep-alive request.
    H1,
    /// The HTTP/2 preface and settings, one request on stream 1.
    H2c,
    /// One HTTP/1.1 keep-alive request over TLS (ALPN `http/1.1`); the
    /// server must be started with `--tls` (its self-signed certificate is
    /// not checked: the figure is memory, not trust).
    H1Tls,
}

impl IdleProtocol {
    /// `h1`, `h2c` or `h1-tls`.
    pub fn name(self) -> &'static str {
        match self {
            IdleProtocol::H1 => "h1",
            IdleProtocol::H2c => "h2c",
            IdleProtocol::H1Tls => "h1-tls",
        }
    }

    /// Whether the server must speak TLS.
    pub fn tls(self) -> bool {
        self == IdleProtocol::H1Tls
    }
}

/// An open idle connection; dropping it closes it.
pub struct Held(HeldStream);

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            HeldStream::Plain(stream) => f.debug_tuple("Held").field(stream).finish(),
            HeldStream::Tls(stream) => f.debug_tuple("Held").field(&stream.sock).finish(),
        }
    }
}

/// Held only to be dropped (which closes it).
enum HeldStream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// How long a server may take to answer one of the idle connections' requests.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens `count` connections to `addr`, makes one request on each and
/// reads its whole answer; returns them open and idle.
///
/// # Errors
///
/// A connection fails (or its TLS handshake), or an answer is not a
/// `Hello, world!` within 30 s.
pub fn open(addr: SocketAddr, protocol: IdleProtocol, count: usize) -> io::Result<Vec<Held>> {
    let named = |i: usize| {
        move |err: io::Error| io::Error::new(err.kind(), format!("idle connection {i}: {err}"))
    };
    if protocol.tls() {
        let config = Arc::new(tls_config()?);
        // One at a time: each handshake waits for the server anyway.
        return (0..count)
            .map(|i| {
                open_tls(addr, &config)
                    .map(|s| Held(HeldStream::Tls(Box::new(s))))
                    .map_err(named(i))
            })
            .collect();
    }
    let mut streams = Vec::with_capacity(count);
    // Connect and send all first, then read: the server handles them as
    // they come, not one round trip at a time.
    for i in 0..count {
        let mut stream = TcpStream::connect(addr).map_err(named(i))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        match protocol {
            IdleProtocol::H2c => stream.write_all(&h2_opening())?,
            IdleProtocol::H1 | IdleProtocol::H1Tls => stream.write_all(H1_REQUEST)?,
        }
        streams.push(stream);
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        let answered = match protocol {
            IdleProtocol::H2c => read_h2(stream),
            IdleProtocol::H1 | IdleProtocol::H1Tls => read_h1(stream),
        };
        answered.map_err(named(i))?;
    }
    Ok(streams
        .into_iter()
        .map(|s| Held(HeldStream::Plain(s)))
        .collect())
}

const H1_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// One TLS connection: handshake, one request, its answer.
fn open_tls(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let connection = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
    let mut stream = StreamOwned::new(connection, tcp);
    stream.write_all(H1_REQUEST)?;
    stream.flush()?;
    read_h1(&mut stream)?;
    Ok(stream)
}

/// A client that speaks HTTP/1.1 by ALPN and takes any certificate.
fn tls_config() -> io::Result<ClientConfig> {
    // The provider percore-http's configs and the peers' use (deprecated in
    // rustls 0.23.48 for lacking post-quantum key exchange, kept for its
    // light build; see percore-http's `tls` module).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Takes the server's certificate without checking it (the bench servers'
/// are self-signed, made at start); signatures are still verified.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Reads one HTTP/1.1 answer ending in `Hello, world!`.
fn read_h1(stream: &mut impl Read) -> io::Result<()> {
    let mut got = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    while !got.ends_with(HELLO) {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("closed after {:?}", String::from_utf8_lossy(&got)),
            ));
        }
        got.extend_from_slice(&buf[..n]);
        if got.len() > 64 * 1024 {
            return Err(io::Error::other("an answer over 64 KiB"));
        }
    }
    if !got.starts_with(b"HTTP/1.1 200 ") {
        return Err(io::Error::other(format!(
            "not a 200: {:?}",
            String::from_utf8_lossy(&got)
        )));
    }
    Ok(())
}

/// HTTP/2 frame types and flags used here (RFC 9113, section 6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const RST_STREAM: u8 = 0x3;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

/// An HTTP/2 frame header and its payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The client's preface, empty settings and `GET /` on stream 1 (HPACK:
/// the static table's `:method GET`, `:scheme http`, `:path /`, and
/// `:authority: x` as a literal without indexing).
fn h2_opening() -> Vec<u8> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    let block = [0x82, 0x86, 0x84, 0x01, 0x01, b'x'];
    out.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &block));
    out
}

/// Reads frames until stream 1 ends with `Hello, world!`, acknowledging
/// the server's settings on the way.
fn read_h2(stream: &mut TcpStream) -> io::Result<()> {
    let mut body = Vec::new();
    let mut status_seen = false;
    // A bound on frames read: a server that chats forever is an error.
    for _ in 0..64 {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head)?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        if len > 1 << 20 {
            return Err(io::Error::other(format!("an HTTP/2 frame of {len} bytes")));
        }
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload)?;
        match kind {
            SETTINGS if flags & ACK == 0 => stream.write_all(&frame(SETTINGS, ACK, 0, &[]))?,
            HEADERS if id == 1 => {
                // HPACK `:status 200` is static index 8: 0x88.
                status_seen |= payload.first() == Some(&0x88);
                if flags & END_STREAM != 0 {
                    return Err(io::Error::other("stream 1 ended without a body"));
                }
            }
            DATA if id == 1 => {
                body.extend_from_slice(&payload);
                if flags & END_STREAM != 0 {
                    if !status_seen || body != HELLO {
                        return Err(io::Error::other(format!(
                            "not a 200 hello (status seen: {status_seen}, body {:?})",
                            String::from_utf8_lossy(&body)
                        )));
                    }
                    return Ok(());
                }
            }
            GOAWAY | RST_STREAM => {
                return Err(io::Error::other(format!(
                    "the server sent frame type {kind} before answering"
                )))
            }
            _ => {}
        }
    }
    Err(io::Error::other("no answer on stream 1 within 64 frames"))
}

/// Resident set of process `pid`, bytes (`VmRSS` of `/proc/<pid>/status`).
///
/// # Errors
///
/// The process is gone, or its status has no `VmRSS` line.
pub fn rss(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    vm_rss(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status has no VmRSS line"),
        )
    })
}

/// `VmRSS` of a `/proc/<pid>/status` text, bytes.
fn vm_rss(status: &str) -> Option<u64> {
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_gives_the_resident_set() {
        let status = "Name:\tx\nVmRSS:\t    1234 kB\nRssAnon:\t  1000 kB\n";
        assert_eq!(vm_rss(status), Some(1234 * 1024));
        assert_eq!(vm_rss("Name:\tx\n"), None);
        assert!(rss(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn frames_carry_their_length_type_flags_and_stream() {
        let f = frame(HEADERS, END_HEADERS, 3, b"abc");
        assert_eq!(
            f,
            [0, 0, 3, HEADERS, END_HEADERS, 0, 0, 0, 3, b'a', b'b', b'c']
        );
        let opening = h2_opening();
        assert!(opening.starts_with(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert_eq!(opening.len(), 24 + 9 + 9 + 6);
    }
}
