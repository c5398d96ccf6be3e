//! The load generator: connections spread over percore cores, each sending a
//! request and waiting for its whole response, with latency in an HDR histogram.
//!
//! **Closed loop** (default): each connection sends its next request as soon as
//! the previous response is in, like wrk. **Open loop** (`rate`): request `k` of
//! a connection is *due* at `start + offset + k × connections / rate`, and its
//! latency counts from when it was due, as wrk2 does, so a server that stalls is
//! charged for every request it held up, not just the one in flight
//! (coordinated omission). One refinement: percore's timers tick once a
//! millisecond, so when a connection was idle and slept until its due time it
//! may wake late by up to a tick; that slack is the generator's, not the
//! server's, so latency then counts from the actual send.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use percore::net::TcpStream;
use percore::time::{sleep_until, timeout_at};
use percore::{op, BufResult, Op, Runtime};
use std::os::fd::AsRawFd;

use crate::cpu;
use crate::http::{self, Cutter};
use crate::progress::Progress;
use crate::server::Protocol;

/// Width of one bucket of [`LoadResult::timeline`].
pub const TIMELINE_STEP: Duration = Duration::from_millis(100);

/// Longest latency the histogram holds; longer ones are recorded as this.
const MAX_LATENCY: Duration = Duration::from_secs(60);

/// After the end of the run, how long requests in flight may still take.
const GRACE: Duration = Duration::from_secs(2);

/// Time limit of each connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Bound on requests per connection, whatever the duration.
const MAX_REQUESTS_PER_CONNECTION: u64 = 1 << 32;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server.
    pub target: SocketAddr,
    /// Echo or HTTP.
    pub protocol: Protocol,
    /// Bytes per echo message (ignored for HTTP).
    pub size: usize,
    /// Connections, spread evenly over the cores.
    pub connections: usize,
    /// How long to send requests.
    pub duration: Duration,
    /// Client cores (threads, one percore core each).
    pub cores: usize,
    /// Open loop at this many requests per second in total; `None`: closed loop.
    pub rate: Option<f64>,
    /// Pin client core `i` to the `first_cpu + i`-th allowed CPU.
    pub first_cpu: Option<usize>,
    /// Show a progress bar on stderr (only if it is a terminal and the run is over 1 s).
    pub progress: bool,
    /// Submit each request's write with an `io_uring_enter` of its own
    /// (`Op::submit_now`) instead of with the rest of the tick's batch, as an
    /// epoll client makes one `write(2)` per request: the server then sees
    /// requests arrive one by one rather than in bursts.
    pub send_alone: bool,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Responses received complete and correct before the end.
    pub requests: u64,
    /// Failed requests: resets, early end of stream, bad or non-2xx responses.
    pub errors: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// Connections that were open when sending started.
    pub connected: usize,
    /// The measured interval.
    pub elapsed: Duration,
    /// Latency of each response, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Responses completed in each [`TIMELINE_STEP`] from the start.
    pub timeline: Vec<u64>,
}

impl LoadResult {
    /// Responses per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at `quantile` (0..=1).
    pub fn quantile(&self, quantile: f64) -> Duration {
        Duration::from_nanos(self.latency.value_at_quantile(quantile))
    }
}

/// Runs the load described by `config` and waits for it to finish.
///
/// # Errors
///
/// The target refuses or does not answer a first connection (so nothing is
/// measured), no connection could be opened, or the client runtime cannot start.
pub fn run(config: &LoadConfig) -> io::Result<LoadResult> {
    probe(config.target)?;
    let cores = config.cores.clamp(1, config.connections.max(1));
    let runtime = Runtime::builder()
        .cores(cores)
        .stall_threshold(None)
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let bar = config
        .progress
        .then(|| Progress::start(config.duration, Some(done.clone()), "responses"))
        .flatten();
    let plan = Arc::new(config.clone());
    let outcome = runtime.run_on_all({
        let done = done.clone();
        move |core| run_core(plan.clone(), core, cores, done.clone())
    });
    drop(bar);
    let results = outcome?;
    merge(results, config.duration)
}

/// One connection made and dropped from this thread, so a wrong address gives
/// one clear error before any core starts.
fn probe(target: SocketAddr) -> io::Result<()> {
    std::net::TcpStream::connect_timeout(&target, CONNECT_TIMEOUT)
        .map(drop)
        .map_err(|err| io::Error::new(err.kind(), format!("cannot connect to {target}: {err}")))
}

/// What one core measured; `Send`, so it can come back from the core.
#[derive(Debug)]
struct CoreResult {
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    connected: usize,
    latency: Histogram<u64>,
    timeline: Vec<u64>,
}

/// An empty latency histogram: 1 ns to 60 s, 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY.as_nanos() as u64, 3)
        .expect("constant bounds within what hdrhistogram accepts")
}

