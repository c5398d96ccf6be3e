//! Retiring an idle HTTP/1 connection's hyper state (see `conn`), on virtual
//! time: the client and the server share one core whose clock jumps over
//! idle stretches, so a retire happens exactly when the test sleeps past
//! the delay. The server has no other timer (no header or keep-alive
//! timeout) that a jump could fire early; an early retire would change no
//! verdict but the count, which is checked as a lower bound.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use percore_net::graceful::Connections;
use percore_net::{TcpListener, TcpStream};
use percore_runtime::shutdown::Shutdown;
use percore_runtime::time::sleep;

use super::conn::RETIRED;
use super::{Body, Builder};

const RETIRE: Duration = Duration::from_secs(1);

/// Bytes of `/big`'s answer: more than the kernel's socket buffers and the
/// transport's send queue hold, so a client that does not read leaves the
/// response unflushed.
const BIG: usize = 16 << 20;

/// Answers every request with its path (`/big`: `BIG` bytes of `x`).
async fn echo_path(request: Request<Body>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    if path == "/big" {
        return Ok(Response::new(Full::new(Bytes::from(vec![b'x'; BIG]))));
    }
    Ok(Response::new(Full::new(Bytes::from(path))))
}

/// A server of one connection on this core (only the retire delay as a
/// timer), and a client connected to it.
async fn serve_one() -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(percore_runtime::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let builder = Builder::new()
            .header_read_timeout(None)
            .keep_alive_timeout(None)
            .retire_idle_after(RETIRE);
        let connections = Connections::new(&Shutdown::new());
        let service = hyper::service::service_fn(echo_path);
        builder
            .serve_connection(stream, service, &connections)
            .await;
    }));
    TcpStream::connect(addr).await.unwrap()
}

async fn send(client: &TcpStream, bytes: &[u8]) {
    let (res, _) = client.write_all(bytes.to_vec()).await;
    res.unwrap();
}

/// Reads until `n` whole responses are in (each ends with its body, a path
/// starting with `/`, and bodies here are the path: `want` lists them).
async fn responses(client: &TcpStream, want: &[&str]) -> String {
    let mut got = String::new();
    loop {
        let complete: Vec<&str> = got.split("HTTP/1.1 ").filter(|r| !r.is_empty()).collect();
        if complete.len() == want.len()
            && want
                .iter()
                .zip(&complete)
                .all(|(path, response)| response.ends_with(&format!("\r\n\r\n{path}")))
        {
            return got;
        }
        let buf = Vec::with_capacity(4096);
        let (res, buf) = client.read(buf).await;
        let n = res.unwrap();
        assert!(n > 0, "the server closed; got so far: {got:?}");
        got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        assert!(got.len() < 64 * 1024, "too much: {got:?}");
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

#[percore::test(start_paused = true)]
async fn a_retired_connection_serves_its_next_requests() {
    let before = RETIRED.get();
    let client = serve_one().await;
    for (i, path) in ["/one", "/two", "/three"].into_iter().enumerate() {
        send(&client, get(path).as_bytes()).await;
        let got = responses(&client, &[path]).await;
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        sleep(RETIRE * 2).await;
        assert!(
            RETIRED.get() - before > i as u64,
            "retired after each request: {} after {} requests",
            RETIRED.get() - before,
            i + 1
        );
    }
}

#[percore::test(start_paused = true)]
async fn pipelined_requests_and_a_partial_head_survive_a_retire() {
    let before = RETIRED.get();
    let client = serve_one().await;
    // Two whole requests and the start of a third in one write: hyper reads
    // them together, answers two, and holds the third's start in its read
    // buffer when it is retired.
    let third = get("/three");
    let (start, end) = third.as_bytes().split_at(20);
    let mut first = format!("{}{}", get("/one"), get("/two")).into_bytes();
    first.extend_from_slice(start);
    send(&client, &first).await;
    responses(&client, &["/one", "/two"]).await;
    sleep(RETIRE * 2).await;
    assert!(
        RETIRED.get() > before,
        "retired with a partial head in hand"
    );
    send(&client, end).await;
    responses(&client, &["/three"]).await;
    // And again, once idle for good.
    sleep(RETIRE * 2).await;
    send(
        &client,
        format!("{}{}", get("/four"), get("/five")).as_bytes(),
    )
    .await;
    responses(&client, &["/four", "/five"]).await;
    assert!(RETIRED.get() - before >= 2);
}

#[percore::test(start_paused = true)]
async fn a_head_dripped_byte_by_byte_across_the_retire_is_served() {
    let before = RETIRED.get();
    let client = serve_one().await;
    send(&client, get("/first").as_bytes()).await;
    responses(&client, &["/first"]).await;
    // The first byte comes just before, at, or just after the retire (or
    // long after); the rest one by one, some with gaps longer than the
    // retire delay.
    for (round, idle_ms) in [999u64, 1000, 1001, 1998, 1999, 2000]
        .into_iter()
        .enumerate()
    {
        sleep(Duration::from_millis(idle_ms)).await;
        let path = format!("/drip{round}");
        for (i, byte) in get(&path).bytes().enumerate() {
            send(&client, &[byte]).await;
            let gap = if i % 7 == 3 {
                RETIRE * 2
            } else {
                Duration::from_millis(1)
            };
            sleep(gap).await;
        }
        responses(&client, &[&path]).await;
    }
    // At least the four rounds that came after the retire delay.
    assert!(RETIRED.get() - before >= 4, "{}", RETIRED.get() - before);
}

#[percore::test(start_paused = true)]
async fn a_connection_retired_before_its_response_is_flushed_loses_no_byte() {
    let before = RETIRED.get();
    let client = serve_one().await;
    send(&client, get("/big").as_bytes()).await;
    // The client reads nothing for a while: the response is written (the
    // request is over, the connection idle) but not flushed when hyper's
    // connection is retired; it ends only once all is flushed.
    sleep(RETIRE * 3).await;
    let mut got = 0;
    let mut head = Vec::new();
    while got < BIG {
        let (res, buf) = client.read(Vec::with_capacity(64 * 1024)).await;
        let n = res.unwrap();
        assert!(n > 0, "closed after {got} bytes of the body");
        if head.len() < 4096 && got == 0 {
            head.extend_from_slice(&buf);
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                got = head.len() - end - 4;
            }
        } else {
            got += n;
        }
    }
    assert_eq!(got, BIG, "the whole body, nothing more");
    sleep(RETIRE * 3).await;
    assert!(RETIRED.get() > before, "retired");
    send(&client, get("/after").as_bytes()).await;
    responses(&client, &["/after"]).await;
}

/// What an idle connection's task holds is its future: the transport and
/// hyper's connection are on the heap (the first for the connection's life,
/// the second only while it serves), so the future stays small.
#[percore::test]
async fn a_connection_task_is_small() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let connections = Connections::new(&Shutdown::new());
    let builder = Builder::new();
    let service = hyper::service::service_fn(echo_path);
    let serving = builder.serve_connection(stream, service, &connections);
    // 536 bytes with Rust 1.95; hyper's HTTP/1 connection alone is larger.
    let size = std::mem::size_of_val(&serving);
    assert!(size <= 768, "{size} bytes");
}
