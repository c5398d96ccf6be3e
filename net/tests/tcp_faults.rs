//! Faults a peer can cause: a reset mid-request, a half close, a client that
//! never reads. Each affects its own connection only.

mod util;

use std::cell::RefCell;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use futures_util::StreamExt;
use percore_net::{TcpListener, TcpStream};
use percore_runtime::{spawn, time::sleep};
use socket2::SockRef;

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// An echo server that records how each connection ended.
fn recording_server(listener: TcpListener) -> Rc<RefCell<Vec<io::Result<u64>>>> {
    let ends = Rc::new(RefCell::new(Vec::new()));
    let record = ends.clone();
    drop(spawn(async move {
        let mut incoming = listener.incoming();
        while let Some(Ok(stream)) = incoming.next().await {
            let record = record.clone();
            drop(spawn(async move {
                let end = util::echo(stream).await;
                record.borrow_mut().push(end);
            }));
        }
    }));
    ends
}

async fn round_trip(addr: SocketAddr, message: &'static [u8]) -> io::Result<Vec<u8>> {
    let stream = TcpStream::connect(addr).await?;
    let (res, _) = stream.write_all(message).await;
    res?;
    let (res, buf) = stream.read_exact(Vec::with_capacity(message.len())).await;
    res?;
    Ok(buf)
}

#[test]
fn a_reset_mid_request_fails_that_connection_alone() {
    percore_runtime::run(async {
        let listener = TcpListener::bind(localhost()).unwrap();
        let addr = listener.local_addr().unwrap();
        let ends = recording_server(listener);

        let bystander = TcpStream::connect(addr).await.unwrap();
        let rude = TcpStream::connect(addr).await.unwrap();
        let (res, _) = rude.write_all(&b"GET / HTT"[..]).await;
        res.unwrap();
        // Let the server echo it and wait for more, then reset (RST, not FIN).
        let (res, _) = rude.read_exact(Vec::with_capacity(9)).await;
        res.unwrap();
        SockRef::from(&rude)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(rude);
        while ends.borrow().is_empty() {
            sleep(Duration::from_millis(1)).await;
        }
        let err = ends.borrow_mut().pop().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");

        // The server still serves the connection it had and new ones.
        let (res, _) = bystander.write_all(&b"still there?"[..]).await;
        res.unwrap();
        let (res, buf) = bystander.read_exact(Vec::with_capacity(12)).await;
        res.unwrap();
        assert_eq!(buf, b"still there?");
        assert_eq!(round_trip(addr, b"new one").await.unwrap(), b"new one");
    })
    .unwrap();
}

#[test]
fn a_half_closed_peer_gets_its_data_then_end_of_stream() {
    percore_runtime::run(async {
        let listener = TcpListener::bind(localhost()).unwrap();
        let addr = listener.local_addr().unwrap();
        let ends = recording_server(listener);

        let stream = TcpStream::connect(addr).await.unwrap();
        let (res, _) = stream.write_all(vec![b'x'; 100_000]).await;
        res.unwrap();
        stream.shutdown(Shutdown::Write).await.unwrap();
        let mut got = Vec::with_capacity(200_000);
        loop {
            let (res, buf) = stream.read(got).await;
            got = buf;
            if res.unwrap() == 0 {
                break;
            }
        }
        assert_eq!(got.len(), 100_000);
        assert!(got.iter().all(|&b| b == b'x'));
        while ends.borrow().is_empty() {
            sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(ends.borrow_mut().pop().unwrap().unwrap(), 100_000);
    })
    .unwrap();
}

#[test]
fn a_client_that_never_reads_is_held_back_and_starves_no_one() {
    const ATTEMPT: usize = 256 << 20;
    const CHUNK: usize = 256 << 10;
    percore_runtime::run(async {
        let listener = TcpListener::bind(localhost()).unwrap();
        let addr = listener.local_addr().unwrap();
        let _ends = recording_server(listener);

        // The flooder writes and never reads its echo.
        let sent = Rc::new(RefCell::new(0usize));
        let counter = sent.clone();
        let flooder = spawn(async move {
            let stream = TcpStream::connect(addr).await?;
            let mut chunk = vec![0u8; CHUNK];
            while *counter.borrow() < ATTEMPT {
                let (res, back) = stream.write(chunk).await;
                chunk = back;
                *counter.borrow_mut() += res?;
            }
            io::Result::Ok(stream)
        });

        // Others on the same core are served meanwhile.
        for _ in 0..20 {
            assert_eq!(round_trip(addr, b"hello").await.unwrap(), b"hello");
        }
        // Give the flooder every chance to push more; it cannot, because the
        // server's echo writes wait for it to read, so the server stops reading.
        let mut last = 0;
        loop {
            sleep(Duration::from_millis(50)).await;
            let now = *sent.borrow();
            if now == last {
                break;
            }
            last = now;
        }
        assert!(
            last < 64 << 20,
            "the flooder got {last} bytes in without reading any"
        );
        assert!(
            !flooder.is_finished(),
            "writes never completed past the bound"
        );
        flooder.abort();
    })
    .unwrap();
}