fn merge(results: Vec<CoreResult>, duration: Duration) -> io::Result<LoadResult> {
    let mut total = LoadResult {
        requests: 0,
        errors: 0,
        first_error: None,
        connected: 0,
        elapsed: duration,
        latency: new_histogram(),
        timeline: Vec::new(),
    };
    for core in results {
        total.requests += core.requests;
        total.errors += core.errors;
        total.first_error = total.first_error.or(core.first_error);
        total.connected += core.connected;
        // Same bounds on every core, so adding cannot fail.
        let _ = total.latency.add(&core.latency);
        if total.timeline.len() < core.timeline.len() {
            total.timeline.resize(core.timeline.len(), 0);
        }
        for (sum, n) in total.timeline.iter_mut().zip(core.timeline) {
            *sum += n;
        }
    }
    if total.connected == 0 {
        let why = total.first_error.unwrap_or_else(|| "no connection".into());
        return Err(io::Error::new(io::ErrorKind::ConnectionRefused, why));
    }
    Ok(total)
}

/// A core's counters, shared by its connection tasks.
struct CoreState {
    latency: RefCell<Histogram<u64>>,
    timeline: RefCell<Vec<u64>>,
    requests: Cell<u64>,
    errors: Cell<u64>,
    first_error: RefCell<Option<String>>,
    connected: Cell<usize>,
    /// The progress bar's count, shared by all cores, and this core's
    /// responses not yet added to it (added 256 at a time).
    done: Arc<AtomicU64>,
    unreported: Cell<u64>,
}

impl CoreState {
    fn error(&self, what: String) {
        self.errors.set(self.errors.get() + 1);
        self.first_error.borrow_mut().get_or_insert(what);
    }

    /// Counts a response that completed at `end` for a request counted from `from`.
    fn record(&self, start: Instant, from: Instant, end: Instant) {
        let latency = end - from;
        self.latency
            .borrow_mut()
            .saturating_record(latency.as_nanos() as u64);
        let step = ((end - start).as_nanos() / TIMELINE_STEP.as_nanos()) as usize;
        if let Some(slot) = self.timeline.borrow_mut().get_mut(step) {
            *slot += 1;
        }
        self.requests.set(self.requests.get() + 1);
        self.unreported.set(self.unreported.get() + 1);
        if self.unreported.get() == 256 {
            self.report_progress();
        }
    }

    fn report_progress(&self) {
        self.done
            .fetch_add(self.unreported.take(), Ordering::Relaxed);
    }
}

/// When one connection sends, and what.
struct Plan {
    config: Arc<LoadConfig>,
    request: Rc<[u8]>,
    start: Instant,
    deadline: Instant,
    /// Open loop: time between two requests of this connection, and this
    /// connection's offset in the schedule.
    schedule: Option<(Duration, Duration)>,
}

