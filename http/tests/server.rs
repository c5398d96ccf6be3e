//! The server serving an axum `Router` over HTTP/1.1 and h2c: hyper's
//! clients over percore, many connections at once, curl from outside, and
//! what HTTP/1.1 asks of a server (chunked both ways, `Expect:
//! 100-continue`, `HEAD`, pipelining).

mod server_util;

use std::time::Duration;

use percore_http::server::Server;
use server_util::*;

#[test]
fn an_axum_router_answers_over_http1_and_h2c() {
    let server = start(Server::builder());
    let addr = server.addr;
    percore::run(async move {
        let mut one = h1(addr).await;
        let mut two = h2(addr).await;
        for round in 0..3 {
            let (status, body) = text(one.send_request(get_req("/")).await.unwrap()).await;
            assert_eq!(
                (status, body.as_str()),
                (200, "Hello, world!"),
                "h1 {round}"
            );
            let response = two.send_request(get_req("/")).await.unwrap();
            assert_eq!(response.version(), hyper::Version::HTTP_2);
            let (status, body) = text(response).await;
            assert_eq!(
                (status, body.as_str()),
                (200, "Hello, world!"),
                "h2 {round}"
            );

            let echo = format!("echo {round}").repeat(1000);
            let (status, body) = text(
                one.send_request(post_req("/echo", echo.clone()))
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!((status, body == echo), (200, true), "h1 echo {round}");
            let (status, body) = text(
                two.send_request(post_req("/echo", echo.clone()))
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!((status, body == echo), (200, true), "h2 echo {round}");

            let whole: String = (0..CHUNKS).map(chunk).collect();
            let response = one.send_request(get_req("/chunked")).await.unwrap();
            assert_eq!(
                response.headers()["transfer-encoding"],
                "chunked",
                "a streamed body goes out chunked on HTTP/1.1"
            );
            assert_eq!(text(response).await, (200, whole.clone()));
            assert_eq!(
                text(two.send_request(get_req("/chunked")).await.unwrap()).await,
                (200, whole)
            );
            let (status, _) = text(one.send_request(get_req("/nowhere")).await.unwrap()).await;
            assert_eq!(status, 404);
        }
    })
    .unwrap();
    server.stop().unwrap();
}

#[test]
fn a_thousand_requests_over_a_hundred_connections_each_get_their_own_body() {
    const CONNECTIONS: usize = 100;
    const PER_CONNECTION: usize = 10;
    let server = start(Server::builder());
    let addr = server.addr;
    let answered = percore::run(async move {
        let clients = (0..CONNECTIONS).map(|c| async move {
            // Half HTTP/1.1, half h2c; each sends its requests at once (h2)
            // or back to back (h1), every body its own.
            let mut answered = 0;
            if c % 2 == 0 {
                let mut sender = h1(addr).await;
                for r in 0..PER_CONNECTION {
                    let body = format!("connection {c} request {r} ").repeat(c + r + 1);
                    let response = sender.send_request(post_req("/echo", body.clone())).await;
                    assert_eq!(text(response.unwrap()).await, (200, body));
                    answered += 1;
                }
            } else {
                let sender = h2(addr).await;
                let requests = (0..PER_CONNECTION).map(|r| {
                    let mut sender = sender.clone();
                    async move {
                        let body = format!("connection {c} request {r} ").repeat(c + r + 1);
                        let response = sender.send_request(post_req("/echo", body.clone())).await;
                        assert_eq!(text(response.unwrap()).await, (200, body));
                    }
                });
                futures_util::future::join_all(requests).await;
                answered += PER_CONNECTION;
            }
            answered
        });
        let all = futures_util::future::join_all(clients);
        percore::time::timeout(Duration::from_secs(120), all)
            .await
            .expect("1,000 requests answered within 2 minutes")
            .into_iter()
            .sum::<usize>()
    })
    .unwrap();
    assert_eq!(answered, CONNECTIONS * PER_CONNECTION);
    server.stop().unwrap();
}

/// Runs curl with `args`; `None` (and a loud message) if curl is missing.
fn curl(args: &[&str]) -> Option<std::process::Output> {
    match std::process::Command::new("curl").args(args).output() {
        Ok(output) => Some(output),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "\n!!!!!!!! SKIPPED: curl is not installed; the curl tests did not run \
                 (.ci/run installs it) !!!!!!!!\n"
            );
            None
        }
        Err(err) => panic!("running curl: {err}"),
    }
}

