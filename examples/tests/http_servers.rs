//! The `http`, `hyper` and `axum_json` example binaries as a user runs them:
//! each starts on two cores, prints its "listening on" line, answers the
//! percore-http client over HTTP/1.1 and HTTP/2 (h2c) and curl from
//! outside, and exits 0 on SIGTERM.

mod util;

use std::net::SocketAddr;

use futures_util::stream;
use hyper::{StatusCode, Version};
use percore::http::client::{Body, Client};
use percore_examples::axum_json::Todo;
use serde_json::{json, Value};
use util::{curl, start, Running};

const ARGS: [&str; 4] = ["--addr", "127.0.0.1:0", "--cores", "2"];

/// An HTTP/1.1 client and an h2c one.
fn clients() -> [(Client, Version); 2] {
    [
        (Client::new(), Version::HTTP_11),
        (
            Client::builder().http2_prior_knowledge().build(),
            Version::HTTP_2,
        ),
    ]
}

/// Stops `server` and checks it exits 0 with its last line.
fn stop(server: Running, name: &str) {
    server.sigterm();
    let (exited_0, out) = server.wait();
    assert!(exited_0, "{name}: stdout {out:?}");
    assert!(out.contains(&format!("{name}: shut down")), "{out:?}");
}

/// curl's output for `args` (HTTP/1.1, then h2c), with the response head.
fn curl_both(addr: SocketAddr, path: &str, args: &[&str]) -> Option<[String; 2]> {
    let url = format!("http://{addr}{path}");
    let mut outputs = [String::new(), String::new()];
    for (output, protocol) in outputs
        .iter_mut()
        .zip(["--http1.1", "--http2-prior-knowledge"])
    {
        let mut all = vec!["--include", protocol];
        all.extend_from_slice(args);
        all.push(&url);
        let run = curl(&all)?;
        assert!(run.status.success(), "curl {all:?}: {run:?}");
        *output = String::from_utf8_lossy(&run.stdout).into_owned();
    }
    Some(outputs)
}

#[test]
fn the_http_example_says_hello_over_http1_and_h2c_and_to_curl() {
    let server = start("http", &ARGS);
    let base = format!("http://{}", server.addr);
    percore::run(async {
        for (client, version) in clients() {
            for path in ["/", "/any/path?x=1"] {
                let response = client.get(format!("{base}{path}")).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                assert_eq!(response.version(), version);
                assert_eq!(response.headers()["server"], "percore");
                assert_eq!(response.headers()["content-type"], "text/plain");
                assert_eq!(response.text().await.unwrap(), "Hello, world!");
            }
            // HEAD: the head a GET gets, no body (on HTTP/2 too).
            let head = client.head(&base).send().await.unwrap();
            assert_eq!(head.status(), StatusCode::OK);
            assert_eq!(head.headers()["content-length"], "13");
            assert_eq!(head.text().await.unwrap(), "", "HEAD has no body");
            // A chunked request body (the old hand-written server said 501).
            let chunks = stream::iter(["one ", "two ", "three"].map(Ok::<_, std::io::Error>));
            let posted = client
                .post(&base)
                .body(Body::wrap_stream(chunks))
                .send()
                .await
                .unwrap();
            assert_eq!(posted.status(), StatusCode::OK, "{version:?}");
            assert_eq!(posted.text().await.unwrap(), "Hello, world!");
        }
    })
    .unwrap();
    if let Some([h1, h2]) = curl_both(server.addr, "/", &[]) {
        assert!(h1.starts_with("HTTP/1.1 200 OK\r\n"), "{h1}");
        assert!(h2.starts_with("HTTP/2 200"), "{h2}");
        for output in [h1, h2] {
            assert!(output.ends_with("\r\n\r\nHello, world!"), "{output}");
        }
    }
    stop(server, "http");
}

