//! Names: `connect`, `bind` and `lookup_host` take what std's `ToSocketAddrs`
//! takes, look names up off the core and try each address in turn.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use percore_net::tcp::ListenOptions;
use percore_net::{lookup_host, TcpListener, TcpStream, UdpSocket};

/// A port that was just free: bind, learn it, close. Nothing listens there.
fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
}

#[test]
fn connect_to_localhost_by_name_reaches_a_listener_on_127_0_0_1() {
    percore_runtime::run(async {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        // "localhost" may resolve to ::1 first, where nothing listens: the
        // next address is tried.
        let by_string = TcpStream::connect(format!("localhost:{port}"))
            .await
            .unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, by_string.local_addr().unwrap());
        let by_pair = TcpStream::connect(("localhost", port)).await.unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, by_pair.local_addr().unwrap());
        let timed = TcpStream::connect_timeout(("localhost", port), Duration::from_secs(5))
            .await
            .unwrap();
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, timed.local_addr().unwrap());
    })
    .unwrap();
}

#[test]
fn literal_addresses_in_every_form_connect() {
    percore_runtime::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let port = addr.port();
        let text = addr.to_string();
        let _a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(&addr).await.unwrap();
        let _c = TcpStream::connect(text.as_str()).await.unwrap();
        let _d = TcpStream::connect(&text).await.unwrap();
        let _e = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let _f = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        let _g = TcpStream::connect(&[addr][..]).await.unwrap();
        for _ in 0..7 {
            listener.accept().await.unwrap();
        }
    })
    .unwrap();
}

#[test]
fn a_name_that_does_not_resolve_gives_an_error_that_names_it() {
    percore_runtime::run(async {
        for err in [
            TcpStream::connect("foo.invalid:80").await.unwrap_err(),
            TcpStream::connect(("foo.invalid", 80)).await.unwrap_err(),
            TcpStream::connect_timeout("foo.invalid:80", Duration::from_secs(5))
                .await
                .unwrap_err(),
        ] {
            assert!(err.to_string().contains("foo.invalid"), "{err}");
        }
        let Err(err) = lookup_host("foo.invalid:443").await else {
            panic!("foo.invalid resolved");
        };
        assert!(err.to_string().contains("foo.invalid"), "{err}");
        // A string without a port is std's error, still naming it.
        let err = TcpStream::connect("localhost").await.unwrap_err();
        assert!(err.to_string().contains("localhost"), "{err}");
    })
    .unwrap();
    // The synchronous binds name it too.
    let err = TcpListener::bind("foo.invalid:0").unwrap_err();
    assert!(err.to_string().contains("foo.invalid"), "{err}");
    let err = UdpSocket::bind(("foo.invalid", 0)).unwrap_err();
    assert!(err.to_string().contains("foo.invalid"), "{err}");
}

#[test]
fn connect_tries_the_next_address_when_the_first_refuses() {
    let closed = closed_port();
    percore_runtime::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let stream = TcpStream::connect(&[closed, open][..]).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), open);
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, stream.local_addr().unwrap());
        // When every address refuses, the last one's error comes back, with
        // its kind, naming what was tried.
        let other = closed_port();
        let err = TcpStream::connect(&[closed, other][..]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        let text = err.to_string();
        assert!(text.contains(&other.to_string()), "{text}");
        assert!(text.contains("2 addresses"), "{text}");
    })
    .unwrap();
}

#[test]
fn lookup_host_resolves_names_and_passes_literals_through() {
    percore_runtime::run(async {
        let found: Vec<SocketAddr> = lookup_host("localhost:8080").await.unwrap().collect();
        assert!(!found.is_empty());
        assert!(
            found
                .iter()
                .all(|addr| addr.ip().is_loopback() && addr.port() == 8080),
            "{found:?}"
        );
        let literal: Vec<SocketAddr> = lookup_host("10.1.2.3:4").await.unwrap().collect();
        assert_eq!(literal, ["10.1.2.3:4".parse::<SocketAddr>().unwrap()]);
    })
    .unwrap();
}

#[test]
fn listeners_and_udp_sockets_bind_and_connect_by_name() {
    // Outside any runtime, where a synchronous lookup blocks no core.
    let listener = ListenOptions::new().bind_tcp("localhost:0").unwrap();
    assert!(listener.local_addr().unwrap().ip().is_loopback());
    let listener = TcpListener::bind(("localhost", 0)).unwrap();
    assert!(listener.local_addr().unwrap().ip().is_loopback());
    percore_runtime::run(async {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let (a_port, b_port) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        // A name that may resolve to ::1 first: an IPv4 socket cannot connect
        // there, so the next address is tried.
        a.connect(("localhost", b_port)).unwrap();
        b.connect(format!("127.0.0.1:{a_port}")).unwrap();
        let (res, _) = a.send(b"by name".to_vec()).await;
        res.unwrap();
        let (res, buf) = b.recv(Vec::with_capacity(16)).await;
        assert_eq!(&buf[..res.unwrap()], b"by name");
    })
    .unwrap();
}
