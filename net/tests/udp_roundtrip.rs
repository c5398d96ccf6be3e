//! UDP: send_to/recv_from, connected send/recv, and vectored sendmsg/recvmsg.

use std::net::SocketAddr;

use percore_net::UdpSocket;

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[test]
fn datagrams_round_trip_with_their_sender() {
    percore_runtime::run(async {
        let a = UdpSocket::bind(localhost()).unwrap();
        let b = UdpSocket::bind(localhost()).unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());

        let (res, _) = a.send_to(b"ping".to_vec(), b_addr).await;
        assert_eq!(res.unwrap(), 4);
        let (res, buf) = b.recv_from(Vec::with_capacity(64)).await;
        assert_eq!(res.unwrap(), (4, a_addr));
        assert_eq!(buf, b"ping");

        // Connected: send/recv without addresses.
        a.connect(b_addr).unwrap();
        b.connect(a_addr).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b_addr);
        let (res, _) = b.send(&b"pong"[..]).await;
        assert_eq!(res.unwrap(), 4);
        let (res, buf) = a.recv(Vec::with_capacity(64)).await;
        assert_eq!(res.unwrap(), 4);
        assert_eq!(buf, b"pong");
    })
    .unwrap();
}

#[test]
fn sendmsg_gathers_and_recvmsg_scatters_one_datagram() {
    percore_runtime::run(async {
        let a = UdpSocket::bind(localhost()).unwrap();
        let b = UdpSocket::bind(localhost()).unwrap();
        let parts = vec![b"head-".to_vec(), b"body-".to_vec(), b"tail".to_vec()];
        let (res, parts) = a.send_msg(parts, Some(b.local_addr().unwrap())).await;
        assert_eq!(res.unwrap(), 14);
        assert_eq!(parts.len(), 3);

        let bufs = vec![Vec::with_capacity(4), Vec::with_capacity(100)];
        let (res, bufs) = b.recv_msg(bufs).await;
        let (n, from, truncated) = res.unwrap();
        assert_eq!((n, from, truncated), (14, a.local_addr().unwrap(), false));
        assert_eq!(bufs[0], b"head");
        assert_eq!(bufs[1], b"-body-tail");

        // A datagram larger than the buffers is truncated, and says so.
        let (res, _) = a.send_to(vec![7u8; 32], b.local_addr().unwrap()).await;
        res.unwrap();
        let (res, bufs) = b.recv_msg(vec![Vec::with_capacity(8)]).await;
        let (n, _, truncated) = res.unwrap();
        assert_eq!((n, truncated, bufs[0].len()), (8, true, 8));
    })
    .unwrap();
}

#[test]
fn std_sockets_convert_both_ways() {
    percore_runtime::run(async {
        let std_socket = std::net::UdpSocket::bind(localhost()).unwrap();
        let addr = std_socket.local_addr().unwrap();
        let socket = UdpSocket::from_std(std_socket);
        assert_eq!(socket.local_addr().unwrap(), addr);
        let back = socket.into_std().unwrap();
        assert_eq!(back.local_addr().unwrap(), addr);
    })
    .unwrap();
}
