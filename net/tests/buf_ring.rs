//! Receiving through a provided-buffer ring: `RecvStream`.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use percore_net::{BufRing, TcpListener, TcpStream, UnixStream};

thread_local! {
    /// Receives `ring_echo` got in a ring buffer, on this thread.
    static FROM_RING: Cell<usize> = const { Cell::new(0) };
}

/// Echoes what `stream` receives through `ring`, writing each ring buffer back
/// as it is, until end of stream.
async fn ring_echo(stream: TcpStream, ring: BufRing) -> std::io::Result<()> {
    let mut incoming = stream.recv_stream(&ring);
    while let Some(buf) = incoming.next().await {
        let buf = buf?;
        if buf.is_from_ring() {
            FROM_RING.with(|n| n.set(n.get() + 1));
        }
        let (res, _buf) = stream.write_all(buf).await;
        res?;
    }
    Ok(())
}

async fn serve(listener: TcpListener, ring: BufRing, accepted: Rc<Cell<usize>>) {
    let mut incoming = listener.incoming();
    while let Some(stream) = incoming.next().await {
        if let Ok(stream) = stream {
            accepted.set(accepted.get() + 1);
            drop(percore_runtime::spawn(ring_echo(stream, ring.clone())));
        }
    }
}

const CONNECTIONS: usize = 10_000;
/// Set in the child process that holds the client ends (each process may open
/// 20,000 fds here, so one cannot hold both ends of 10,000 connections).
const CLIENTS_ENV: &str = "PERCORE_TEST_RING_CLIENTS";

/// The child: opens `CONNECTIONS` idle connections, says so, waits for "go",
/// then sends one byte on each and checks the echo.
#[test]
fn clients_child() {
    let Some(addr) = std::env::var_os(CLIENTS_ENV) else {
        return; // only meaningful as the child of the test below
    };
    use std::io::{BufRead, Read, Write};
    let addr: std::net::SocketAddr = addr.to_str().unwrap().parse().unwrap();
    let mut clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    println!("CONNECTED");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "go");
    for (i, client) in clients.iter_mut().enumerate() {
        client.write_all(&[i as u8]).unwrap();
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let mut back = [0u8];
        client.read_exact(&mut back).unwrap();
        assert_eq!(back, [i as u8]);
    }
    println!("ECHOED");
}

#[test]
fn ten_thousand_idle_connections_hold_no_buffer() {
    use std::io::{BufRead, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let listener = util::std_listener();
    let addr = listener.local_addr().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "clients_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CLIENTS_ENV, addr.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_child = child.stdin.take().unwrap();
    // 1: all connected; 2: all echoed; 3: the child's output ended.
    let phase = Arc::new(AtomicUsize::new(0));
    let reader = {
        let phase = Arc::clone(&phase);
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                // libtest may print its "test … " prefix on the same line.
                let line = line.unwrap_or_default();
                if line.contains("CONNECTED") {
                    phase.store(1, Ordering::SeqCst);
                } else if line.contains("ECHOED") {
                    phase.store(2, Ordering::SeqCst);
                }
            }
            phase.fetch_max(3, Ordering::SeqCst);
        })
    };
    let wait_for = |want: usize| {
        let phase = Arc::clone(&phase);
        async move {
            // Bounded: the child gives up long before this on a broken server.
            for _ in 0..12_000 {
                match phase.load(Ordering::SeqCst) {
                    now if now == want => return,
                    3 => panic!("the client process ended early"),
                    _ => percore_runtime::time::sleep(Duration::from_millis(5)).await,
                }
            }
            panic!("the client process never reached phase {want}");
        }
    };
    percore_runtime::run(async {
        let ring = BufRing::new(256, 4096).unwrap();
        let listener = TcpListener::from_std(listener);
        let accepted = Rc::new(Cell::new(0));
        let server = percore_runtime::spawn(serve(listener, ring.clone(), accepted.clone()));
        wait_for(1).await;
        while accepted.get() < CONNECTIONS {
            percore_runtime::time::sleep(Duration::from_millis(5)).await;
        }
        // Let every echo task arm its receive.
        for _ in 0..10 {
            percore_runtime::yield_now().await;
        }
        let stats = percore_runtime::stats();
        assert!(
            stats.in_flight >= CONNECTIONS,
            "every connection has its receive armed ({} ops in flight)",
            stats.in_flight
        );
        assert_eq!(
            ring.available(),
            ring.capacity(),
            "{CONNECTIONS} waiting receives hold no buffer"
        );
        // Every connection still works: one byte each way.
        to_child.write_all(b"go\n").unwrap();
        wait_for(2).await;
        // The client has its echoes once the sends complete; each echo task
        // gives its buffer back when it sees that completion, a moment later
        // on a busy core. Bounded wait, then the check.
        for _ in 0..6_000 {
            if ring.available() == ring.capacity() {
                break;
            }
            percore_runtime::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            ring.available(),
            ring.capacity(),
            "echoed buffers went back"
        );
        server.abort();
    })
    .unwrap();
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
}