#[test]
fn curl_from_outside_over_http1_and_h2c() {
    let server = start(Server::builder());
    let url = format!("http://{}/", server.addr);
    let echo_url = format!("http://{}/echo", server.addr);
    let body = "x".repeat(1024 * 1024 + 5);
    let body_file = std::env::temp_dir().join(format!("percore-http-curl-{}", std::process::id()));
    std::fs::write(&body_file, &body).unwrap();
    let data = format!("@{}", body_file.display());
    for (flag, version) in [("--http1.1", "1.1"), ("--http2-prior-knowledge", "2")] {
        let Some(out) = curl(&[
            "-sS",
            "--max-time",
            "30",
            flag,
            "-w",
            "\n%{http_code} %{http_version}",
            &url,
        ]) else {
            return;
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "curl {flag}: {out:?}");
        assert_eq!(
            stdout,
            format!("Hello, world!\n200 {version}"),
            "curl {flag}"
        );
        // A body sent chunked, and `Expect: 100-continue` (curl sends it for
        // bodies over 1 MiB on HTTP/1.1).
        let Some(out) = curl(&[
            "-sS",
            "--max-time",
            "30",
            flag,
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &data,
            "-w",
            "%{http_code}",
            &echo_url,
        ]) else {
            return;
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "curl {flag} echo: {out:?}");
        assert!(
            stdout.len() == body.len() + 3 && stdout.ends_with("200"),
            "curl {flag} echo: {} bytes, ends {:?}",
            stdout.len(),
            &stdout[stdout.len().saturating_sub(10)..]
        );
    }
    let _ = std::fs::remove_file(&body_file);
    server.stop().unwrap();
}

#[test]
fn chunked_request_bodies_expect_continue_and_head() {
    let server = start(Server::builder());
    let addr = server.addr;

    // A chunked request body, echoed.
    let (got, _) = raw(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    assert!(text.ends_with("hello world"), "{text:?}");

    // Expect: 100-continue: the server asks for the body, then answers.
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\
              Connection: close\r\n\r\n",
        )
        .unwrap();
    let mut first = [0u8; 25];
    std::io::Read::read_exact(&mut stream, &mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"ping").unwrap();
    let (got, end) = read_all(&mut stream);
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("ping"),
        "{text:?}"
    );
    assert_eq!(end, End::Closed);

    // HEAD: the GET's headers, no body.
    let (got, _) = raw(
        addr,
        b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    assert!(text.contains("content-length: 13\r\n"), "{text:?}");
    assert!(text.ends_with("\r\n\r\n"), "no body after HEAD: {text:?}");

    // HTTP/1.0 without keep-alive: answered and closed.
    let (got, end) = raw(addr, b"GET / HTTP/1.0\r\n\r\n");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.0 200") && text.ends_with("Hello, world!"),
        "{text:?}"
    );
    assert_eq!(end, End::Closed);
    server.stop().unwrap();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = start(Server::builder());
    let mut requests = Vec::new();
    for i in 0..50 {
        requests.extend_from_slice(
            format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nreq {i:>4}")
                .as_bytes(),
        );
    }
    requests.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (got, end) = raw(server.addr, &requests);
    let text = String::from_utf8_lossy(&got);
    let mut at = 0;
    for i in 0..50 {
        let want = format!("req {i:>4}");
        let found = text[at..]
            .find(&want)
            .unwrap_or_else(|| panic!("response {i} in order"));
        at += found + want.len();
    }
    assert_eq!(count(&got, b"HTTP/1.1 200"), 51);
    assert_eq!(end, End::Closed);
    server.stop().unwrap();
}

#[test]
fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    use std::io::Write;
    let server = start(Server::builder());
    for _ in 0..20 {
        let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let (got, end) = read_all(&mut stream);
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.starts_with("HTTP/1.1 200") && text.ends_with("Hello, world!"),
            "{text:?}"
        );
        assert_eq!(end, End::Closed);
    }
    server.stop().unwrap();
}
