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
