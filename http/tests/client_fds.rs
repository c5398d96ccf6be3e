//! Once its clients are dropped, the client leaves no fd open: pooled
//! HTTP/1.1 and HTTP/2 connections, ones given up by a timeout, ones whose
//! response was dropped unread. (Alone in its file: it counts the process's
//! fds, which other tests running at the same time would change.)

mod client_support;

use std::time::Duration;

use client_support::{open_fds, serve, Proto};
use percore_http::client::Client;

async fn use_http1(server: &client_support::Server) {
    let client = Client::builder().max_connections_per_host(20).build();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (client, url) = (client.clone(), server.url(&format!("/id/{i}")));
            percore_runtime::spawn(async move {
                client.get(url).send().await.unwrap().text().await.unwrap()
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), client_support::id_body(i));
    }
    let by_name = format!("http://localhost:{}/redirect/3", server.addr.port());
    assert_eq!(
        client
            .get(by_name)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "done"
    );
    drop(client.get(server.url("/stall")).send().await.unwrap());
    let err = client
        .get(server.url("/hang"))
        .timeout(Duration::from_millis(50))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
}

async fn use_http2(server: &client_support::Server) {
    let client = Client::builder().http2_prior_knowledge().build();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (client, url) = (client.clone(), server.url(&format!("/id/{i}")));
            percore_runtime::spawn(async move {
                client.get(url).send().await.unwrap().text().await.unwrap()
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), client_support::id_body(i));
    }
    drop(client.get(server.url("/stall")).send().await.unwrap());
}

#[percore::test]
async fn dropping_the_clients_closes_every_connection() {
    // Warm up what opens fds once per process (the blocking pool's lookup).
    drop(
        percore_net::lookup_host("localhost:80")
            .await
            .map(|addrs| addrs.count()),
    );
    let before = open_fds();
    {
        let http1 = serve(Proto::Http1);
        let http2 = serve(Proto::Http2);
        use_http1(&http1).await;
        use_http2(&http2).await;
        assert!(open_fds() > before, "the test opened connections");
    }
    // The connections' tasks close them once they see their client gone;
    // the servers' once they see the close.
    let start = std::time::Instant::now();
    while open_fds() != before && start.elapsed() < Duration::from_secs(20) {
        percore_runtime::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(open_fds(), before, "fds left open");
}
