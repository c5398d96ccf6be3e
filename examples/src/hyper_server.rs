//! The `hyper` example's server: hyper 1.x's HTTP/1.1 connections over percore
//! sockets (`Compat`, the `hyper` feature of percore-net).

use std::convert::Infallible;

use bytes::Bytes;
use std::pin::pin;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use percore::net::compat::HyperTimer;
use percore::net::TcpListener;

use percore::net::graceful::Connections;

/// Answers every request with "Hello, world!".
async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, world!",
    ))))
}

/// Serves every connection of `listener` with hyper, each in its own task;
/// when `connections` are told to finish, each finishes the request in hand
/// and closes (hyper's graceful shutdown).
pub async fn serve(listener: TcpListener, connections: Connections) {
    let mut incoming = listener.incoming();
    while let Some(next) = incoming.next().await {
        // Accept errors (EMFILE…) are retried by `incoming` after a pause.
        let Ok(stream) = next else { continue };
        let _ = stream.set_nodelay(true);
        let connections = connections.clone();
        drop(percore::spawn(async move {
            let _guard = connections.guard();
            let service = hyper::service::service_fn(hello);
            // The timer makes hyper's 30 s header read timeout effective: a
            // client that never finishes its request head is dropped.
            let mut connection = pin!(hyper::server::conn::http1::Builder::new()
                .timer(HyperTimer)
                .serve_connection(stream.into_compat(), service));
            // Errors (a reset peer, a malformed request hyper answered) end
            // this connection only.
            if let Either::Right(((), _)) =
                select(connection.as_mut(), pin!(connections.finishing())).await
            {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use percore::net::TcpStream;

    use super::*;

    #[test]
    fn the_hyper_example_answers_a_hyper_client() {
        percore::run(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let shutdown = percore::shutdown::Shutdown::new();
            drop(percore::spawn(serve(listener, Connections::new(&shutdown))));
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(stream.into_compat())
                    .await
                    .unwrap();
            let connection = percore::spawn(connection);
            for _ in 0..3 {
                let request = Request::get("/")
                    .header("host", "localhost")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let response = sender.send_request(request).await.unwrap();
                assert_eq!(response.status(), 200);
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body, "Hello, world!");
            }
            drop(sender);
            connection.await.unwrap().unwrap();
        })
        .unwrap();
    }
}
