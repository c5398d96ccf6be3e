//! Certificates and keys from PEM text, with errors that name the file.
//!
//! Parsing is rustls-pki-types' own ([`PemObject`]), the successor of the
//! rustls-pemfile crate.

use std::io;
use std::path::Path;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The contents of `path`, or an error naming it and what it should hold.
pub(super) fn read_file(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("could not read the {what} from {}: {e}", path.display()),
        )
    })
}

/// Every `CERTIFICATE` block of `pem` (other blocks are skipped), in order;
/// an error if there is none. `origin` names where the text came from.
pub(super) fn certificates(pem: &[u8], origin: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("bad PEM in {origin}: {}", e)))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "no certificate in {origin} (expected PEM blocks \
             `-----BEGIN CERTIFICATE-----`)"
        )));
    }
    Ok(certs)
}

/// The first private key of `pem` (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub(super) fn private_key(pem: &[u8], origin: &str) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => invalid(format!(
            "no private key in {origin} (expected a PEM block `-----BEGIN PRIVATE KEY-----`, \
             `RSA PRIVATE KEY` or `EC PRIVATE KEY`)"
        )),
        e => invalid(format!("bad PEM in {origin}: {}", e)),
    })
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_certificates_is_an_error_naming_its_origin() {
        let err = certificates(b"hello\n", "cert.pem").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains("no certificate in cert.pem"),
            "{err}"
        );
    }

    #[test]
    fn a_block_without_its_end_is_an_error() {
        let text = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
        let err = certificates(text, "cert.pem").unwrap_err();
        assert!(err.to_string().contains("bad PEM in cert.pem"), "{err}");
    }

    #[test]
    fn text_without_a_key_is_an_error_naming_its_origin() {
        let err = private_key(b"", "key.pem").unwrap_err();
        assert!(
            err.to_string().contains("no private key in key.pem"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = read_file(Path::new("/nonexistent/cert.pem"), "certificate chain").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string()
                .contains("could not read the certificate chain from /nonexistent/cert.pem"),
            "{err}"
        );
    }
}
