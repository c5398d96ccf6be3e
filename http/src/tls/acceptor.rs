//! [`TlsAcceptor`]: the server side of TLS.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use hyper::rt::{Read, Write};
use rustls::{Connection, ServerConfig, ServerConnection};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{pem, TlsStream};

/// The server side of TLS: runs the handshake on accepted streams.
///
/// Cheap to clone (the config is shared), so each core or connection can
/// hold its own. Offers `h2` and `http/1.1` by ALPN unless built from a ready
/// config or told otherwise with [`with_alpn`](Self::with_alpn).
///
/// # Examples
///
/// ```no_run
/// use percore_http::tls::TlsAcceptor;
///
/// // Read once at start; `accept` then costs no file access.
/// let acceptor = TlsAcceptor::from_pem_files("/etc/myapp/fullchain.pem", "/etc/myapp/key.pem")?;
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
}

impl TlsAcceptor {
    /// An acceptor presenting the certificate chain of the PEM file
    /// `cert_chain` (the server's certificate first, then the intermediates)
    /// with the private key of the PEM file `private_key` (PKCS#8, PKCS#1 or
    /// SEC1), offering `h2` and `http/1.1` by ALPN.
    ///
    /// Reads both files with blocking calls: build it once, before serving.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, holds no certificate or key, or a key that
    /// does not match the certificate; the error names the file.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        private_key: impl AsRef<Path>,
    ) -> io::Result<TlsAcceptor> {
        let (chain_path, key_path) = (cert_chain.as_ref(), private_key.as_ref());
        let chain = pem::read_file(chain_path, "TLS certificate chain")?;
        let key = pem::read_file(key_path, "TLS private key")?;
        let chain = pem::certificates(&chain, &chain_path.display().to_string())?;
        let key = pem::private_key(&key, &key_path.display().to_string())?;
        TlsAcceptor::from_der(chain, key).map_err(|e| {
            let context = format!(
                "the TLS certificate chain {} and private key {} cannot be used",
                chain_path.display(),
                key_path.display()
            );
            super::with_context(e, context)
        })
    }

    /// Like [`from_pem_files`](Self::from_pem_files), from PEM text in memory.
    ///
    /// # Errors
    ///
    /// No certificate or key in the text, or a key that does not match.
    pub fn from_pem(cert_chain: &[u8], private_key: &[u8]) -> io::Result<TlsAcceptor> {
        let chain = pem::certificates(cert_chain, "the certificate chain's PEM text")?;
        let key = pem::private_key(private_key, "the private key's PEM text")?;
        TlsAcceptor::from_der(chain, key)
    }

    /// An acceptor presenting `cert_chain` (DER, the server's certificate
    /// first) with `private_key`, offering `h2` and `http/1.1` by ALPN, with
    /// rustls' safe default protocol versions (TLS 1.3 and 1.2) on its `ring`
    /// provider.
    ///
    /// # Errors
    ///
    /// A key rustls cannot use, or one that does not match the certificate.
    pub fn from_der(
        cert_chain: Vec<CertificateDer<'static>>,
        private_key: PrivateKeyDer<'static>,
    ) -> io::Result<TlsAcceptor> {
        let mut config = ServerConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .map_err(super::rustls_error)?
            .with_no_client_auth()
            .with_single_cert(cert_chain, private_key)
            .map_err(super::rustls_error)?;
        config.alpn_protocols = super::alpn_list(super::DEFAULT_ALPN);
        Ok(TlsAcceptor::from_config(Arc::new(config)))
    }

    /// An acceptor using `config` as it is, ALPN included (for client
    /// certificates, a resolver choosing the certificate by SNI, session
    /// settings).
    pub fn from_config(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor { config }
    }

    /// The acceptor offering `protocols` by ALPN, in order of preference
    /// (`[b"http/1.1"]` to serve HTTP/1.1 only; empty to not use ALPN).
    #[must_use]
    pub fn with_alpn<I, P>(mut self, protocols: I) -> TlsAcceptor
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        Arc::make_mut(&mut self.config).alpn_protocols = super::alpn_list(protocols);
        self
    }

    /// The rustls config every handshake uses.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Runs the server side of the TLS handshake on `io`, an accepted stream.
    ///
    /// Bound how long it may take with `percore::time::timeout`: a client
    /// that connects and sends nothing would hold it forever.
    ///
    /// # Errors
    ///
    /// A failed handshake (garbage from the client, no common protocol
    /// version or cipher suite, the client rejecting the certificate), the
    /// client closing the connection, or the stream's own errors; the message
    /// starts with "TLS handshake failed (server side)".
    pub async fn accept<T>(&self, io: T) -> io::Result<TlsStream<T>>
    where
        T: Read + Write + Unpin,
    {
        let context = || "TLS handshake failed (server side)".to_string();
        let conn = ServerConnection::new(self.config.clone())
            .map_err(|e| super::with_context(super::rustls_error(e), context()))?;
        TlsStream::handshake(io, Connection::Server(conn), true)
            .await
            .map_err(|e| super::with_context(e, context()))
    }
}

impl From<Arc<ServerConfig>> for TlsAcceptor {
    fn from(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor::from_config(config)
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn", &super::alpn_names(&self.config.alpn_protocols))
            .finish_non_exhaustive()
    }
}
