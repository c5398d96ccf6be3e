//! The HTTP client against hyper's own server: bodies both ways, keep-alive,
//! HTTP/2 multiplexing, redirects, timeouts, names, a pooled connection the
//! server closed.

mod client_support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use client_support::{serve, serve_with, Proto};
use futures_util::StreamExt;
use percore_http::client::{Body, Client, ErrorKind};
use percore_runtime::time::{self, Instant};

#[percore::test]
async fn get_text_and_bytes() {
    let server = serve(Proto::Http1);
    let client = Client::new();
    let response = client.get(server.url("/hello")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(5));
    assert_eq!(response.url().path(), "/hello");
    assert_eq!(response.text().await.unwrap(), "hello");
    let bytes = client
        .get(server.url("/hello"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes, "hello");
    let missing = client.get(server.url("/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let err = missing.error_for_status().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Status);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
}

#[percore::test]
async fn post_put_with_bodies_in_memory_and_streamed() {
    let server = serve(Proto::Http1);
    let client = Client::new();
    let response = client
        .post(server.url("/echo"))
        .header("content-type", "text/plain")
        .body("a body")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-method"], "POST");
    assert_eq!(response.text().await.unwrap(), "a body");

    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 256) as u8).collect();
    let response = client
        .put(server.url("/echo"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-method"], "PUT");
    assert_eq!(response.bytes().await.unwrap(), big);

    // A stream of 100 chunks, sent as it comes (chunked on HTTP/1.1).
    let chunks = futures_util::stream::iter(0..100u8).then(|i| async move {
        percore_runtime::yield_now().await;
        Ok::<_, std::io::Error>(Bytes::from(vec![i; 1000]))
    });
    let response = client
        .post(server.url("/echo"))
        .body(Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    let got = response.bytes().await.unwrap();
    assert_eq!(got.len(), 100_000);
    assert!(got
        .chunks(1000)
        .enumerate()
        .all(|(i, c)| c.iter().all(|&b| b == i as u8)));
}

#[percore::test]
async fn a_failing_request_stream_is_a_body_error() {
    let server = serve(Proto::Http1);
    let client = Client::new();
    let chunks = futures_util::stream::iter([
        Ok(Bytes::from_static(b"part")),
        Err(std::io::Error::other("the source broke")),
    ]);
    let err = client
        .post(server.url("/echo"))
        .body(Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Body, "{err}");
    assert!(err.to_string().contains("the source broke"), "{err}");
    // The client goes on.
    let text = client
        .get(server.url("/hello"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "hello");
}

#[percore::test]
async fn sequential_requests_reuse_one_connection() {
    let server = serve(Proto::Http1);
    let client = Client::new();
    for i in 0..20 {
        let response = match i % 4 {
            0 => client.get(server.url("/hello")).send().await.unwrap(),
            1 => client
                .post(server.url("/echo"))
                .body("x")
                .send()
                .await
                .unwrap(),
            2 => client.head(server.url("/hello")).send().await.unwrap(),
            _ => client.get(server.url("/empty")).send().await.unwrap(),
        };
        assert!(response.status().is_success());
        response.bytes().await.unwrap();
    }
    assert_eq!(
        server.accepted(),
        1,
        "20 sequential requests, one connection"
    );
}

#[percore::test]
async fn a_response_dropped_unread_closes_its_connection_and_the_next_opens_one() {
    let server = serve(Proto::Http1);
    let client = Client::new();
    let unread = client.get(server.url("/stall")).send().await.unwrap();
    drop(unread);
    let text = client
        .get(server.url("/hello"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "hello");
    assert_eq!(server.accepted(), 2);
}

#[percore::test]
async fn no_idle_connections_kept_means_one_connection_per_request() {
    let server = serve(Proto::Http1);
    let client = Client::builder().pool_max_idle_per_host(0).build();
    for _ in 0..5 {
        client
            .get(server.url("/hello"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    assert_eq!(server.accepted(), 5);
}

#[percore::test(start_paused = true)]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let server = serve(Proto::Http1);
    let client = Client::builder()
        .pool_idle_timeout(Duration::from_secs(30))
        .build();
    client
        .get(server.url("/hello"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    time::sleep(Duration::from_secs(10)).await;
    client
        .get(server.url("/hello"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(server.accepted(), 1, "reused within the idle timeout");
    time::sleep(Duration::from_secs(31)).await;
    // The reaper closed it: the server sees its connection end.
    time::resume();
    let start = std::time::Instant::now();
    while server.closed() < 1 && start.elapsed() < Duration::from_secs(30) {
        time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(server.closed(), 1, "the idle connection was closed");
    client
        .get(server.url("/hello"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(server.accepted(), 2);
}

#[percore::test]
async fn http2_prior_knowledge_multiplexes_every_request_on_one_connection() {
    const N: usize = 200;
    // Every request waits until all N have arrived: they can only all be
    // answered if they are in flight at once.
    let arrived = Rc::new(Cell::new(0));
    let all_in = Rc::new(percore_runtime::sync::Event::new());
    let server = {
        let (arrived, all_in) = (arrived.clone(), all_in.clone());
        serve_with(Proto::Http2, move |request| {
            let (arrived, all_in) = (arrived.clone(), all_in.clone());
            async move {
                arrived.set(arrived.get() + 1);
                if arrived.get() == N {
                    all_in.set();
                }
                all_in.wait().await;
                client_support::route(request).await
            }
        })
    };
    let client = Client::builder().http2_prior_knowledge().build();
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let client = client.clone();
            let url = server.url(&format!("/id/{i}"));
            percore_runtime::spawn(async move {
                let response = client.get(url).send().await.unwrap();
                assert_eq!(response.version(), hyper::Version::HTTP_2);
                response.text().await.unwrap()
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), client_support::id_body(i));
    }
    assert_eq!(
        server.accepted(),
        1,
        "{N} concurrent requests, one HTTP/2 connection"
    );
    // POST with a body, and a streamed one, over HTTP/2 too.
    let echoed = client
        .post(server.url("/echo"))
        .body("over h2")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.text().await.unwrap(), "over h2");
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>("a"), Ok("b")]);
    let echoed = client
        .post(server.url("/echo"))
        .body(Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.text().await.unwrap(), "ab");
    assert_eq!(server.accepted(), 1);
}

#[percore::test]
async fn redirects_are_followed_within_the_limit_and_an_error_beyond() {
    let server = serve(Proto::Http1);
    let client = Client::builder().max_redirects(5).build();
    let response = client.get(server.url("/redirect/5")).send().await.unwrap();
    assert_eq!(response.url().path(), "/redirect/0");
    assert_eq!(response.text().await.unwrap(), "done");

    let err = client
        .get(server.url("/redirect/6"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect, "{err}");
    assert!(err.is_redirect());
    assert!(err.to_string().contains("too many redirects"), "{err}");

    // With none allowed, the 302 itself comes back.
    let none = Client::builder().max_redirects(0).build();
    let response = none.get(server.url("/redirect/1")).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "/redirect/0");
    // Redirect bodies were read, so one connection served all of it.
    assert_eq!(server.accepted(), 2);
}

#[percore::test]
async fn see_other_turns_post_into_get_and_307_308_keep_method_and_body() {
    let server = serve(Proto::Http1);
    let client = Client::new();
    for code in [301, 302, 303] {
        let response = client
            .post(server.url(&format!("/status/{code}?location=/method")))
            .header("content-type", "text/plain")
            .body("the body")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-body-len"], "0", "{code}");
        assert_eq!(response.text().await.unwrap(), "GET", "{code}");
    }
    for code in [307, 308] {
        let response = client
            .post(server.url(&format!("/status/{code}?location=/echo")))
            .body("kept")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-method"], "POST", "{code}");
        assert_eq!(response.text().await.unwrap(), "kept", "{code}");
    }
    // A streamed body cannot be sent again: the 307 is the answer.
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>("once")]);
    let response = client
        .post(server.url("/status/307?location=/echo"))
        .body(Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 307);
}

#[percore::test]
async fn authorization_goes_along_a_redirect_on_the_same_origin_only() {
    let a = serve(Proto::Http1);
    let b = serve(Proto::Http1);
    let client = Client::new();
    let same = client
        .get(a.url("/status/302?location=/auth"))
        .bearer_auth("secret")
        .send()
        .await
        .unwrap();
    assert_eq!(same.text().await.unwrap(), "Bearer secret");
    let elsewhere = client
        .get(a.url(&format!("/status/302?location={}", b.url("/auth"))))
        .bearer_auth("secret")
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.url().port_u16(), Some(b.addr.port()));
    assert_eq!(elsewhere.text().await.unwrap(), "none");
}

#[percore::test]
async fn a_redirect_to_another_scheme_is_an_error() {
    let server = serve(Proto::Http1);
    let client = Client::new();
    let err = client
        .get(server.url("/status/302?location=ftp://example.com/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirect, "{err}");
    assert!(err.to_string().contains("ftp"), "{err}");
}

#[percore::test]
async fn connect_timeout_gives_up_on_a_listener_that_drops_syns() {
    use percore_net::tcp::ListenOptions;
    use percore_net::TcpStream;
    // A backlog of 0 holds one connection; once it is full the kernel drops
    // further SYNs, so a connect waits a second for a retransmit.
    let listener = ListenOptions::new()
        .backlog(0)
        .bind_tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    loop {
        match TcpStream::connect_timeout(addr, Duration::from_millis(100)).await {
            Ok(stream) if queued.len() < 8 => queued.push(stream),
            Ok(_) => panic!("the backlog never filled"),
            Err(_) => break,
        }
    }
    let client = Client::builder()
        .connect_timeout(Duration::from_millis(100))
        .build();
    let err = client
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_connect() && err.is_timeout(), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    drop(listener);
}

#[percore::test]
async fn a_refused_connect_is_a_connect_error_naming_the_address() {
    let addr = {
        let listener = percore_net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let client = Client::new();
    let err = client
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[percore::test(start_paused = true)]
async fn request_timeout_ends_a_request_the_server_never_answers() {
    let server = serve(Proto::Http1);
    let client = Client::new();
    let start = Instant::now();
    let err = client
        .get(server.url("/hang"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(!err.is_connect(), "{err}");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    // The client's own timeout applies when the request sets none.
    let client = Client::builder().timeout(Duration::from_secs(60)).build();
    let start = Instant::now();
    let err = client.get(server.url("/hang")).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(start.elapsed() >= Duration::from_secs(60));
}

#[percore::test]
async fn request_timeout_covers_a_body_that_stalls() {
    let server = serve(Proto::Http1);
    let client = Client::new();
    let mut response = client
        .get(server.url("/stall"))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap();
    assert_eq!(response.chunk().await.unwrap().unwrap(), "first");
    let start = std::time::Instant::now();
    let err = response.chunk().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[percore::test]
async fn a_large_body_streams_in_chunks_every_byte_right() {
    const TOTAL: u64 = 32 << 20;
    const CHUNK: usize = 64 << 10;
    let made = Rc::new(Cell::new(0));
    let server = {
        let made = made.clone();
        serve_with(Proto::Http1, move |_request| {
            let made = made.clone();
            async move { hyper::Response::new(client_support::big(TOTAL, CHUNK, made)) }
        })
    };
    let client = Client::new();
    let mut response = client.get(server.url("/big")).send().await.unwrap();
    let mut offset = 0u64;
    let mut largest = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        largest = largest.max(chunk.len());
        for (i, &byte) in chunk.iter().enumerate() {
            assert_eq!(
                byte,
                client_support::pattern(offset + i as u64),
                "at {}",
                offset + i as u64
            );
        }
        offset += chunk.len() as u64;
    }
    assert_eq!(offset, TOTAL);
    assert!(largest <= 1 << 20, "a chunk of {largest} bytes");
    // Read to its end, the connection went back to the pool.
    client.get(server.url("/big")).send().await.unwrap();
    assert_eq!(server.accepted(), 1);
}

#[percore::test]
async fn an_unread_body_holds_the_server_back_instead_of_filling_memory() {
    // A 4 GiB body (one shared 64 KiB buffer, so cheap to send): the client
    // reads one chunk and stops; the server must come to a halt once the
    // socket buffers (32 MiB + 4 MiB at most here) and hyper's are full.
    const TOTAL: u64 = 4 << 30;
    const LIMIT: u64 = 256 << 20;
    let made = Rc::new(Cell::new(0u64));
    let server = {
        let made = made.clone();
        serve_with(Proto::Http1, move |_request| {
            let made = made.clone();
            async move {
                let chunk = Bytes::from(vec![7u8; 64 << 10]);
                let frames =
                    futures_util::stream::iter(0..TOTAL / chunk.len() as u64).map(move |_| {
                        made.set(made.get() + chunk.len() as u64);
                        Ok::<_, std::io::Error>(hyper::body::Frame::data(chunk.clone()))
                    });
                let body: client_support::Body = Box::pin(http_body_util::StreamBody::new(frames));
                hyper::Response::new(body)
            }
        })
    };
    let client = Client::new();
    let mut response = client.get(server.url("/big")).send().await.unwrap();
    assert_eq!(response.chunk().await.unwrap().unwrap()[0], 7);
    // Wait until the server stops making progress (or is past the limit).
    let start = std::time::Instant::now();
    let mut last = made.get();
    let mut still = 0;
    while still < 5 && made.get() < LIMIT && start.elapsed() < Duration::from_secs(20) {
        time::sleep(Duration::from_millis(20)).await;
        still = if made.get() == last { still + 1 } else { 0 };
        last = made.get();
    }
    let made = made.get();
    assert!(
        made < LIMIT,
        "{made} bytes made while the client read one chunk"
    );
    drop(response);
}

#[percore::test]
async fn bytes_stream_yields_the_body_in_chunks() {
    let server = serve(Proto::Http1);
    let client = Client::new();
    let response = client.get(server.url("/id/250")).send().await.unwrap();
    let chunks: Vec<Bytes> = response
        .bytes_stream()
        .map(|chunk| chunk.unwrap())
        .collect()
        .await;
    assert_eq!(chunks.concat(), client_support::id_body(250).as_bytes());
}

#[percore::test]
async fn a_pooled_connection_the_server_closed_is_replaced_without_an_error() {
    use percore_net::TcpListener;
    // A server that answers one request per connection with keep-alive
    // implied (HTTP/1.1, no `Connection: close`), then closes it: what a
    // server's idle timeout does.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Rc::new(Cell::new(0));
    let server = {
        let accepted = accepted.clone();
        percore_runtime::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                accepted.set(accepted.get() + 1);
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let (res, buf) = stream.read(Vec::with_capacity(4096)).await;
                    if res.unwrap_or(0) == 0 {
                        break;
                    }
                    head.extend_from_slice(&buf);
                }
                let (res, _) = stream
                    .write_all(&b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"[..])
                    .await;
                res.unwrap();
                drop(stream);
            }
        })
    };
    let client = Client::new();
    let url = format!("http://{addr}/");
    for i in 0..10 {
        if i % 2 == 0 {
            // Give the client's connection task time to see the close…
            time::sleep(Duration::from_millis(5)).await;
        }
        // …or not: the request may go out on the closed connection.
        let text = client.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(text, "ok", "request {i}");
    }
    assert_eq!(accepted.get(), 10, "each request on a fresh connection");
    server.abort();
}

#[percore::test]
async fn names_resolve_off_the_core() {
    let server = serve(Proto::Http1);
    let client = Client::new();
    let url = format!("http://localhost:{}/hello", server.addr.port());
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "hello");
    let err = client
        .get("http://nowhere.invalid/")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.to_string().contains("nowhere.invalid"), "{err}");
}

#[percore::test]
async fn query_strings_and_headers_reach_the_server() {
    let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
    let server = {
        let seen = seen.clone();
        serve_with(Proto::Http1, move |request| {
            let seen = seen.clone();
            async move {
                let host = request.headers()["host"].to_str().unwrap().to_owned();
                let agent = request.headers()["user-agent"].to_str().unwrap().to_owned();
                seen.borrow_mut()
                    .push((request.uri().to_string(), host, agent));
                hyper::Response::new(client_support::empty())
            }
        })
    };
    let client = Client::builder()
        .user_agent(hyper::header::HeaderValue::from_static("percore-test"))
        .build();
    client
        .get(server.url("/search?x=1"))
        .query([("q", "a b"), ("lang", "é")])
        .send()
        .await
        .unwrap();
    let seen = seen.borrow();
    assert_eq!(seen[0].0, "/search?x=1&q=a+b&lang=%C3%A9");
    assert_eq!(seen[0].1, server.addr.to_string());
    assert_eq!(seen[0].2, "percore-test");
}

#[percore::test]
async fn bad_urls_and_headers_are_errors_before_any_connect() {
    let client = Client::new();
    for (url, kind) in [
        ("not a url", ErrorKind::InvalidUrl),
        ("ftp://example.com/", ErrorKind::InvalidUrl),
        ("/relative", ErrorKind::InvalidUrl),
    ] {
        let err = client.get(url).send().await.unwrap_err();
        assert_eq!(err.kind(), kind, "{url}: {err}");
    }
    // Without TLS in the build, `https` is refused before any connect.
    #[cfg(not(feature = "tls"))]
    {
        let err = client.get("https://127.0.0.1:1/").send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }
    let err = client
        .get("http://127.0.0.1:1/")
        .header("x-bad", "line\nbreak")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Builder, "{err}");
}

#[cfg(feature = "json")]
#[percore::test]
async fn json_goes_out_and_comes_back() {
    let server = serve(Proto::Http1);
    let client = Client::new();
    let value = serde_json::json!({ "name": "percore", "cores": [0, 1] });
    let response = client
        .post(server.url("/echo"))
        .json(&value)
        .send()
        .await
        .unwrap();
    let back: serde_json::Value = response.json().await.unwrap();
    assert_eq!(back, value);
    let err = client
        .get(server.url("/hello"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
}

#[percore::test]
async fn at_the_connection_limit_a_request_waits_for_a_connection_to_free_up() {
    let server = serve(Proto::Http1);
    let client = Client::builder().max_connections_per_host(1).build();
    // A holds the only connection: its body never ends.
    let held = client.get(server.url("/stall")).send().await.unwrap();
    let waiting = {
        let (client, url) = (client.clone(), server.url("/hello"));
        percore_runtime::spawn(async move {
            client.get(url).send().await.unwrap().text().await.unwrap()
        })
    };
    time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "B went past the limit of one connection"
    );
    assert_eq!(server.accepted(), 1);
    // Dropping A's response unread closes its connection: B gets the room.
    drop(held);
    assert_eq!(waiting.await.unwrap(), "hello");
    assert_eq!(server.accepted(), 2);
    // And a connection that comes back (body read to its end) goes to the next waiter.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (client, url) = (client.clone(), server.url(&format!("/id/{i}")));
            percore_runtime::spawn(async move {
                client.get(url).send().await.unwrap().text().await.unwrap()
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), client_support::id_body(i));
    }
    assert_eq!(
        server.accepted(),
        2,
        "the ten waited for the one connection in turn"
    );
}
