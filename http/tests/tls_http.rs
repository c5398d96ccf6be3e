//! hyper over TLS on percore: HTTP/1.1, HTTP/2 chosen by ALPN, large bodies
//! both ways. Certificates are made at test time and read from PEM files.

#![cfg(feature = "tls")]

mod tls_common;

use bytes::Bytes;
use http_body_util::BodyExt;
use percore_http::rt::Executor;
use tls_common::{connect, listener, request, tls_server, Pki};

/// 8 MiB, not a repetition of a short pattern (so a misplaced record shows).
fn large_body() -> Bytes {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let body: Vec<u8> = (0..8 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    Bytes::from(body)
}

#[percore::test]
async fn http1_over_tls_keeps_the_connection_alive_across_requests() {
    let pki = Pki::new("http1");
    let (listener, addr) = listener();
    // The server offers both; a client offering only HTTP/1.1 gets it.
    drop(percore::spawn(tls_server(listener, pki.acceptor(), None)));

    let connector = pki.connector().with_alpn([b"http/1.1"]);
    let tls = connect(&connector, addr, "localhost").await.unwrap();
    assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert!(!tls.is_h2());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(tls).await.unwrap();
    let connection = percore::spawn(connection);
    for path in ["/one", "/two", "/three"] {
        let response = sender.send_request(request(path, None)).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("hello {path}").as_bytes());
    }
    drop(sender);
    connection.await.unwrap().unwrap();
}

#[percore::test]
async fn alpn_chooses_http2_and_requests_run_concurrently_on_one_connection() {
    let pki = Pki::new("h2");
    let (listener, addr) = listener();
    drop(percore::spawn(tls_server(listener, pki.acceptor(), None)));

    // Both sides offer h2 first by default.
    let tls = connect(&pki.connector(), addr, "localhost").await.unwrap();
    assert_eq!(tls.alpn_protocol(), Some(&b"h2"[..]));
    assert!(tls.is_h2());
    let (sender, connection) = hyper::client::conn::http2::handshake(Executor, tls)
        .await
        .unwrap();
    let connection = percore::spawn(connection);
    let requests = (0..20).map(|i| {
        let mut sender = sender.clone();
        async move {
            let path = format!("/stream{i}");
            let response = sender.send_request(request(&path, None)).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.version(), hyper::Version::HTTP_2);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, format!("hello {path}").as_bytes());
        }
    });
    futures_util::future::join_all(requests).await;
    drop(sender);
    connection.await.unwrap().unwrap();
}

#[percore::test]
async fn the_client_connects_by_ip_address_too() {
    let pki = Pki::new("by-ip");
    let (listener, addr) = listener();
    drop(percore::spawn(tls_server(listener, pki.acceptor(), None)));
    // The certificate lists 127.0.0.1 as an IP address entry.
    let tls = connect(&pki.connector(), addr, "127.0.0.1").await.unwrap();
    assert!(tls.is_h2());
}

#[percore::test]
async fn eight_mib_go_both_ways_intact_over_http1() {
    let pki = Pki::new("large-h1");
    let (listener, addr) = listener();
    drop(percore::spawn(tls_server(listener, pki.acceptor(), None)));

    let connector = pki.connector().with_alpn([b"http/1.1"]);
    let tls = connect(&connector, addr, "localhost").await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(tls).await.unwrap();
    drop(percore::spawn(connection));
    let body = large_body();
    let response = sender
        .send_request(request("/echo", Some(body.clone())))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let back = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(back.len(), body.len());
    assert!(back == body, "the echoed body differs from the one sent");
}

#[percore::test]
async fn eight_mib_go_both_ways_intact_over_http2() {
    let pki = Pki::new("large-h2");
    let (listener, addr) = listener();
    drop(percore::spawn(tls_server(listener, pki.acceptor(), None)));

    let tls = connect(&pki.connector(), addr, "localhost").await.unwrap();
    assert!(tls.is_h2());
    let (mut sender, connection) = hyper::client::conn::http2::handshake(Executor, tls)
        .await
        .unwrap();
    drop(percore::spawn(connection));
    let body = large_body();
    let response = sender
        .send_request(request("/echo", Some(body.clone())))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let back = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(back.len(), body.len());
    assert!(back == body, "the echoed body differs from the one sent");
}

#[percore::test]
async fn tls12_works_too_when_the_client_asks_for_it() {
    let pki = Pki::new("tls12");
    let (listener, addr) = listener();
    drop(percore::spawn(tls_server(listener, pki.acceptor(), None)));

    // A config built by hand: TLS 1.2 only, this CA, ALPN left to `with_alpn`.
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
        .unwrap();
    // The provider percore-http's own configs use (ring).
    let provider = pki.connector().config().crypto_provider().clone();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = percore_http::tls::TlsConnector::from_config(std::sync::Arc::new(config))
        .with_alpn(percore_http::tls::DEFAULT_ALPN);

    let tls = connect(&connector, addr, "localhost").await.unwrap();
    assert_eq!(
        tls.connection().protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert!(tls.is_h2());
    let (mut sender, connection) = hyper::client::conn::http2::handshake(Executor, tls)
        .await
        .unwrap();
    drop(percore::spawn(connection));
    let response = sender.send_request(request("/v12", None)).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hello /v12");
}
