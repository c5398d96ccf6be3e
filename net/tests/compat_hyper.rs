//! hyper 1.x serves and connects on percore through `Compat`.

#![cfg(feature = "hyper")]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use percore_net::{TcpListener, TcpStream};
use percore_runtime::spawn;

async fn hello(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = format!("hello {}", request.uri().path());
    Ok(Response::new(Full::new(Bytes::from(body))))
}

#[test]
fn a_hyper_client_gets_answers_from_a_hyper_server_over_keep_alive() {
    percore_runtime::run(async {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        drop(spawn(async move {
            let mut incoming = listener.incoming();
            while let Some(Ok(stream)) = incoming.next().await {
                drop(spawn(async move {
                    let service = hyper::service::service_fn(hello);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(stream.into_compat(), service)
                        .await;
                }));
            }
        }));

        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(stream.into_compat())
            .await
            .unwrap();
        let connection = spawn(connection);
        for path in ["/one", "/two", "/three"] {
            let request = Request::get(path)
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, format!("hello {path}").as_bytes());
        }
        drop(sender);
        connection.await.unwrap().unwrap();
    })
    .unwrap();
}

#[test]
fn hyper_timer_makes_the_header_read_timeout_drop_a_slow_client() {
    use percore_net::compat::HyperTimer;
    use std::time::Duration;
    percore_runtime::run(async {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            hyper::server::conn::http1::Builder::new()
                .timer(HyperTimer)
                .header_read_timeout(Duration::from_millis(50))
                .serve_connection(stream.into_compat(), hyper::service::service_fn(hello))
                .await
        });
        let client = TcpStream::connect(addr).await.unwrap();
        let (res, _) = client
            .write_all(&b"GET / HTTP/1.1\r\nHost: x\r\n"[..])
            .await;
        res.unwrap();
        // The head never ends; the server gives up and closes.
        let mut got = Vec::with_capacity(1024);
        loop {
            let (res, buf) = client.read(got).await;
            got = buf;
            if !matches!(res, Ok(n) if n > 0) {
                break;
            }
        }
        let err = server.await.unwrap().unwrap_err();
        assert!(err.is_timeout(), "{err}");
    })
    .unwrap();
}
