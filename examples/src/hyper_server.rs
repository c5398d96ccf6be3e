//! The `hyper` example's server: hyper 1.x's HTTP/1.1 connections over percore
//! sockets (`Compat`, the `hyper` feature of percore-net).

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use percore::net::compat::HyperTimer;
use percore::net::TcpListener;

/// Answers every request with "Hello, world!".
async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(
        b"Hello, world!",
    ))))
}

/// Serves every connection of `listener` with hyper, each in its own task.
pub async fn serve(listener: TcpListener) {
    let mut incoming = listener.incoming();
    while let Some(next) = incoming.next().await {
        // Accept errors (EMFILE…) are retried by `incoming` after a pause.
        let Ok(stream) = next else { continue };
        let _ = stream.set_nodelay(true);
        drop(percore::spawn(async move {
            let service = hyper::service::service_fn(hello);
            // Errors (a reset peer, a malformed request hyper answered) end
            // this connection only.
            // The timer makes hyper's 30 s header read timeout effective: a
            // client that never finishes its request head is dropped.
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(HyperTimer)
                .serve_connection(stream.into_compat(), service)
                .await;
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
            drop(percore::spawn(serve(listener)));
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
