//! TcpStream's API around the hot path: accept with the peer address, vectored
//! I/O, options, halves, std conversion, connect errors and timeouts.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use percore_net::{TcpListener, TcpStream};
use percore_runtime::IoBuf;

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[test]
fn accept_gives_the_peer_address_and_streams_know_theirs() {
    percore_runtime::run(async {
        let listener = TcpListener::bind(localhost()).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect_timeout(addr, Duration::from_secs(5))
            .await
            .unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(server.peer_addr().unwrap(), peer);
        assert_eq!(client.peer_addr().unwrap(), addr);
        server.set_nodelay(true).unwrap();
        assert!(server.nodelay().unwrap());
    })
    .unwrap();
}

#[test]
fn writev_gathers_readv_scatters_and_slices_fill_ranges() {
    percore_runtime::run(async {
        let listener = TcpListener::bind(localhost()).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();

        let (res, _) = client.writev(vec![&b"abc"[..], &b"defgh"[..]]).await;
        assert_eq!(res.unwrap(), 8);
        let (res, bufs) = server
            .readv(vec![Vec::with_capacity(3), Vec::with_capacity(5)])
            .await;
        let n = res.unwrap();
        assert!(n > 0);
        let joined: Vec<u8> = bufs.concat();
        let (res, rest) = server.read_exact(Vec::with_capacity(8 - n)).await;
        res.unwrap();
        assert_eq!([joined, rest].concat(), b"abcdefgh");

        // read_exact into a range of a buffer, keeping its first bytes.
        let (res, _) = client.write_all(&b"XYZ"[..]).await;
        res.unwrap();
        let mut buf = Vec::with_capacity(6);
        buf.extend_from_slice(b"123");
        let (res, slice) = server.read_exact(buf.slice(3..6)).await;
        res.unwrap();
        assert_eq!(slice.into_inner(), b"123XYZ");
    })
    .unwrap();
}

#[test]
fn halves_read_and_write_from_two_tasks_and_reunite() {
    percore_runtime::run(async {
        let listener = TcpListener::bind(localhost()).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (read, write) = client.into_split();
        let writer = percore_runtime::spawn(async move {
            let (res, _) = write.write_all(vec![5u8; 100_000]).await;
            res.unwrap();
            write.shutdown().await.unwrap();
            write
        });
        // The server echoes what it gets until end of stream.
        let echo = percore_runtime::spawn(async move {
            let mut total = 0;
            loop {
                let (res, buf) = server.read(Vec::with_capacity(8192)).await;
                match res.unwrap() {
                    0 => break,
                    n => total += n,
                }
                let (res, _) = server.write_all(buf).await;
                res.unwrap();
            }
            server.shutdown(Shutdown::Write).await.unwrap();
            total
        });
        let (res, got) = read.read_exact(Vec::with_capacity(100_000)).await;
        res.unwrap();
        assert!(got.iter().all(|&b| b == 5));
        assert_eq!(echo.await.unwrap(), 100_000);
        let write = writer.await.unwrap();
        let stream = read.reunite(write).unwrap();
        let (res, _) = stream.read(Vec::with_capacity(1)).await;
        assert_eq!(res.unwrap(), 0);
    })
    .unwrap();
}

#[test]
fn halves_of_different_streams_do_not_reunite() {
    percore_runtime::run(async {
        let listener = TcpListener::bind(localhost()).unwrap();
        let addr = listener.local_addr().unwrap();
        let a = TcpStream::connect(addr).await.unwrap();
        let b = TcpStream::connect(addr).await.unwrap();
        let (a_read, _a_write) = a.into_split();
        let (_b_read, b_write) = b.into_split();
        assert!(a_read.reunite(b_write).is_err());
    })
    .unwrap();
}

#[test]
fn std_streams_convert_both_ways_and_keep_working() {
    let listener = std::net::TcpListener::bind(localhost()).unwrap();
    let addr = listener.local_addr().unwrap();
    let std_client = std::net::TcpStream::connect(addr).unwrap();
    let (std_server, _) = listener.accept().unwrap();
    let std_server = percore_runtime::run(async move {
        let server = TcpStream::from_std(std_server);
        let (res, _) = server.write_all(&b"from percore"[..]).await;
        res.unwrap();
        server.into_std().unwrap()
    })
    .unwrap();
    let mut got = [0u8; 12];
    io::Read::read_exact(&mut &std_client, &mut got).unwrap();
    assert_eq!(&got, b"from percore");
    drop(std_server);
    let listener = TcpListener::from_std(listener);
    assert_eq!(listener.local_addr().unwrap(), addr);
    assert!(listener.into_std().is_ok());
}

#[test]
fn a_refused_connect_says_where_and_keeps_its_kind() {
    // A port that was just free: bind, learn it, close.
    let addr = std::net::TcpListener::bind(localhost())
        .and_then(|l| l.local_addr())
        .unwrap();
    percore_runtime::run(async move {
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        let err = TcpStream::connect_timeout(addr, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    })
    .unwrap();
}

#[test]
fn reuse_port_lets_two_listeners_share_a_port() {
    use percore_net::tcp::ListenOptions;
    let options = ListenOptions::new().reuse_port(true);
    let first = options.bind_tcp(localhost()).unwrap();
    let addr = first.local_addr().unwrap();
    let second = options.bind_tcp(addr).unwrap();
    assert_eq!(second.local_addr().unwrap(), addr);
    // Without SO_REUSEPORT the port is taken, and the error names it.
    let err = ListenOptions::new().bind_tcp(addr).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn connect_timeout_gives_up_on_a_listener_that_drops_syns() {
    use percore_net::tcp::ListenOptions;
    // A backlog of 0 holds one connection; with it full, the kernel drops
    // further SYNs, so a connect waits for a retransmit a second later.
    let listener = ListenOptions::new()
        .backlog(0)
        .bind_tcp(localhost())
        .unwrap();
    let addr = listener.local_addr().unwrap();
    percore_runtime::run(async move {
        let mut queued = Vec::new();
        let err = loop {
            match TcpStream::connect_timeout(addr, Duration::from_millis(100)).await {
                Ok(stream) if queued.len() < 8 => queued.push(stream),
                Ok(_) => panic!("the backlog never filled"),
                Err(err) => break err,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        drop(listener);
    })
    .unwrap();
}

#[test]
fn ipv6_loopback_works_where_the_host_has_it() {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    };
    percore_runtime::run(async move {
        let addr = listener.local_addr().unwrap();
        assert!(addr.is_ipv6());
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let (res, _) = client.write_all(&b"six"[..]).await;
        res.unwrap();
        let (res, buf) = server.read_exact(Vec::with_capacity(3)).await;
        res.unwrap();
        assert_eq!(buf, b"six");
    })
    .unwrap();
}
