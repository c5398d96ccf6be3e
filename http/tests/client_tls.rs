//! The client over `https`: HTTP/1.1 or HTTP/2 as the server picks by ALPN,
//! keep-alive over TLS, an untrusted certificate refused with its cause.

#![cfg(feature = "tls")]

mod tls_common;

use percore_http::client::{Client, ErrorKind};
use percore_http::tls::{TlsAcceptor, TlsConnector};
use tls_common::{listener, tls_server, Pki};

/// A TLS server on this core offering only `alpn`; its `https://localhost` URL.
fn serve(pki: &Pki, alpn: &[&[u8]]) -> String {
    let (listener, addr) = listener();
    let acceptor: TlsAcceptor = pki.acceptor().with_alpn(alpn.iter().map(|p| p.to_vec()));
    drop(percore::spawn(tls_server(listener, acceptor, None)));
    format!("https://localhost:{}", addr.port())
}

#[test]
fn https_speaks_http2_when_the_server_picks_it_and_http1_otherwise() {
    let pki = Pki::new("client-alpn");
    percore::run(async move {
        for (alpn, version) in [
            (&[&b"h2"[..], b"http/1.1"][..], hyper::Version::HTTP_2),
            (&[&b"http/1.1"[..]][..], hyper::Version::HTTP_11),
        ] {
            let base = serve(&pki, alpn);
            let client = Client::builder().tls_connector(pki.connector()).build();
            for i in 0..3 {
                let response = client.get(format!("{base}/n{i}")).send().await.unwrap();
                assert_eq!(response.status(), 200);
                assert_eq!(response.version(), version);
                assert_eq!(response.text().await.unwrap(), format!("hello /n{i}"));
            }
            let echoed = client
                .post(format!("{base}/echo"))
                .body(vec![7u8; 100_000])
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(echoed.len(), 100_000);
            assert!(echoed.iter().all(|&b| b == 7));
        }
    })
    .unwrap();
}

#[test]
fn https_to_a_server_whose_certificate_is_not_trusted_fails_naming_the_cause() {
    let pki = Pki::new("client-untrusted");
    let other = Pki::new("client-untrusted-other");
    percore::run(async move {
        let base = serve(&pki, &[b"http/1.1"]);
        let client = Client::builder()
            .tls_connector(TlsConnector::from_ca_pem_file(other.ca_file()).unwrap())
            .build();
        let err = client.get(format!("{base}/")).send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
        assert!(err.is_connect());
        let text = format!("{err}");
        assert!(
            text.contains("TLS handshake with localhost failed"),
            "{text}"
        );
        assert!(text.contains("UnknownIssuer"), "{text}");
    })
    .unwrap();
}