#[test]
fn echo_through_the_ring_is_byte_exact() {
    percore_runtime::run(async {
        let ring = BufRing::new(64, 2048).unwrap();
        let listener = TcpListener::from_std(util::std_listener());
        let addr = listener.local_addr().unwrap();
        let server = percore_runtime::spawn(serve(listener, ring.clone(), Rc::default()));
        let clients = (0..32u8).map(|seed| async move {
            let client = TcpStream::connect(addr).await.unwrap();
            let (reader, writer) = client.into_split();
            let data: Vec<u8> = (0..256 * 1024u32)
                .map(|i| (i as u8).wrapping_mul(seed))
                .collect();
            let expected = data.clone();
            let send = async move {
                let (res, _) = writer.write_all(data).await;
                res.unwrap();
                writer.shutdown().await.unwrap();
            };
            let recv = async move {
                let (res, back) = reader.read_exact(Vec::with_capacity(expected.len())).await;
                res.unwrap();
                assert!(
                    back == expected,
                    "client {seed} got its bytes back in order"
                );
            };
            futures_util::future::join(send, recv).await;
        });
        futures_util::future::join_all(clients).await;
        assert_eq!(ring.available(), ring.capacity());
        server.abort();
    })
    .unwrap();
}

/// With every buffer held by the application, receives fall back to a plain
/// buffer instead of stalling, and use the ring again once buffers are back.
#[test]
fn an_empty_ring_falls_back_then_recovers() {
    percore_runtime::run(async {
        let ring = BufRing::new(2, 16).unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let mut incoming = b.recv_stream(&ring);
        let mut held = Vec::new();
        for i in 0..2u8 {
            let (res, _) = a.write_all(vec![i; 8]).await;
            res.unwrap();
            let buf = incoming.next().await.unwrap().unwrap();
            assert!(buf.is_from_ring());
            assert_eq!(&buf[..], [i; 8]);
            held.push(buf);
        }
        assert_eq!(ring.available(), 0);
        let (res, _) = a.write_all(vec![7; 8]).await;
        res.unwrap();
        let buf = incoming.next().await.unwrap().unwrap();
        assert!(!buf.is_from_ring(), "the empty ring made it fall back");
        assert_eq!(&buf[..], [7; 8]);

        held.clear();
        assert_eq!(ring.available(), 2);
        let (res, _) = a.write_all(vec![9; 8]).await;
        res.unwrap();
        let buf = incoming.next().await.unwrap().unwrap();
        assert!(buf.is_from_ring(), "back on the ring once buffers returned");
        assert_eq!(&buf[..], [9; 8]);
        drop(buf);

        drop(a);
        assert!(incoming.next().await.is_none(), "end of stream ends it");
        assert_eq!(ring.available(), 2);
    })
    .unwrap();
}

/// Receiving through the ring costs one SQE per echo request, not two: the
/// receive stays armed; only the send is submitted per request.
#[test]
fn an_echo_request_costs_one_sqe() {
    const REQUESTS: u64 = 2_000;
    let listener = util::std_listener();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut buf = [0u8; 128];
        for i in 0..REQUESTS {
            buf.fill(i as u8);
            stream.write_all(&buf).unwrap();
            let mut back = [0u8; 128];
            stream.read_exact(&mut back).unwrap();
            assert_eq!(back, buf);
        }
    });
    // No faults (`PERCORE_FAULTS`): this counts SQEs, and a short send or an
    // EINTR adds its own.
    let runtime = percore_runtime::Builder::new().faults("none").unwrap();
    let sqes = runtime
        .block_on(async move {
            let ring = BufRing::new(64, 4096).unwrap();
            let listener = TcpListener::from_std(listener);
            let (stream, _) = listener.accept().await.unwrap();
            let before = percore_runtime::stats().sqes;
            ring_echo(stream, ring).await.unwrap();
            percore_runtime::stats().sqes - before
        })
        .unwrap();
    client.join().unwrap();
    assert!(
        sqes as f64 <= REQUESTS as f64 * 1.05,
        "{sqes} SQEs for {REQUESTS} echo requests"
    );
}

/// A receive dropped while its data sits in ring buffers, or while the kernel
/// still delivers into them, gives every buffer back (compio#746's class).
#[test]
fn a_dropped_receive_returns_its_buffers() {
    percore_runtime::run(async {
        let ring = BufRing::new(8, 64).unwrap();
        for round in 0..50u8 {
            let (a, b) = UnixStream::pair().unwrap();
            let mut incoming = b.recv_stream(&ring);
            let (res, _) = a.write_all(vec![round; 40]).await;
            res.unwrap();
            let first = incoming.next().await.unwrap().unwrap();
            assert_eq!(&first[..], [round; 40]);
            // More arrives after the stream is armed; some rounds drop it with
            // buffers picked but not yet taken, some before the data lands.
            let (res, _) = a.write_all(vec![round; 40]).await;
            res.unwrap();
            if round % 2 == 0 {
                percore_runtime::yield_now().await;
            }
            drop(incoming);
            drop(first);
            drop((a, b));
        }
        // Cancellations finish on the next ticks.
        for _ in 0..100 {
            if ring.available() == ring.capacity() {
                break;
            }
            percore_runtime::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            ring.available(),
            ring.capacity(),
            "no buffer lost to a cancel"
        );
        // And the kernel agrees: it can hand out every buffer again.
        let (a, b) = UnixStream::pair().unwrap();
        let mut incoming = b.recv_stream(&ring);
        let mut held = Vec::new();
        for i in 0..ring.capacity() {
            let (res, _) = a.write_all(vec![i as u8; 10]).await;
            res.unwrap();
            let buf = incoming.next().await.unwrap().unwrap();
            assert!(
                buf.is_from_ring(),
                "buffer {i} of {} is in the ring",
                ring.capacity()
            );
            held.push(buf);
        }
    })
    .unwrap();
}
