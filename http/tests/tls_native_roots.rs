//! `TlsConnector::native_roots` reads the system's CA store, which
//! `SSL_CERT_FILE` points at here: the test CA, so the client trusts the
//! test server through that path. (Alone in its binary: it sets the process's
//! environment.)

#![cfg(feature = "tls")]

mod tls_common;

use percore_http::tls::TlsConnector;
use tls_common::{connect, listener, tls_server, Pki};

#[percore::test]
async fn native_roots_follow_ssl_cert_file() {
    let pki = Pki::new("native");
    // SAFETY of the call (unsafe from edition 2024 on): this binary runs one
    // test, and no other thread reads the environment meanwhile.
    std::env::set_var("SSL_CERT_FILE", pki.ca_file());
    std::env::remove_var("SSL_CERT_DIR");
    let connector = TlsConnector::native_roots().unwrap();

    let (listener, addr) = listener();
    drop(percore::spawn(tls_server(listener, pki.acceptor(), None)));
    let tls = connect(&connector, addr, "localhost").await.unwrap();
    assert!(tls.is_h2());

    // A file with no certificate: an error that says what to do.
    std::env::set_var("SSL_CERT_FILE", pki.key_file());
    let err = TlsConnector::native_roots().unwrap_err();
    assert!(err.to_string().contains("SSL_CERT_FILE"), "{err}");
}
