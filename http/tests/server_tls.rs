//! HTTPS: an axum `Router` served by percore-http behind its TLS `Accept`
//! step, called by the percore-http client — HTTP/2 when ALPN picks `h2`,
//! HTTP/1.1 when the client offers only that; a handshake that fails
//! leaves the server serving.

#![cfg(feature = "tls")]

mod server_util;
mod tls_common;

use std::time::Duration;

use percore_http::client::Client;
use percore_http::server::Server;
use tls_common::Pki;

#[test]
fn an_axum_router_over_https_answers_h2_by_alpn_and_http1() {
    let pki = Pki::new("server-tls");
    let server = Server::builder()
        .acceptor(pki.acceptor())
        .cores(2)
        .signals(false)
        .grace(Duration::from_secs(10))
        .bind("127.0.0.1:0")
        .unwrap();
    let port = server.local_addr().port();
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.serve(server_util::app()));
    let base = format!("https://localhost:{port}");
    let offers: [(&[&[u8]], hyper::Version); 2] = [
        (&[b"h2", b"http/1.1"], hyper::Version::HTTP_2),
        (&[b"http/1.1"], hyper::Version::HTTP_11),
    ];
    percore::run(async move {
        // A client that does not trust the server's CA fails; the server
        // goes on serving the next ones.
        let stranger = Pki::new("server-tls-stranger");
        let refused = Client::builder()
            .tls_connector(stranger.connector())
            .build()
            .get(format!("{base}/"))
            .send()
            .await
            .unwrap_err();
        assert!(refused.is_connect(), "{refused}");
        for (alpn, version) in offers {
            let connector = pki.connector().with_alpn(alpn.iter().map(|p| p.to_vec()));
            let client = Client::builder().tls_connector(connector).build();
            for round in 0..3 {
                let response = client.get(format!("{base}/")).send().await.unwrap();
                assert_eq!(response.version(), version, "round {round}");
                assert_eq!(response.status(), 200);
                assert_eq!(response.text().await.unwrap(), "Hello, world!");
                let echo = format!("echo {round}").repeat(10_000);
                let response = client
                    .post(format!("{base}/echo"))
                    .body(echo.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.version(), version);
                assert!(response.text().await.unwrap() == echo, "round {round}");
            }
        }
    })
    .unwrap();
    shutdown.begin();
    thread.join().unwrap().unwrap();
}

#[test]
fn a_retired_connection_over_https_goes_on_serving() {
    let pki = Pki::new("server-tls-retire");
    let server = Server::builder()
        .acceptor(pki.acceptor())
        .retire_idle_after(Duration::from_millis(1))
        .cores(1)
        .signals(false)
        .bind("127.0.0.1:0")
        .unwrap();
    let port = server.local_addr().port();
    let shutdown = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.serve(server_util::app()));
    let base = format!("https://localhost:{port}");
    percore::run(async move {
        let connector = pki.connector().with_alpn([b"http/1.1".to_vec()]);
        let client = Client::builder().tls_connector(connector).build();
        for round in 0..4 {
            let response = client.get(format!("{base}/")).send().await.unwrap();
            assert_eq!(response.version(), hyper::Version::HTTP_11);
            assert_eq!(
                response.text().await.unwrap(),
                "Hello, world!",
                "round {round}"
            );
            // Long enough for the connection to be retired.
            percore::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .unwrap();
    shutdown.begin();
    thread.join().unwrap().unwrap();
}
