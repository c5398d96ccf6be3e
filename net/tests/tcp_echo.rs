//! 1,000 concurrent connections each echo 1 MiB through the server, byte-exact.

mod util;

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::OnceLock;

use percore_net::{TcpListener, TcpStream};
use percore_runtime::{spawn, IoBuf, Runtime};

const CONNECTIONS: usize = 1000;
const BYTES: usize = 1 << 20;
const CHUNK: usize = 64 * 1024;

/// Sends the pattern in chunks and reads it back, checking every byte.
async fn client(addr: SocketAddr, pattern: &'static [u8]) -> io::Result<()> {
    let stream = TcpStream::connect(addr).await?;
    let (read, write) = stream.into_split();
    let writer = spawn(async move {
        for chunk in pattern.chunks(CHUNK) {
            let (res, _) = write.write_all(chunk).await;
            res?;
        }
        write.shutdown().await
    });
    let mut buf = Vec::with_capacity(CHUNK);
    let mut got = 0;
    while got < BYTES {
        buf.clear();
        let (res, back) = read.read(buf).await;
        buf = back;
        let n = res?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("EOF after {got}"),
            ));
        }
        if buf[..n] != pattern[got..got + n] {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("mismatch near {got}"),
            ));
        }
        got += n;
    }
    buf.clear();
    let (res, _) = read.read(buf).await;
    assert_eq!(res?, 0, "end of stream after the echo");
    writer.await.expect("writer task")?;
    Ok(())
}

#[test]
fn a_thousand_connections_each_echo_one_mebibyte() {
    // In a static rather than leaked, so LeakSanitizer (ci/asan.sh) sees it
    // still reachable.
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    let pattern: &'static [u8] =
        PATTERN.get_or_init(|| (0..BYTES).map(|i| (i * 7 + i / 251) as u8).collect());
    let listener = util::std_listener();
    let addr = listener.local_addr().unwrap();
    let runtime = Runtime::builder().cores(2).build().unwrap();
    let _server = runtime
        .spawn_on(0, move || {
            util::echo_server(TcpListener::from_std(listener))
        })
        .unwrap();
    let results = runtime
        .run_on(1, move || async move {
            let clients: Vec<_> = (0..CONNECTIONS)
                .map(|_| spawn(client(addr, pattern)))
                .collect();
            let mut failures = Vec::new();
            for client in clients {
                if let Err(err) = client.await.expect("client task") {
                    failures.push(err.to_string());
                }
            }
            failures
        })
        .unwrap();
    assert!(
        results.is_empty(),
        "{} failed: {:?}",
        results.len(),
        &results[..results.len().min(5)]
    );
    let _ = Shutdown::Both;
    let _ = pattern.bytes_init();
}
