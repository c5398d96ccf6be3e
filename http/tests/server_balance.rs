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

/// The tests count the process's fds: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn connections_are_split_between_the_cores_and_served_there() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
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

/// `Builder::serve_balanced` on a runtime of one's own: each core serves a
/// `SO_REUSEPORT` listener of its own through one `Balance`; connections
/// opened one after another end up split within the margin, each served
/// whole on its core; a core beyond the balance is refused at once.
#[test]
fn serve_balanced_splits_the_connections_of_a_runtime_of_ones_own() {
    use std::pin::pin;

    use futures_util::future::select;
    use percore::net::balance::Balance;
    use percore::net::graceful::Connections;
    use percore::net::tcp::ListenOptions;
    use percore::net::TcpListener;
    use percore::shutdown::Shutdown;
    use percore_http::server::{Builder, TowerToHyperService};

    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let fds_before = fd_count();
    let runtime = percore::Runtime::builder().cores(2).build().unwrap();
    let options = ListenOptions::new().reuse_port(true);
    let first = options.bind_tcp("127.0.0.1:0").unwrap();
    let addr = first.local_addr().unwrap();
    let listeners = [
        first.into_std().unwrap(),
        options.bind_tcp(addr).unwrap().into_std().unwrap(),
    ];
    let balance = Balance::new(2);
    let shutdown = Shutdown::new();
    let mut served = Vec::new();
    for (core, listener) in listeners.into_iter().enumerate() {
        let (balance, shutdown) = (balance.clone(), shutdown.clone());
        let handle = runtime
            .spawn_on(core, move || async move {
                let listener = TcpListener::from_std(listener);
                let app = Router::new().route(
                    "/core",
                    get(|| async { percore::current_core().to_string() }),
                );
                let connections = Connections::new(&shutdown);
                let service = TowerToHyperService::new(app);
                let builder = Builder::new().signals(false);
                let serving =
                    builder.serve_balanced(&listener, &balance, service, connections.clone());
                let _ = select(pin!(serving), pin!(shutdown.begun())).await;
                connections.finish().await;
            })
            .unwrap();
        served.push(handle);
    }

    let cores = percore::run(async move {
        let mut senders = Vec::new();
        let mut cores = Vec::new();
        for i in 0..CONNECTIONS {
            let mut sender = h1(addr).await;
            let (status, body) = text(sender.send_request(get_req("/core")).await.unwrap()).await;
            assert_eq!(status, 200, "connection {i}");
            cores.push(body.parse::<usize>().unwrap());
            senders.push(sender);
        }
        for (i, sender) in senders.iter_mut().enumerate() {
            let (_, body) = text(sender.send_request(get_req("/core")).await.unwrap()).await;
            assert_eq!(body.parse::<usize>().unwrap(), cores[i], "connection {i}");
        }
        cores
    })
    .unwrap();
    let on_1 = cores.iter().filter(|&&core| core == 1).count();
    let on_0 = CONNECTIONS - on_1;
    assert!(on_0.abs_diff(on_1) <= 2, "split {on_0}/{on_1}: {cores:?}");

    // A balance made for one core refuses core 1, serving nothing.
    let refused = runtime
        .run_on(1, || async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let service = TowerToHyperService::new(Router::new());
            let connections = Connections::new(&Shutdown::new());
            Builder::new()
                .signals(false)
                .serve_balanced(&listener, &Balance::new(1), service, connections)
                .await
        })
        .unwrap();
    assert_eq!(
        refused.unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );

    shutdown.begin();
    percore::run(async move {
        for handle in served {
            handle.await.unwrap();
        }
    })
    .unwrap();
    drop(runtime);
    assert_eq!(settle_fds(fds_before), fds_before, "fd delta");
}
