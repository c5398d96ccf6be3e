//! Dropping connections and their futures mid-operation leaks no fd.

mod util;

use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use percore_net::{TcpListener, TcpStream};
use percore_runtime::time::timeout;
use percore_runtime::{spawn, Runtime};

/// Tests here count the process's fds; they must not overlap.
static FDS: Mutex<()> = Mutex::new(());

const CONNECTIONS: usize = 10_000;
const BATCH: usize = 250;

/// The server reads one byte: `0` is echoed; after `1` it starts another read
/// (the peer sends nothing more) and drops it in flight, then the connection.
async fn server(listener: TcpListener) {
    let mut incoming = listener.incoming();
    while let Some(stream) = incoming.next().await {
        let Ok(stream) = stream else { continue };
        drop(spawn(async move {
            let (res, buf) = stream.read(Vec::with_capacity(16)).await;
            match (res, buf.first()) {
                (Ok(1), Some(0)) => drop(stream.write_all(buf).await),
                (Ok(1), Some(1)) => {
                    let read = stream.read(Vec::with_capacity(16));
                    let _ = timeout(Duration::from_millis(1), read).await;
                }
                _ => {}
            }
        }));
    }
}

/// Even clients complete an exchange; odd ones drop a read in flight, then the stream.
async fn client(addr: SocketAddr, i: usize) -> io::Result<()> {
    let stream = TcpStream::connect(addr).await?;
    let odd = i % 2 == 1;
    let (res, _) = stream.write_all(vec![u8::from(odd)]).await;
    res?;
    if odd {
        let read = stream.read(Vec::with_capacity(16));
        let _ = timeout(Duration::from_millis(1), read).await;
        return Ok(());
    }
    let (res, buf) = stream.read_exact(Vec::with_capacity(1)).await;
    res?;
    assert_eq!(buf, [0]);
    Ok(())
}

#[test]
fn ten_thousand_connections_half_dropped_mid_read_leave_no_fd() {
    let _serial = FDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = util::open_fds();
    {
        let listener = util::std_listener();
        let addr = listener.local_addr().unwrap();
        let runtime = Runtime::builder().cores(2).build().unwrap();
        let _server = runtime
            .spawn_on(0, move || server(TcpListener::from_std(listener)))
            .unwrap();
        let failures = runtime
            .run_on(1, move || async move {
                let mut failures = 0;
                for batch in (0..CONNECTIONS).step_by(BATCH) {
                    let clients: Vec<_> = (batch..batch + BATCH)
                        .map(|i| spawn(client(addr, i)))
                        .collect();
                    for client in clients {
                        if !matches!(client.await, Ok(Ok(()))) {
                            failures += 1;
                        }
                    }
                }
                failures
            })
            .unwrap();
        assert_eq!(failures, 0, "every client finished cleanly");
        // Dropping the runtime drops the server and drains every op.
    }
    assert_eq!(util::open_fds(), before, "fds open before and after");
}

#[test]
fn a_stream_dropped_with_a_read_in_flight_closes_its_fd() {
    let _serial = FDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = util::open_fds();
    percore_runtime::run(async {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        // A read future polled once (submitted), then dropped with its stream.
        let read = server.read(Vec::with_capacity(16));
        let _ = timeout(Duration::from_millis(1), read).await;
        drop(server);
        // The peer sees end of stream: the server's fd really closed.
        let (res, _) = client.read(Vec::with_capacity(16)).await;
        assert_eq!(res.unwrap(), 0);
    })
    .unwrap();
    assert_eq!(util::open_fds(), before);
}
