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
