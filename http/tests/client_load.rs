//! 1,000 concurrent requests from one core's client to a server on the
//! other core: over at most 100 HTTP/1.1 connections, or one HTTP/2
//! connection, every body right.

mod client_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use client_support::{route, Proto};
use percore_http::client::Client;
use percore_net::tcp::ListenOptions;
use percore_net::TcpListener;

const REQUESTS: usize = 1000;
const CONNECTIONS: usize = 100;

/// A listener on 127.0.0.1 (std's, to hand to core 1).
fn std_listener() -> std::net::TcpListener {
    ListenOptions::new()
        .backlog(1024)
        .bind_tcp(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind 127.0.0.1:0")
        .into_std()
        .expect("into_std")
}

/// Serves [`route`] on core 1; its address and its count of connections.
fn serve_on_core_1(proto: Proto) -> (SocketAddr, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let listener = std_listener();
    let addr = listener.local_addr().unwrap();
    let handle = percore_runtime::spawn_on(1, move || {
        let listener = TcpListener::from_std(listener);
        async move {
            let server = client_support::serve_counting(listener, proto, route, counter);
            // Serves until the runtime stops.
            futures_util::future::pending::<()>().await;
            drop(server);
        }
    })
    .unwrap();
    drop(handle);
    (addr, accepted)
}

async fn thousand_requests(client: Client, addr: SocketAddr) {
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let client = client.clone();
            let url = format!("http://{addr}/id/{i}");
            percore_runtime::spawn(async move {
                let response = client.get(url).send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.text().await.unwrap()
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(
            task.await.unwrap(),
            client_support::id_body(i),
            "request {i}"
        );
    }
}

#[percore::test(cores = 2)]
async fn a_thousand_concurrent_requests_over_at_most_a_hundred_connections() {
    let (addr, accepted) = serve_on_core_1(Proto::Http1);
    let client = Client::builder()
        .max_connections_per_host(CONNECTIONS)
        .pool_max_idle_per_host(CONNECTIONS)
        .build();
    thousand_requests(client.clone(), addr).await;
    // Every connection was accepted before its request was answered.
    let opened = accepted.load(Ordering::Relaxed);
    assert!((1..=CONNECTIONS).contains(&opened), "{opened} connections");
    // A second round reuses what the first left idle.
    thousand_requests(client, addr).await;
    let again = accepted.load(Ordering::Relaxed);
    assert!(
        again <= CONNECTIONS,
        "{again} connections after the second round"
    );
}

#[percore::test(cores = 2)]
async fn a_thousand_concurrent_requests_over_one_http2_connection() {
    let (addr, accepted) = serve_on_core_1(Proto::Http2);
    let client = Client::builder().http2_prior_knowledge().build();
    thousand_requests(client, addr).await;
    assert_eq!(accepted.load(Ordering::Relaxed), 1);
}
