//! Graceful shutdown: listeners close, requests in flight finish (HTTP/1.1
//! and HTTP/2), idle connections close, `serve` returns; and a request that
//! outlives the grace is cut.

mod server_util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use percore_http::server::Server;
use server_util::*;

/// `/wait` counts its callers in, then answers after `delay`.
fn waiting_app(started: Arc<AtomicUsize>, delay: Duration) -> Router {
    app().route(
        "/wait",
        get(move || {
            let started = Arc::clone(&started);
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                percore::time::sleep(delay).await;
                "done waiting"
            }
        }),
    )
}

#[test]
fn requests_in_flight_finish_and_the_server_stops() {
    let started = Arc::new(AtomicUsize::new(0));
    let server = start_app(
        Server::builder(),
        waiting_app(Arc::clone(&started), Duration::from_millis(500)),
    );
    let addr = server.addr;
    let shutdown = server.shutdown.clone();
    percore::run(async move {
        let mut one = h1(addr).await;
        let mut two = h2(addr).await;
        // An idle keep-alive connection, after a request.
        let idle = percore::net::TcpStream::connect(addr).await.unwrap();
        let (mut idle_sender, idle_conn) =
            hyper::client::conn::http1::handshake(percore_http::io::Io::new(idle))
                .await
                .unwrap();
        let idle_conn = percore::spawn(idle_conn);
        let (status, _) = text(idle_sender.send_request(get_req("/")).await.unwrap()).await;
        assert_eq!(status, 200);

        let first =
            percore::spawn(
                async move { text(one.send_request(get_req("/wait")).await.unwrap()).await },
            );
        let second =
            percore::spawn(
                async move { text(two.send_request(get_req("/wait")).await.unwrap()).await },
            );
        // Both requests are in the service: begin the shutdown.
        let start = Instant::now();
        while started.load(Ordering::SeqCst) < 2 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the requests arrive"
            );
            percore::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.begin();

        assert_eq!(first.await.unwrap(), (200, "done waiting".to_string()));
        assert_eq!(second.await.unwrap(), (200, "done waiting".to_string()));
        // The idle connection was closed by the server.
        let ended = percore::time::timeout(Duration::from_secs(30), idle_conn).await;
        assert!(ended.is_ok(), "the idle connection is closed");
        // New connections are refused once the listeners are closed.
        let start = Instant::now();
        while percore::net::TcpStream::connect(addr).await.is_ok() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the listeners close"
            );
            percore::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .unwrap();
    // Drained: `serve` returns well before the 10 s grace.
    let start = Instant::now();
    while !server.is_finished() {
        assert!(
            start.elapsed() < Duration::from_secs(9),
            "serve returns once drained"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    server.stop().unwrap();
}

#[test]
fn a_request_that_outlives_the_grace_is_cut() {
    let started = Arc::new(AtomicUsize::new(0));
    let server = Server::builder()
        .cores(2)
        .signals(false)
        .grace(Duration::from_millis(200))
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.local_addr();
    let shutdown = server.shutdown_handle();
    let app = waiting_app(Arc::clone(&started), Duration::from_secs(3600));
    let thread = std::thread::spawn(move || server.serve(app));
    percore::run(async move {
        let mut one = h1(addr).await;
        let request = percore::spawn(async move { one.send_request(get_req("/wait")).await });
        let start = Instant::now();
        while started.load(Ordering::SeqCst) < 1 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the request arrives"
            );
            percore::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.begin();
        let cut = percore::time::timeout(Duration::from_secs(30), request)
            .await
            .expect("the request ends within 30 s");
        assert!(cut.unwrap().is_err(), "the request is cut, not answered");
    })
    .unwrap();
    thread.join().unwrap().unwrap();
}
