//! TLS connections that succeed, fail their handshake or are cut short leave
//! no fd behind. (Alone in its binary: it counts the process's fds.)

#![cfg(feature = "tls")]

mod tls_common;

use percore_http::rt::Executor;
use percore_net::TcpStream;
use tls_common::{connect, listener, open_fds, request, tls_server, Pki};

#[test]
fn tls_connections_of_every_outcome_leave_no_fd() {
    let pki = Pki::new("fds");
    let stranger = Pki::new("fds-stranger");
    let before = open_fds();
    percore::run(async {
        let (listener, addr) = listener();
        drop(percore::spawn(tls_server(listener, pki.acceptor(), None)));
        let serving = open_fds();
        for round in 0..10 {
            // A good HTTP/2 exchange.
            let tls = connect(&pki.connector(), addr, "localhost").await.unwrap();
            let (mut sender, connection) = hyper::client::conn::http2::handshake(Executor, tls)
                .await
                .unwrap();
            let connection = percore::spawn(connection);
            let response = sender.send_request(request("/fd", None)).await.unwrap();
            assert_eq!(response.status(), 200);
            drop(sender);
            connection.await.unwrap().unwrap();
            // A client that does not trust the server.
            assert!(connect(&stranger.connector(), addr, "localhost")
                .await
                .is_err());
            // Garbage, then a close mid-handshake.
            let stream = TcpStream::connect(addr).await.unwrap();
            let (res, _) = stream.write_all(vec![round as u8; 512]).await;
            drop(res);
            drop(stream);
            drop(TcpStream::connect(addr).await.unwrap());
        }
        // The server's connection tasks end as they read each close; wait
        // for the last ones (bounded: 10 s).
        for _ in 0..10_000 {
            if open_fds() == serving {
                break;
            }
            percore::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(open_fds(), serving, "connections left open while serving");
    })
    .unwrap();
    // The server task and its listener end with the runtime.
    assert_eq!(open_fds(), before, "fds leaked");
}
