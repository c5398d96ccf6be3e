//! What goes wrong with TLS says so: untrusted or misnamed certificates,
//! garbage from the network, peers that leave mid-handshake, closes with and
//! without close_notify, bad PEM files. The server stays alive throughout.

#![cfg(feature = "tls")]

mod tls_common;

use std::io;
use std::time::Duration;

use percore::sync::mpsc;
use percore_http::io::Io;
use percore_http::tls::{TlsAcceptor, TlsConnector};
use percore_net::TcpStream;
use tls_common::{connect, listener, read_some, read_to_end, shutdown, tls_server, write_all, Pki};

/// The server still completes a handshake and answers over it.
async fn server_answers(pki: &Pki, addr: std::net::SocketAddr) {
    let tls = connect(&pki.connector(), addr, "localhost").await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(percore_http::rt::Executor, tls)
            .await
            .unwrap();
    drop(percore::spawn(connection));
    let response = sender
        .send_request(tls_common::request("/alive", None))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[percore::test]
async fn a_client_that_does_not_trust_the_ca_fails_naming_the_certificate_problem() {
    let pki = Pki::new("untrusted");
    let stranger = Pki::new("untrusted-other");
    let (listener, addr) = listener();
    let (errors, mut server_errors) = mpsc::channel(8);
    drop(percore::spawn(tls_server(
        listener,
        pki.acceptor(),
        Some(errors),
    )));

    let err = connect(&stranger.connector(), addr, "localhost")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("TLS handshake with localhost failed")
            && message.contains("invalid peer certificate")
            && message.contains("UnknownIssuer"),
        "{message}"
    );
    // The rustls error is reachable for code that matches on it.
    let source = std::error::Error::source(err.get_ref().unwrap()).unwrap();
    assert!(
        matches!(
            source.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ),
        "{source:?}"
    );

    // The server heard why (the client's alert), and goes on serving.
    let server_err = server_errors.recv().await.unwrap();
    let message = server_err.to_string();
    assert!(
        message.contains("TLS handshake failed (server side)") && message.contains("alert"),
        "{message}"
    );
    server_answers(&pki, addr).await;
}

#[percore::test]
async fn a_certificate_for_another_name_is_refused() {
    let pki = Pki::new("misnamed");
    let (listener, addr) = listener();
    drop(percore::spawn(tls_server(listener, pki.acceptor(), None)));
    let err = connect(&pki.connector(), addr, "example.com")
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("TLS handshake with example.com failed")
            && message.contains("not valid for name"),
        "{message}"
    );
}

#[percore::test]
async fn a_server_name_that_is_neither_dns_nor_ip_is_invalid_input() {
    let pki = Pki::new("badname");
    let (listener, addr) = listener();
    drop(percore::spawn(tls_server(listener, pki.acceptor(), None)));
    let err = connect(&pki.connector(), addr, "not a name!")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("\"not a name!\""), "{err}");
}

#[percore::test]
async fn garbage_to_the_acceptor_is_an_error_and_the_server_stays_alive() {
    let pki = Pki::new("garbage");
    let (listener, addr) = listener();
    let (errors, mut server_errors) = mpsc::channel(8);
    drop(percore::spawn(tls_server(
        listener,
        pki.acceptor(),
        Some(errors),
    )));

    let mut random = vec![0u8; 64 * 1024];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for byte in &mut random {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let garbage: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        // A handshake record header announcing 64 KiB, then noise.
        &[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8],
        &[0; 4096],
        &random,
    ];
    for bytes in garbage {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (res, _) = stream.write_all(bytes.to_vec()).await;
        // The server may close before all of it is sent.
        drop(res);
        let err = server_errors.recv().await.unwrap();
        assert!(
            err.to_string()
                .contains("TLS handshake failed (server side)"),
            "{err}"
        );
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::ConnectionReset
            ),
            "{:?}: {err}",
            err.kind()
        );
    }
    server_answers(&pki, addr).await;
}

#[percore::test]
async fn a_client_leaving_mid_handshake_is_an_unexpected_eof() {
    let pki = Pki::new("leaves");
    let (listener, addr) = listener();
    let (errors, mut server_errors) = mpsc::channel(8);
    drop(percore::spawn(tls_server(
        listener,
        pki.acceptor(),
        Some(errors),
    )));
    drop(TcpStream::connect(addr).await.unwrap());
    let err = server_errors.recv().await.unwrap();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    assert!(
        err.to_string()
            .contains("closed the connection during the TLS handshake"),
        "{err}"
    );
    server_answers(&pki, addr).await;
}

