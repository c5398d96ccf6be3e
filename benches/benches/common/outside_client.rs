//! The outside echo (and HTTP) client: closed loop on one tokio current-thread
//! runtime, one spawned task per connection, each writing its request,
//! reading the whole response back, and counting the round trip, until the
//! run's end. Nothing of percore's runtime is involved (the `Cutter` that
//! splits HTTP responses is plain code), so what a server costs under it does
//! not depend on how percore's own load generator batches its I/O.
//!
//! Arguments as `percore-bench net` (`echo|http --target IP:PORT
//! --connections N --size B --duration S`); the caller pins the process. It
//! prints one JSON line: `requests`, `errors`, `first_error`, `connected`,
//! `latency_ns` (`[[ns, count], …]`, the recorded HDR buckets), `timeline`
//! (responses per 100 ms). `percore_bench::outside` reads it.
//!
//! Shared by the `net_compare` bench (`peer-client`) and the `peer_server`
//! example (`client`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use percore_bench::cli::{self, Command};
use percore_bench::http::{self, Cutter};
use percore_bench::load::TIMELINE_STEP;
use percore_bench::server::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};

/// Time limit of each connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// After the end of the run, how long a request in flight may still take.
const GRACE: Duration = Duration::from_secs(2);

/// The client command; `args` excludes the program name and the mode word.
pub fn client_main(args: Vec<String>) -> ExitCode {
    let mut words = vec!["net".to_owned()];
    words.extend(args);
    let options = match cli::parse(words) {
        Ok(Command::Net(options)) if options.target.is_some() => options,
        Ok(_) => {
            eprintln!("outside client: expected `echo|http --target IP:PORT [--connections N] [--size B] [--duration S]`");
            return ExitCode::from(2);
        }
        Err(err) => {
            eprintln!("outside client: {err}");
            return ExitCode::from(2);
        }
    };
    let Some(target) = options.target else {
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("outside client: tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let plan = Plan {
        target,
        protocol: options.protocol,
        request: match options.protocol {
            Protocol::Echo => vec![b'x'; options.size.max(1)].into(),
            Protocol::Http => http::request(&target.to_string()).into(),
        },
        duration: options.duration,
    };
    let total = runtime.block_on(run(plan, options.connections));
    if total.connected == 0 {
        eprintln!(
            "outside client: no connection to {target}: {}",
            total.first_error.as_deref().unwrap_or("?")
        );
        return ExitCode::FAILURE;
    }
    println!("{}", total.json());
    ExitCode::SUCCESS
}

/// What every connection sends.
struct Plan {
    target: SocketAddr,
    protocol: Protocol,
    request: Arc<[u8]>,
    duration: Duration,
}

/// What one connection (or all of them, merged) measured.
struct Tally {
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    connected: u64,
    latency: Histogram<u64>,
    timeline: Vec<u64>,
}

impl Tally {
    fn new(steps: usize) -> Tally {
        Tally {
            requests: 0,
            errors: 0,
            first_error: None,
            connected: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .expect("constant bounds within what hdrhistogram accepts"),
            timeline: vec![0; steps],
        }
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.connected += other.connected;
        // Same bounds everywhere, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for (sum, n) in self.timeline.iter_mut().zip(other.timeline) {
            *sum += n;
        }
    }

    fn json(&self) -> String {
        let latency: Vec<[u64; 2]> = self
            .latency
            .iter_recorded()
            .map(|v| [v.value_iterated_to(), v.count_at_value()])
            .collect();
        serde_json::json!({
            "requests": self.requests,
            "errors": self.errors,
            "first_error": self.first_error,
            "connected": self.connected,
            "latency_ns": latency,
            "timeline": self.timeline,
        })
        .to_string()
    }
}

fn steps(duration: Duration) -> usize {
    (duration.as_nanos() / TIMELINE_STEP.as_nanos()) as usize + 1
}

async fn run(plan: Plan, connections: usize) -> Tally {
    let mut total = Tally::new(steps(plan.duration));
    // Connect everything first, so the measured interval is all sending.
    let mut streams = Vec::with_capacity(connections);
    for _ in 0..connections {
        match timeout(CONNECT_TIMEOUT, TcpStream::connect(plan.target)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                streams.push(stream);
            }
            Ok(Err(err)) => total.error(format!("connect: {err}")),
            Err(_) => total.error("connect: timed out".into()),
        }
    }
    total.connected = streams.len() as u64;
    let plan = Arc::new(plan);
    let start = Instant::now();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|stream| tokio::spawn(connection(stream, plan.clone(), start)))
        .collect();
    for task in tasks {
        match task.await {
            Ok(tally) => total.add(tally),
            Err(err) => total.error(format!("connection task: {err}")),
        }
    }
    total
}

/// Round trips on one connection until the end of the run; stops at the
/// first error.
async fn connection(mut stream: TcpStream, plan: Arc<Plan>, start: Instant) -> Tally {
    let mut tally = Tally::new(steps(plan.duration));
    let deadline = start + plan.duration;
    let mut recv = vec![0u8; plan.request.len().clamp(4096, 64 * 1024)];
    let mut cutter = Cutter::new(true);
    loop {
        let sent = Instant::now();
        if sent >= deadline {
            break;
        }
        let exchange = round_trip(&mut stream, &plan, &mut recv, &mut cutter);
        match timeout_at(deadline + GRACE, exchange).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tally.error(err);
                break;
            }
            Err(_) => break,
        }
        let end = Instant::now();
        if end > deadline {
            break;
        }
        tally
            .latency
            .saturating_record((end - sent).as_nanos() as u64);
        let step = ((end - start).as_nanos() / TIMELINE_STEP.as_nanos()) as usize;
        if let Some(slot) = tally.timeline.get_mut(step) {
            *slot += 1;
        }
        tally.requests += 1;
    }
    tally
}

/// One request written and its whole response read.
async fn round_trip(
    stream: &mut TcpStream,
    plan: &Plan,
    recv: &mut [u8],
    cutter: &mut Cutter,
) -> Result<(), String> {
    stream
        .write_all(&plan.request)
        .await
        .map_err(|err| format!("write: {err}"))?;
    match plan.protocol {
        Protocol::Echo => {
            let mut got = 0;
            while got < plan.request.len() {
                match stream.read(recv).await {
                    Ok(0) => return Err("the server closed the connection".into()),
                    Ok(n) => got += n,
                    Err(err) => return Err(format!("read: {err}")),
                }
            }
            if got > plan.request.len() {
                return Err("echo: more bytes came back than were sent".into());
            }
            Ok(())
        }
        Protocol::Http => loop {
            match cutter.next_message() {
                Ok(Some(head)) if (200..300).contains(&head.status) => return Ok(()),
                Ok(Some(head)) => return Err(format!("HTTP status {}", head.status)),
                Ok(None) => {}
                Err(why) => return Err(format!("bad HTTP response: {why:?}")),
            }
            cutter.prepare_read();
            match stream.read_buf(&mut cutter.buf).await {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(_) => {}
                Err(err) => return Err(format!("read: {err}")),
            }
        },
    }
}