#[test]
fn the_hyper_example_routes_echoes_and_counts_per_core() {
    let server = start("hyper", &ARGS);
    let base = format!("http://{}", server.addr);
    percore::run(async {
        // 1 MiB of a pattern, echoed back intact on either protocol.
        let body: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
        for (client, version) in clients() {
            let hello = client.get(&base).send().await.unwrap();
            assert_eq!(hello.version(), version);
            assert_eq!(hello.text().await.unwrap(), "Hello, world!");
            let echoed = client
                .post(format!("{base}/echo"))
                .header("content-type", "application/x-test")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(echoed.status(), StatusCode::OK);
            assert_eq!(echoed.headers()["content-type"], "application/x-test");
            assert!(echoed.bytes().await.unwrap() == body, "{version:?}: echo");
            let core = client.get(format!("{base}/core")).send().await.unwrap();
            let text = core.text().await.unwrap();
            let (which, count) = text
                .strip_prefix("core ")
                .and_then(|rest| rest.trim_end().strip_suffix(" requests"))
                .and_then(|rest| rest.split_once(": "))
                .unwrap_or_else(|| panic!("{text:?}"));
            assert!(["0", "1"].contains(&which), "{text:?}");
            assert!(count.parse::<u64>().unwrap() >= 1, "{text:?}");
            let wrong = client.delete(format!("{base}/echo")).send().await.unwrap();
            assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(wrong.headers()["allow"], "POST");
            let missing = client.get(format!("{base}/nope")).send().await.unwrap();
            assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        }
    })
    .unwrap();
    if let Some(outputs) = curl_both(server.addr, "/echo", &["--data-binary", "hello, echo"]) {
        for output in outputs {
            assert!(output.ends_with("\r\n\r\nhello, echo"), "{output}");
        }
    }
    stop(server, "hyper");
}

#[test]
fn the_axum_json_example_keeps_a_todo_list_across_connections_and_cores() {
    let server = start("axum_json", &ARGS);
    let base = format!("http://{}", server.addr);
    percore::run(async {
        let [(h1, _), (h2, _)] = clients();
        let about: Value = h1.get(&base).send().await.unwrap().json().await.unwrap();
        assert_eq!(about["name"], "todos");
        assert!(about["core"] == 0 || about["core"] == 1, "{about}");

        let created = h1
            .post(format!("{base}/todos"))
            .json(&json!({ "title": "buy milk" }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        assert_eq!(created.headers()["location"], "/todos/1");
        let milk: Todo = created.json().await.unwrap();
        assert_eq!(
            milk,
            Todo {
                id: 1,
                title: "buy milk".into(),
                done: false
            }
        );
        // Over HTTP/2, on a connection that may be on the other core.
        let changed: Todo = h2
            .patch(format!("{base}/todos/1"))
            .json(&json!({ "done": true }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(changed.done);
        let fresh = Client::new();
        let listed: Vec<Todo> = fresh
            .get(format!("{base}/todos"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed, std::slice::from_ref(&changed));
        let read: Todo = h2
            .get(format!("{base}/todos/1"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(read, changed);

        // Errors are JSON with a 4xx status.
        for (method, path, body, status, says) in [
            ("POST", "/todos", "{\"title\": ", 400, "parse"),
            (
                "POST",
                "/todos",
                "{\"title\": \"\"}",
                422,
                "a title is 1 to 200 bytes",
            ),
            ("POST", "/todos", "{\"name\": \"x\"}", 422, "unknown field"),
            ("GET", "/todos/abc", "", 400, "parse"),
            ("GET", "/todos/99", "", 404, "no to-do 99"),
            ("PATCH", "/todos/99", "{\"done\": true}", 404, "no to-do 99"),
            ("GET", "/nothing/here", "", 404, "no such route"),
        ] {
            let mut request = h1
                .request(method.parse().unwrap(), format!("{base}{path}"))
                .header("content-type", "application/json");
            if !body.is_empty() {
                request = request.body(body);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), status, "{method} {path} {body}");
            let error: Value = response.json().await.unwrap();
            let text = error["error"].as_str().unwrap_or_default().to_lowercase();
            assert!(text.contains(says), "{method} {path} {body}: {error}");
        }
        // Without a JSON content type, axum refuses the body (415).
        let plain = h1
            .post(format!("{base}/todos"))
            .body("{\"title\": \"x\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

        let deleted = h2.delete(format!("{base}/todos/1")).send().await.unwrap();
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        let gone = h1.get(format!("{base}/todos/1")).send().await.unwrap();
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    })
    .unwrap();
    let json_body = ["-H", "content-type: application/json", "-d"];
    let mut args = json_body.to_vec();
    args.push("{\"title\":\"from curl\"}");
    if let Some(outputs) = curl_both(server.addr, "/todos", &args) {
        for (output, id) in outputs.iter().zip([2, 3]) {
            let expected = format!("{{\"id\":{id},\"title\":\"from curl\",\"done\":false}}");
            assert!(output.contains(" 201"), "{output}");
            assert!(output.ends_with(&expected), "{output}");
        }
    }
    stop(server, "axum_json");
}