/// A server that reads all, answers `pong` and closes as `close` says.
async fn ping_server(pki: &Pki, clean_close: bool) -> std::net::SocketAddr {
    let (listener, addr) = listener();
    let acceptor = pki.acceptor();
    drop(percore::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(Io::new(stream)).await.unwrap();
        let mut buf = [0; 4];
        let n = read_some(&mut tls, &mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
        write_all(&mut tls, b"pong").await.unwrap();
        if clean_close {
            shutdown(&mut tls).await.unwrap();
            // The client's close_notify (or its plain close) ends the stream.
            assert_eq!(read_some(&mut tls, &mut buf).await.unwrap(), 0);
        } else {
            // Straight to TCP's close: no close_notify.
            let stream = tls.into_inner();
            stream
                .get_ref()
                .shutdown(std::net::Shutdown::Both)
                .await
                .unwrap();
        }
    }));
    addr
}

#[percore::test]
async fn close_notify_ends_the_stream_cleanly_both_ways() {
    let pki = Pki::new("close-notify");
    let addr = ping_server(&pki, true).await;
    let mut tls = connect(&pki.connector(), addr, "localhost").await.unwrap();
    write_all(&mut tls, b"ping").await.unwrap();
    // pong, then the server's close_notify: a clean end.
    assert_eq!(read_to_end(&mut tls).await.unwrap(), b"pong");
    shutdown(&mut tls).await.unwrap();
}

#[percore::test]
async fn a_server_closing_without_close_notify_is_an_unexpected_eof_for_the_client() {
    let pki = Pki::new("unclean");
    let addr = ping_server(&pki, false).await;
    let mut tls = connect(&pki.connector(), addr, "localhost").await.unwrap();
    write_all(&mut tls, b"ping").await.unwrap();
    let mut buf = [0; 4];
    let n = read_some(&mut tls, &mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"pong");
    let err = read_some(&mut tls, &mut buf).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
}

#[percore::test]
async fn a_client_closing_without_close_notify_ends_the_servers_stream() {
    let pki = Pki::new("client-unclean");
    let (listener, addr) = listener();
    let acceptor = pki.acceptor();
    let server = percore::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(Io::new(stream)).await.unwrap();
        read_to_end(&mut tls).await
    });
    let tls = connect(&pki.connector(), addr, "localhost").await.unwrap();
    // The TCP stream ends under the TLS connection: a FIN, no close_notify.
    // (Not a plain drop: the client has not read the server's session
    // tickets, and closing a socket with unread bytes sends a reset.)
    let io = tls.into_inner();
    io.get_ref()
        .shutdown(std::net::Shutdown::Write)
        .await
        .unwrap();
    // The server side reads it as the end of the stream, not an error.
    let read = percore::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server saw the end of the stream")
        .unwrap();
    assert_eq!(read.unwrap(), b"");
    drop(io);
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused_naming_both_files() {
    let pki = Pki::new("mismatch");
    let other = Pki::new("mismatch-other");
    let err = TlsAcceptor::from_pem_files(pki.cert_file(), other.key_file()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&pki.cert_file().display().to_string())
            && message.contains(&other.key_file().display().to_string())
            && message.contains("cannot be used"),
        "{message}"
    );
}

#[test]
fn pem_files_that_are_missing_or_empty_are_errors_naming_them() {
    let pki = Pki::new("missing");
    let missing = pki.dir.path().join("missing.pem");
    let err = TlsAcceptor::from_pem_files(&missing, pki.key_file()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("missing.pem"), "{err}");

    // The key file as a CA file: no certificate in it.
    let err = TlsConnector::from_ca_pem_file(pki.key_file()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("no certificate in") && err.to_string().contains("key.pem"),
        "{err}"
    );
    // The certificate file as a key file: no key in it.
    let err = TlsAcceptor::from_pem_files(pki.cert_file(), pki.cert_file()).unwrap_err();
    assert!(err.to_string().contains("no private key in"), "{err}");
}

#[test]
fn pem_text_in_memory_works_like_the_files() {
    let pki = Pki::new("in-memory");
    let acceptor = TlsAcceptor::from_pem(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap();
    assert_eq!(
        acceptor.config().alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let connector = TlsConnector::from_ca_pem(pki.ca_pem.as_bytes()).unwrap();
    let connector = connector.with_alpn(Vec::<Vec<u8>>::new());
    assert!(connector.config().alpn_protocols.is_empty());
}

#[cfg(feature = "tls-webpki-roots")]
#[percore::test]
async fn the_public_roots_do_not_trust_a_test_ca() {
    let pki = Pki::new("webpki");
    let (listener, addr) = listener();
    drop(percore::spawn(tls_server(listener, pki.acceptor(), None)));
    let connector = TlsConnector::webpki_roots().unwrap();
    let err = connect(&connector, addr, "localhost").await.unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}
