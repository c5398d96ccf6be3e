//! [`TlsConnector`]: the client side of TLS.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use hyper::rt::{Read, Write};
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore};
use rustls_pki_types::ServerName;

use super::{pem, TlsStream};

/// The client side of TLS: runs the handshake on connected streams and
/// checks the server's certificate against the roots it trusts.
///
/// Cheap to clone (the config is shared). Offers `h2` and `http/1.1` by ALPN
/// unless built from a ready config or told otherwise with
/// [`with_alpn`](Self::with_alpn).
///
/// Which roots to trust:
/// - [`native_roots`](Self::native_roots): the system's CA store (on Linux
///   the `ca-certificates` bundle, or `SSL_CERT_FILE`/`SSL_CERT_DIR`), as
///   curl and OpenSSL use — it follows the system's updates and the CAs an
///   administrator added. The usual choice.
/// - `webpki_roots` (feature `tls-webpki-roots`): Mozilla's list compiled
///   into the binary, for containers without a CA store; it is as old as
///   the build.
/// - [`from_ca_pem_file`](Self::from_ca_pem_file): only the CAs of one file,
///   for a private CA.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl TlsConnector {
    /// A connector trusting the system's CA store.
    ///
    /// Reads the store with blocking calls (a few hundred certificates): build
    /// it once and clone it.
    ///
    /// # Errors
    ///
    /// The store holds no usable certificate (install the `ca-certificates`
    /// package, or point `SSL_CERT_FILE` at a bundle).
    pub fn native_roots() -> io::Result<TlsConnector> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _unusable) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no usable CA certificate in the system's store (install the \
                     `ca-certificates` package, or set SSL_CERT_FILE to a PEM bundle){}{}",
                    if errors.is_empty() { "" } else { ": " },
                    errors.join("; ")
                ),
            ));
        }
        TlsConnector::from_roots(roots)
    }

    /// A connector trusting Mozilla's CA list as compiled into the binary
    /// (the `webpki-roots` crate).
    ///
    /// # Errors
    ///
    /// None in practice; the signature matches the other constructors.
    #[cfg(feature = "tls-webpki-roots")]
    pub fn webpki_roots() -> io::Result<TlsConnector> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        TlsConnector::from_roots(roots)
    }

    /// A connector trusting only the CA certificates of the PEM file `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be read or holds no usable CA certificate; the error
    /// names it.
    pub fn from_ca_pem_file(path: impl AsRef<Path>) -> io::Result<TlsConnector> {
        let path = path.as_ref();
        let pem = pem::read_file(path, "CA certificates")?;
        TlsConnector::ca_pem(&pem, &path.display().to_string())
    }

    /// Like [`from_ca_pem_file`](Self::from_ca_pem_file), from PEM text in
    /// memory.
    ///
    /// # Errors
    ///
    /// No usable CA certificate in the text.
    pub fn from_ca_pem(pem: &[u8]) -> io::Result<TlsConnector> {
        TlsConnector::ca_pem(pem, "the CA certificates' PEM text")
    }

    fn ca_pem(pem: &[u8], origin: &str) -> io::Result<TlsConnector> {
        let mut roots = RootCertStore::empty();
        for cert in pem::certificates(pem, origin)? {
            roots.add(cert).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a certificate in {origin} cannot be a trust anchor: {e}"),
                )
            })?;
        }
        TlsConnector::from_roots(roots)
    }

    /// A connector trusting `roots`, offering `h2` and `http/1.1` by ALPN,
    /// with rustls' safe default protocol versions (TLS 1.3 and 1.2) on its
    /// `ring` provider and no client certificate.
    ///
    /// # Errors
    ///
    /// None in practice (rustls rejects only impossible version sets).
    pub fn from_roots(roots: RootCertStore) -> io::Result<TlsConnector> {
        let mut config = ClientConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .map_err(super::rustls_error)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = super::alpn_list(super::DEFAULT_ALPN);
        Ok(TlsConnector::from_config(Arc::new(config)))
    }

    /// A connector using `config` as it is, ALPN included (for client
    /// certificates, a custom verifier, session resumption settings).
    pub fn from_config(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector { config }
    }

    /// The connector offering `protocols` by ALPN, in order of preference
    /// (`[b"http/1.1"]` to speak HTTP/1.1 only; empty to not use ALPN).
    #[must_use]
    pub fn with_alpn<I, P>(mut self, protocols: I) -> TlsConnector
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        Arc::make_mut(&mut self.config).alpn_protocols = super::alpn_list(protocols);
        self
    }

    /// The rustls config every handshake uses.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Runs the client side of the TLS handshake on `io`, a stream connected
    /// to `server_name` — a DNS name (sent by SNI, and checked against the
    /// certificate) or an IP address (checked against the certificate's IP
    /// entries).
    ///
    /// Bound how long it may take with `percore::time::timeout`.
    ///
    /// # Errors
    ///
    /// `server_name` is neither a DNS name nor an IP address
    /// (`InvalidInput`); the server's certificate is not trusted or not for
    /// that name, the server speaks no common protocol version or closes the
    /// connection, or the stream fails. The message names the server, then
    /// the cause: "TLS handshake with example.com failed: invalid peer
    /// certificate: UnknownIssuer".
    pub async fn connect<T>(&self, server_name: &str, io: T) -> io::Result<TlsStream<T>>
    where
        T: Read + Write + Unpin,
    {
        let name = ServerName::try_from(server_name)
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{server_name:?} is not a server name TLS can check: \
                         give a DNS name or an IP address"
                    ),
                )
            })?
            .to_owned();
        let context = || format!("TLS handshake with {server_name} failed");
        let conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| super::with_context(super::rustls_error(e), context()))?;
        TlsStream::handshake(io, Connection::Client(conn), false)
            .await
            .map_err(|e| super::with_context(e, context()))
    }
}

impl From<Arc<ClientConfig>> for TlsConnector {
    fn from(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector::from_config(config)
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("alpn", &super::alpn_names(&self.config.alpn_protocols))
            .finish_non_exhaustive()
    }
}