async fn run_core(
    config: Arc<LoadConfig>,
    core: usize,
    cores: usize,
    done: Arc<AtomicU64>,
) -> CoreResult {
    if let Some(cpu) = config.first_cpu.and_then(|first| cpu::cpu_for(first, core)) {
        // Best effort: an unpinned client still measures correctly.
        let _ = cpu::pin_to(cpu);
    }
    let share = config.connections / cores + usize::from(core < config.connections % cores);
    let steps = (config.duration.as_nanos() / TIMELINE_STEP.as_nanos()) as usize + 1;
    let state = Rc::new(CoreState {
        latency: RefCell::new(new_histogram()),
        timeline: RefCell::new(vec![0; steps]),
        requests: Cell::new(0),
        errors: Cell::new(0),
        first_error: RefCell::new(None),
        connected: Cell::new(0),
        done,
        unreported: Cell::new(0),
    });
    // Connect everything first, so the measured interval is all sending.
    let streams = connect_all(config.target, share, &state).await;
    let request: Rc<[u8]> = match config.protocol {
        Protocol::Echo => vec![b'x'; config.size.max(1)].into(),
        Protocol::Http => http::request(&config.target.to_string()).into(),
    };
    let start = Instant::now();
    let deadline = start + config.duration;
    let interval = config
        .rate
        .map(|rate| Duration::from_secs_f64((config.connections as f64 / rate).min(3600.0)));
    let tasks: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, stream)| {
            let index = core + i * cores;
            let plan = Plan {
                config: config.clone(),
                request: request.clone(),
                start,
                deadline,
                schedule: interval.map(|every| {
                    (
                        every,
                        every.mul_f64(index as f64 / config.connections as f64),
                    )
                }),
            };
            let state = state.clone();
            percore::spawn(async move {
                let _ =
                    timeout_at((deadline + GRACE).into(), connection(stream, &plan, &state)).await;
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    state.report_progress();
    CoreResult {
        requests: state.requests.get(),
        errors: state.errors.get(),
        first_error: state.first_error.take(),
        connected: state.connected.get(),
        latency: state.latency.replace(new_histogram()),
        timeline: state.timeline.take(),
    }
}

/// Opens `count` connections at once; failures are counted as errors.
async fn connect_all(target: SocketAddr, count: usize, state: &CoreState) -> Vec<TcpStream> {
    let connects: Vec<_> = (0..count)
        .map(|_| percore::spawn(connect(target)))
        .collect();
    let mut streams = Vec::with_capacity(count);
    for connect in connects {
        match connect.await {
            Ok(Ok(stream)) => streams.push(stream),
            Ok(Err(err)) => state.error(err.to_string()),
            Err(err) => state.error(format!("connect task failed: {err}")),
        }
    }
    state.connected.set(streams.len());
    streams
}

async fn connect(target: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(target, CONNECT_TIMEOUT).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends requests on one connection until the deadline; reconnects after an error.
async fn connection(mut stream: TcpStream, plan: &Plan, state: &CoreState) {
    let mut exchange = Exchange::new(plan);
    for k in 0..MAX_REQUESTS_PER_CONNECTION {
        let Some(from) = wait_turn(plan, k).await else {
            break;
        };
        match exchange.run(&stream).await {
            Ok(()) => {
                let end = Instant::now();
                if end > plan.deadline {
                    break;
                }
                state.record(plan.start, from, end);
            }
            Err(err) => {
                state.error(err.to_string());
                if Instant::now() >= plan.deadline {
                    break;
                }
                match connect(plan.config.target).await {
                    Ok(fresh) => {
                        stream = fresh;
                        exchange = Exchange::new(plan);
                    }
                    Err(err) => {
                        state.error(err.to_string());
                        break;
                    }
                }
            }
        }
    }
}

/// Waits until request `k` may go (at once in a closed loop; at its due time
/// in an open loop) and returns when its latency counts from: when it was due,
/// or when it was sent if the connection was idle and only the timer tick made
/// it late. `None` once the run is over.
async fn wait_turn(plan: &Plan, k: u64) -> Option<Instant> {
    let now = Instant::now();
    let from = match plan.schedule {
        None => now,
        Some((every, offset)) => {
            let due = plan.start + offset + every.mul_f64(k as f64);
            if due >= plan.deadline {
                return None;
            }
            if now < due {
                sleep_until(due.into()).await;
                Instant::now()
            } else {
                due
            }
        }
    };
    (from < plan.deadline).then_some(from)
}

/// One request and its response, with buffers reused from one to the next.
struct Exchange {
    protocol: Protocol,
    send_alone: bool,
    request: Rc<[u8]>,
    send: Vec<u8>,
    recv: Vec<u8>,
    cutter: Cutter,
}

impl Exchange {
    fn new(plan: &Plan) -> Exchange {
        Exchange {
            protocol: plan.config.protocol,
            send_alone: plan.config.send_alone,
            request: plan.request.clone(),
            send: plan.request.to_vec(),
            // Large echoes come back in several reads rather than one huge buffer.
            recv: Vec::with_capacity(plan.request.len().clamp(4096, 64 * 1024)),
            cutter: Cutter::new(true),
        }
    }

    async fn run(&mut self, stream: &TcpStream) -> io::Result<()> {
        let send = std::mem::take(&mut self.send);
        let (res, send) = if self.send_alone {
            write_all_alone(stream, send).await
        } else {
            stream.write_all(send).await
        };
        self.send = send;
        res?;
        match self.protocol {
            Protocol::Echo => self.echo_reply(stream).await,
            Protocol::Http => self.http_reply(stream).await,
        }
    }

    async fn echo_reply(&mut self, stream: &TcpStream) -> io::Result<()> {
        let mut got = 0;
        while got < self.request.len() {
            let mut recv = std::mem::take(&mut self.recv);
            recv.clear();
            let (res, back) = stream.read(recv).await;
            self.recv = back;
            match res? {
                0 => return Err(eof()),
                n => got += n,
            }
        }
        if got > self.request.len() {
            return Err(io::Error::other(
                "echo: more bytes came back than were sent",
            ));
        }
        Ok(())
    }

    async fn http_reply(&mut self, stream: &TcpStream) -> io::Result<()> {
        loop {
            match self.cutter.next_message() {
                Ok(Some(head)) if (200..300).contains(&head.status) => return Ok(()),
                Ok(Some(head)) => {
                    return Err(io::Error::other(format!("HTTP status {}", head.status)))
                }
                Ok(None) => {}
                Err(why) => return Err(io::Error::other(format!("bad HTTP response: {why:?}"))),
            }
            self.cutter.prepare_read();
            let buf = std::mem::take(&mut self.cutter.buf);
            let (res, back) = stream.read(buf).await;
            self.cutter.buf = back;
            if res? == 0 {
                return Err(eof());
            }
        }
    }
}

/// `write_all` with the first write submitted by an `io_uring_enter` of its
/// own (a partial write, rare for a request this small, finishes as usual).
async fn write_all_alone(stream: &TcpStream, buf: Vec<u8>) -> BufResult<(), Vec<u8>> {
    // `u64::MAX`: no offset, a plain `write(2)` on the socket.
    let (res, buf) = Op::new(op::Write::new(stream.as_raw_fd(), buf, u64::MAX))
        .submit_now()
        .await;
    match res {
        Ok(n) if n == buf.len() => (Ok(()), buf),
        Ok(0) => (Err(io::ErrorKind::WriteZero.into()), buf),
        Ok(n) => {
            let (res, _) = stream.write_all(buf[n..].to_vec()).await;
            (res, buf)
        }
        Err(err) => (Err(err), buf),
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection",
    )
}
