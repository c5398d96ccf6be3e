//! `Builder::balance`: a server whose cores hand fresh connections to the
//! core serving the fewest. Connections opened one after another, each kept
//! open, end up split between the two cores within the margin whatever the
//! kernel's `SO_REUSEPORT` hash said; each is served whole on its core; the
//! server drains and leaves no fd behind.

mod server_util;

use axum::routing::get;
use axum::Router;
use percore_http::server::Server;
use server_util::*;

const CONNECTIONS: usize = 16;

#[test]
fn connections_are_split_between_the_cores_and_served_there() {
    let fds_before = fd_count();
    let app = Router::new().route(
        "/core",
        get(|| async { percore::current_core().to_string() }),
    );
    let server = start_app(Server::builder().balance(true), app);
    let addr = server.addr;
    let cores = percore::run(async move {
        let mut senders = Vec::new();
        let mut cores = Vec::new();
        for i in 0..CONNECTIONS {
            let mut sender = h1(addr).await;
            let (status, body) = text(sender.send_request(get_req("/core")).await.unwrap()).await;
            assert_eq!(status, 200, "connection {i}");
            cores.push(body.parse::<usize>().unwrap());
            // Kept open: it stays counted on its core while the next connects.
            senders.push(sender);
        }
        // A second request on each connection is served on the same core.
        for (i, sender) in senders.iter_mut().enumerate() {
            let (_, body) = text(sender.send_request(get_req("/core")).await.unwrap()).await;
            assert_eq!(body.parse::<usize>().unwrap(), cores[i], "connection {i}");
        }
        cores
    })
    .unwrap();
    // Placed one after another, each core within the margin (1) of the
    // other: neither serves more than two above the other.
    let on_1 = cores.iter().filter(|&&core| core == 1).count();
    let on_0 = CONNECTIONS - on_1;
    assert!(on_0.abs_diff(on_1) <= 2, "split {on_0}/{on_1}: {cores:?}");

    server.stop().unwrap();
    assert_eq!(settle_fds(fds_before), fds_before, "fd delta");
}
