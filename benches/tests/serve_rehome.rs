//! percore-bench's own echo and HTTP servers move connections between
//! requests when their `Balance` asks (`serve --rehome` relies on it), and
//! no byte is lost, repeated or reordered across a move: the code behind
//! the `percore-rehome` figures of benches/README.md.
//!
//! The servers run with `Placement::Balance` (the placement of `--balance`,
//! no load-driven moves of their own), and the test asks for the moves with
//! `Balance::move_connections`, so what moves is up to the test alone.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use percore_bench::http::RESPONSE;
use percore_bench::server::{Placement, Protocol, Server};

const CLIENTS: usize = 8;
const WAIT: Duration = Duration::from_secs(30);

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream.set_write_timeout(Some(WAIT)).expect("write timeout");
    stream
}

/// Waits (bounded) until the balance counts `want` connections per core.
fn wait_for_live(server: &Server, want: &[usize]) {
    let balance = server.balance().expect("a balanced server");
    let deadline = Instant::now() + WAIT;
    while balance.live() != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(balance.live(), want, "connections per core");
}

/// Runs `exchange` on every client in turn, `rounds` times.
fn exchange_all(
    clients: &mut [TcpStream],
    rounds: usize,
    exchange: impl Fn(&mut TcpStream, usize, usize),
) {
    for round in 0..rounds {
        for (i, client) in clients.iter_mut().enumerate() {
            exchange(client, i, round);
        }
    }
}

/// Moves every connection on core 0 to core 1 while the clients go on, with
/// `exchange` checking each answer (a lost, repeated or reordered byte
/// shifts every later answer and fails its comparison).
fn move_all_to_core_1(server: &Server, exchange: impl Fn(&mut TcpStream, usize, usize) + Copy) {
    let balance = server.balance().expect("a balanced server");
    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(server)).collect();
    exchange_all(&mut clients, 5, exchange);
    let live = balance.live();
    assert_eq!(
        live.iter().sum::<usize>(),
        CLIENTS,
        "every client counted: {live:?}"
    );
    let on_0 = live[0];
    assert!(on_0 > 0, "the balance places some on core 0: {live:?}");

    balance.move_connections(0, 1, CLIENTS);
    // Each connection on core 0 moves at its next idle moment: after its
    // next answer. A few rounds more, every answer checked.
    exchange_all(&mut clients, 20, exchange);
    wait_for_live(server, &[0, CLIENTS]);
    assert_eq!(
        balance.moves(),
        on_0 as u64,
        "each connection of core 0 moved once"
    );
    exchange_all(&mut clients, 5, exchange);
    drop(clients);
    wait_for_live(server, &[0, 0]);
}

#[test]
fn echo_connections_move_and_every_byte_comes_back_in_order() {
    let server = Server::start(
        Protocol::Echo,
        "127.0.0.1:0".parse().expect("addr"),
        2,
        None,
        Placement::Balance,
    )
    .expect("server");
    move_all_to_core_1(&server, |client, i, round| {
        // Sent in two writes, read back whole: the second half may arrive
        // while the server moves the connection after echoing the first,
        // and is then carried over to the other core.
        let message: Vec<u8> = format!("client {i} round {round:03}|")
            .into_bytes()
            .repeat(2 + round % 5);
        let (first, second) = message.split_at(message.len() / 2);
        client.write_all(first).expect("send");
        client.write_all(second).expect("send");
        let mut back = vec![0; message.len()];
        client.read_exact(&mut back).expect("echo");
        assert_eq!(back, message, "client {i}, round {round}");
    });
}

#[test]
fn http_connections_move_and_every_request_is_answered_once() {
    let server = Server::start(
        Protocol::Http,
        "127.0.0.1:0".parse().expect("addr"),
        2,
        None,
        Placement::Balance,
    )
    .expect("server");
    move_all_to_core_1(&server, |client, i, round| {
        // One request, or two pipelined in one write.
        let requests = 1 + (i + round) % 2;
        let request = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n".repeat(requests);
        client.write_all(&request).expect("send");
        let mut back = vec![0; RESPONSE.len() * requests];
        client.read_exact(&mut back).expect("responses");
        assert_eq!(back, RESPONSE.repeat(requests), "client {i}, round {round}");
    });
}
