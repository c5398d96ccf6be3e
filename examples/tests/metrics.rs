//! The `metrics` example's endpoint, in-process on two cores: `GET /metrics`
//! is Prometheus text (each line a comment or `name{core="N"} value`), lists
//! every core, and its counters rise with traffic; other paths are 404; the
//! server stops when its shutdown begins.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use percore::net::TcpListener;
use percore::shutdown::Shutdown;
use percore::Runtime;
use percore_examples::metrics::{bind, serve};

/// Far longer than anything here takes on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// Sends one request and reads the whole answer (the server closes).
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    (head.to_string(), body.to_string())
}

/// Parses Prometheus text as the test requires it: every line a `# HELP` or
/// `# TYPE` comment or `name{core="N"} value`. Samples by (name, core).
fn parse(text: &str) -> BTreeMap<(String, usize), u64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let (name, label) = series
            .split_once("{core=\"")
            .unwrap_or_else(|| panic!("{line:?}"));
        let core = label
            .strip_suffix("\"}")
            .and_then(|core| core.parse().ok())
            .unwrap_or_else(|| panic!("{line:?}"));
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line:?}"
        );
        let value = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
        assert!(
            samples.insert((name.to_string(), core), value).is_none(),
            "one sample per series: {line:?}"
        );
    }
    samples
}

fn total(samples: &BTreeMap<(String, usize), u64>, name: &str) -> u64 {
    samples
        .iter()
        .filter(|((metric, _), _)| metric == name)
        .map(|(_, value)| value)
        .sum()
}

#[test]
fn metrics_endpoint_serves_every_core_in_prometheus_text() {
    let cores = 2;
    let runtime = Runtime::builder().cores(cores).build().expect("runtime");
    let (addr, listeners) = bind(SocketAddr::from(([127, 0, 0, 1], 0)), cores).expect("bind");
    let shutdown = Shutdown::new();
    let servers: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(core, listener)| {
            let shutdown = shutdown.clone();
            runtime
                .spawn_on(core, move || {
                    serve(TcpListener::from_std(listener), shutdown)
                })
                .expect("spawn the server")
        })
        .collect();

    let (head, body) = get(addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let first = parse(&body);
    let listed: BTreeSet<usize> = first.keys().map(|(_, core)| *core).collect();
    assert_eq!(listed, (0..cores).collect(), "every core: {body}");
    assert!(
        body.contains("# TYPE percore_polls_total counter\n"),
        "{body}"
    );
    assert!(body.contains("# TYPE percore_tasks gauge\n"), "{body}");

    // Traffic: every request is polls and I/O on the core that takes it.
    for _ in 0..20 {
        let (head, _) = get(addr, "/nothing");
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    }
    // The core that answers has its own figures exact; the other's come
    // from its last park: scrape again until they show (bounded).
    let deadline = Instant::now() + PATIENCE;
    let later = loop {
        let later = parse(&get(addr, "/metrics").1);
        let rose =
            total(&later, "percore_polls_total") >= total(&first, "percore_polls_total") + 20;
        if rose || Instant::now() > deadline {
            break later;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    for counter in [
        "percore_polls_total",
        "percore_sqes_total",
        "percore_spawned_total",
    ] {
        assert!(
            total(&later, counter) > total(&first, counter),
            "{counter} rose: {} then {}",
            total(&first, counter),
            total(&later, counter)
        );
    }
    // A thread that holds the runtime sees the same cores.
    assert_eq!(runtime.stats().len(), cores);

    shutdown.begin();
    drop(servers); // detached: they return on their own
                   // The listeners are closed once the servers return.
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "the listeners never closed");
        std::thread::sleep(Duration::from_millis(10));
    }
}
