//! The failure classes of cancellation, at scale (`#[ignore]`d: `ci/stress.sh`
//! runs them with `cargo test --release -p percore-net --test scale_cancel --
//! --ignored`).
//!
//! Accepts, connects, reads and writes polled once and dropped ten thousand
//! times each — before submission, in flight, or completed in the kernel but
//! never taken; accepts cancelled while std clients connect; multishot receive
//! streams dropped mid-stream; a runtime dropped with ten thousand ops pending.
//! Each test checks that nothing leaks (fds, op-table slots, ring buffers,
//! destructors), nothing hangs, no byte is duplicated, reordered or
//! corrupted, and prints its figures for the stress log.

mod util;

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use percore_net::tcp::ListenOptions;
use percore_net::{BufRing, TcpListener, TcpStream};
use percore_runtime::op::{PollAdd, Read};
use percore_runtime::time::{sleep, timeout};
use percore_runtime::{spawn, yield_now, Builder, Op};

/// The tests count this process's fds: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One core with no stall reports (the stress script loads every CPU) and no
/// injected faults whatever `PERCORE_FAULTS` says: the tests count exact outcomes.
fn runtime() -> Builder {
    Builder::new()
        .stall_threshold(None)
        .faults("none")
        .expect("`none` is a fault spec")
}

/// A listener on 127.0.0.1 with a free port and a deep backlog.
fn listen() -> TcpListener {
    ListenOptions::new()
        .backlog(4096)
        .bind_tcp(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind 127.0.0.1:0")
}

/// Connects within 1 s (the listener is local: anything slower is a hang).
async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(addr, Duration::from_secs(1)).await
}

/// A xorshift generator with a constant seed: the same rounds every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Polls `future` once with the calling task's waker: its SQE is pushed (or,
/// on the epoll backend, the op may finish at once).
async fn poll_once<F: Future>(mut future: Pin<&mut F>) -> Poll<F::Output> {
    poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}

/// Lets the core take one I/O turn (at most 256 yields): `yield_now` alone
/// only lets the other ready tasks run, and a core whose tasks stay ready may
/// poll them for a whole batch (128 polls) before it reaps completions or,
/// on the epoll backend, waits for readiness at all.
async fn turn() {
    let before = percore_runtime::stats();
    for _ in 0..256 {
        yield_now().await;
        let now = percore_runtime::stats();
        if now.enters != before.enters || now.cqes != before.cqes {
            return;
        }
    }
}

/// `n` I/O turns of the core: each submits what was pushed and reaps or
/// runs what is ready.
async fn turns(n: u64) {
    for _ in 0..n {
        turn().await;
    }
}

/// Waits until no op is in flight on this core (at most 5 s); how many still are.
async fn settle() -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while percore_runtime::stats().in_flight != 0 && Instant::now() < deadline {
        sleep(Duration::from_millis(1)).await;
    }
    percore_runtime::stats().in_flight
}

/// The open fd count once it is back to `want` (at most 2 s), else the last count.
async fn fds_back_to(want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = util::open_fds();
        if now == want || Instant::now() >= deadline {
            return now;
        }
        sleep(Duration::from_millis(1)).await;
    }
}

/// As [`fds_back_to`], outside a runtime.
fn fds_back_to_blocking(want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = util::open_fds();
        if now == want || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn delta(now: usize, before: usize) -> isize {
    now as isize - before as isize
}

/// Failures kept for the final assertion: every one counted, the first 20 described.
#[derive(Default)]
struct Failures {
    count: usize,
    first: Vec<String>,
}

impl Failures {
    fn add(&mut self, what: String) {
        self.count += 1;
        if self.first.len() < 20 {
            self.first.push(what);
        }
    }

    fn assert_none(&self, test: &str) {
        assert!(
            self.count == 0,
            "{test}: {} failure(s); the first:\n  {}",
            self.count,
            self.first.join("\n  ")
        );
    }
}

/// What `stream` reads within 1 s when its peer should be closed: `Ok` for end
/// of stream or a reset; `Err` for data, another error, or a timeout (the
/// peer's fd is still open: leaked, or a hang).
async fn sees_close(stream: &TcpStream) -> Result<&'static str, String> {
    match timeout(Duration::from_secs(1), stream.read(Vec::with_capacity(64))).await {
        Ok((Ok(0), _)) => Ok("eof"),
        Ok((Err(err), _)) if err.kind() == io::ErrorKind::ConnectionReset => Ok("reset"),
        Ok((Ok(n), buf)) => Err(format!("read {n} bytes {buf:?} instead of a close")),
        Ok((Err(err), _)) => Err(format!("read failed: {err}")),
        Err(_) => Err("no end of stream or reset within 1 s: the peer's fd is still open".into()),
    }
}

/// Reads until `mark` (1 s per read, at most 1 MiB): the bytes, `mark` last;
/// `Err` on a timeout, end of stream, an error, or bytes after `mark`.
async fn read_until(stream: &TcpStream, mark: u8) -> Result<Vec<u8>, String> {
    let mut got = Vec::new();
    while got.len() < 1 << 20 {
        match timeout(
            Duration::from_secs(1),
            stream.read(Vec::with_capacity(64 * 1024)),
        )
        .await
        {
            Err(_) => {
                return Err(format!(
                    "hang: no mark within 1 s after {} bytes",
                    got.len()
                ))
            }
            Ok((Err(err), _)) => {
                return Err(format!("read failed after {} bytes: {err}", got.len()))
            }
            Ok((Ok(0), _)) => return Err(format!("end of stream after {} bytes", got.len())),
            Ok((Ok(_), buf)) => {
                got.extend_from_slice(&buf);
                if let Some(at) = got.iter().position(|&b| b == mark) {
                    if at + 1 != got.len() {
                        return Err(format!("{} bytes after the mark", got.len() - at - 1));
                    }
                    return Ok(got);
                }
            }
        }
    }
    Err(format!("no mark in {} bytes", got.len()))
}

/// `future`, given at most 5 s: no await of these tests waits unbounded.
async fn bounded<F: Future>(what: &str, future: F) -> Result<F::Output, String> {
    timeout(Duration::from_secs(5), future)
        .await
        .map_err(|_| format!("HANG: {what} took more than 5 s"))
}

/// Ends each exchange of the read and write rounds; no other byte equals it.
const MARK: u8 = 0xff;
/// The bytes of the dropped writes.
const WRITTEN: u8 = 0xa5;
const ROUNDS: usize = 10_000;

#[derive(Default, Debug)]
struct DropFigures {
    /// Clients whose connection a dropped accept took (its fd closed by the runtime).
    accepts_taken_then_dropped: usize,
    /// Of those, accepts that were ready at their first poll (the stream was dropped).
    accepts_ready_at_first_poll: usize,
    /// Clients left in the backlog (the accept was cancelled before it took one).
    accepts_cancelled: usize,
    /// Dropped connects whose connection reached the listener.
    connects_completed_then_dropped: usize,
    connects_ready_at_first_poll: usize,
    /// Dropped connects that never reached the listener.
    connects_cancelled: usize,
    /// Of those, connects to a listener whose backlog is full (SYN dropped:
    /// in flight for a second at least).
    connects_to_a_full_backlog: usize,
    /// Dropped reads that took the byte (lost with the future).
    reads_completed_then_dropped: usize,
    reads_ready_at_first_poll: usize,
    /// Dropped reads that left the byte in the socket.
    reads_cancelled: usize,
    /// Dropped writes whose 16 bytes reached the peer.
    writes_completed_then_dropped: usize,
    writes_ready_at_first_poll: usize,
    /// Dropped writes none of whose bytes reached the peer (in flight on a full
    /// socket buffer).
    writes_cancelled: usize,
    writes_partial: usize,
    in_flight_after: usize,
    fd_delta_inside: isize,
}

/// One accept polled once and dropped: after a client queued, while one
/// connects, or with nobody connecting (cancelled in flight, the client comes
/// after). A sentinel client then shows where the backlog ends.
async fn accept_round(
    listener: &TcpListener,
    rng: &mut Rng,
    round: usize,
    f: &mut DropFigures,
    failures: &mut Failures,
) {
    let addr = listener.local_addr().expect("local_addr");
    let mode = rng.below(3);
    let mut accept = Box::pin(listener.accept());
    let mut client = None;
    if mode == 0 {
        client = Some(connect(addr).await);
    }
    let polled = poll_once(accept.as_mut()).await;
    if mode == 1 {
        client = Some(connect(addr).await);
    }
    turns(rng.below(3) + u64::from(mode == 2)).await;
    drop(accept);
    if mode == 2 {
        client = Some(connect(addr).await);
    }
    if let Poll::Ready(res) = polled {
        f.accepts_ready_at_first_poll += 1;
        if let Err(err) = res {
            failures.add(format!(
                "round {round}: an accept ready at once failed: {err}"
            ));
        }
        // The stream (if any) drops here: the client sees end of stream.
    }
    let client = match client.expect("connected above") {
        Ok(client) => client,
        Err(err) => return failures.add(format!("round {round}: client connect: {err}")),
    };
    let sentinel = match connect(addr).await {
        Ok(sentinel) => sentinel,
        Err(err) => return failures.add(format!("round {round}: sentinel connect: {err}")),
    };
    let client_addr = client.local_addr().expect("local_addr");
    let sentinel_addr = sentinel.local_addr().expect("local_addr");
    let mut client_accepted = false;
    let mut sentinel_accepted = false;
    for _ in 0..3 {
        match timeout(Duration::from_secs(1), listener.accept()).await {
            Ok(Ok((_stream, peer))) if peer == sentinel_addr => {
                sentinel_accepted = true;
                break;
            }
            Ok(Ok((_stream, peer))) if peer == client_addr => client_accepted = true,
            Ok(Ok((_stream, peer))) => {
                failures.add(format!("round {round}: accepted an unknown peer {peer}"))
            }
            Ok(Err(err)) => return failures.add(format!("round {round}: accept: {err}")),
            Err(_) => break,
        }
    }
    if !sentinel_accepted {
        return failures.add(format!(
            "round {round}: HANG: the sentinel client was not accepted within 1 s"
        ));
    }
    if client_accepted {
        f.accepts_cancelled += 1;
        return;
    }
    // The dropped accept took the client: the runtime must have closed that fd.
    match sees_close(&client).await {
        Ok(_) => f.accepts_taken_then_dropped += 1,
        Err(err) => failures.add(format!(
            "round {round}: LEAK/HANG: a client taken by a dropped accept: {err}"
        )),
    }
}

/// One connect polled once and dropped; then a sentinel shows whether it
/// reached the listener, and if it did, that its socket was closed. One round
/// in four connects to `full` instead, whose backlog is full: the SYN is
/// dropped and the connect is cancelled in flight.
async fn connect_round(
    (listener, full): (&TcpListener, SocketAddr),
    rng: &mut Rng,
    round: usize,
    f: &mut DropFigures,
    failures: &mut Failures,
) {
    let addr = listener.local_addr().expect("local_addr");
    let to_full = rng.below(4) == 0;
    let mut connecting = Box::pin(TcpStream::connect(if to_full { full } else { addr }));
    let polled = poll_once(connecting.as_mut()).await;
    turns(rng.below(3)).await;
    drop(connecting);
    if let Poll::Ready(res) = polled {
        f.connects_ready_at_first_poll += 1;
        match res {
            Err(err) => failures.add(format!(
                "round {round}: a connect ready at once failed: {err}"
            )),
            Ok(_) if to_full => failures.add(format!(
                "round {round}: a connect to a full backlog was ready at once"
            )),
            Ok(_) => {}
        }
    }
    if to_full {
        f.connects_cancelled += 1;
        f.connects_to_a_full_backlog += 1;
        return;
    }
    let sentinel = match connect(addr).await {
        Ok(sentinel) => sentinel,
        Err(err) => return failures.add(format!("round {round}: sentinel connect: {err}")),
    };
    let sentinel_addr = sentinel.local_addr().expect("local_addr");
    let mut others = 0;
    for _ in 0..3 {
        match timeout(Duration::from_secs(1), listener.accept()).await {
            Ok(Ok((_stream, peer))) if peer == sentinel_addr => {
                match others {
                    0 => f.connects_cancelled += 1,
                    1 => f.connects_completed_then_dropped += 1,
                    n => failures.add(format!(
                        "round {round}: {n} connections from one dropped connect"
                    )),
                }
                return;
            }
            Ok(Ok((stream, peer))) => {
                others += 1;
                // The dropped connect's socket must be closed.
                if let Err(err) = sees_close(&stream).await {
                    failures.add(format!(
                        "round {round}: LEAK/HANG: a dropped connect's socket (from {peer}): {err}"
                    ));
                }
            }
            Ok(Err(err)) => return failures.add(format!("round {round}: accept: {err}")),
            Err(_) => break,
        }
    }
    failures.add(format!(
        "round {round}: HANG: the sentinel client was not accepted within 1 s"
    ));
}

/// A read polled once is dropped — after the peer wrote a byte, while it
/// writes it, or before it does (cancelled in flight) — then the peer writes
/// the mark: the server reads `[byte, mark]` (the read was cancelled) or
/// `[mark]` (the dropped read took the byte), nothing else.
async fn read_round(
    (client, server): (&TcpStream, &TcpStream),
    rng: &mut Rng,
    round: usize,
    f: &mut DropFigures,
    failures: &mut Failures,
) {
    let tag = (round % 250) as u8;
    let mode = rng.below(3);
    let write_tag = || async {
        match bounded("a one-byte write", client.write_all(vec![tag])).await {
            Ok((res, _)) => res.map_err(|err| err.to_string()),
            Err(err) => Err(err),
        }
    };
    let mut wrote = Ok(());
    if mode == 0 {
        wrote = write_tag().await;
    }
    let mut read = Box::pin(server.read(Vec::with_capacity(64)));
    let polled = poll_once(read.as_mut()).await;
    if mode == 1 {
        wrote = write_tag().await;
    }
    turns(rng.below(3) + u64::from(mode == 2)).await;
    drop(read);
    if mode == 2 {
        wrote = write_tag().await;
    }
    if let Err(err) = wrote {
        return failures.add(format!("round {round}: client write: {err}"));
    }
    let taken_at_first_poll = match polled {
        Poll::Ready((Ok(1), buf)) if buf == [tag] => true,
        Poll::Ready((res, buf)) => {
            return failures.add(format!(
                "round {round}: a read ready at once gave {res:?} {buf:?}, wanted [{tag}]"
            ))
        }
        Poll::Pending => false,
    };
    match bounded("a one-byte write", client.write_all(vec![MARK])).await {
        Ok((Ok(()), _)) => {}
        Ok((Err(err), _)) => return failures.add(format!("round {round}: client write: {err}")),
        Err(err) => return failures.add(format!("round {round}: {err}")),
    }
    match read_until(server, MARK).await {
        Ok(got) if got == [MARK] && taken_at_first_poll => f.reads_ready_at_first_poll += 1,
        Ok(got) if got == [MARK] => f.reads_completed_then_dropped += 1,
        Ok(got) if got == [tag, MARK] && !taken_at_first_poll => f.reads_cancelled += 1,
        Ok(got) => failures.add(format!(
            "round {round}: read {got:?} after a dropped read of [{tag}] \
             (taken at first poll: {taken_at_first_poll})"
        )),
        Err(err) => failures.add(format!("round {round}: {err}")),
    }
}

/// Bytes that fill the pair's socket buffers (16 KiB each way, set below).
const FILL: usize = 256 * 1024;
/// The bytes that fill them.
const FILLER: u8 = 0x5a;

/// A 16-byte write polled once is dropped, then the mark is written: the peer
/// reads all or none of the 16 bytes (or, rarely, a part), then the mark.
/// One round in four first fills the socket buffers, so the write waits in
/// flight when it is dropped.
async fn write_round(
    (client, server): (&TcpStream, &TcpStream),
    rng: &mut Rng,
    round: usize,
    f: &mut DropFigures,
    failures: &mut Failures,
) {
    if rng.below(4) == 0 {
        // Polled once and dropped a turn later: io_uring sends what fits and
        // completes; the epoll backend sends what fits and waits for room for
        // the rest, until the drop. Either way the buffers are full.
        let mut fill = Box::pin(server.write(vec![FILLER; FILL]));
        if let Poll::Ready((res, _)) = poll_once(fill.as_mut()).await {
            if !matches!(res, Ok(n) if n < FILL) {
                return failures.add(format!(
                    "round {round}: filling the socket buffers took {res:?} of {FILL} bytes"
                ));
            }
        }
        turn().await;
    }
    let mut write = Box::pin(server.write(vec![WRITTEN; 16]));
    let polled = poll_once(write.as_mut()).await;
    turns(rng.below(3)).await;
    drop(write);
    let sent_at_first_poll = match polled {
        Poll::Ready((Ok(n), _)) => Some(n),
        Poll::Ready((Err(err), _)) => {
            return failures.add(format!(
                "round {round}: a write ready at once failed: {err}"
            ))
        }
        Poll::Pending => None,
    };
    // The mark may wait for the peer to read: write it while reading.
    let both = futures_util::future::join(server.write_all(vec![MARK]), read_until(client, MARK));
    let (wrote, got) = match bounded("writing and reading the mark", both).await {
        Ok(both) => both,
        Err(err) => return failures.add(format!("round {round}: {err}")),
    };
    if let (Err(err), _) = wrote {
        return failures.add(format!("round {round}: server write: {err}"));
    }
    let got = match got {
        Ok(got) => got,
        Err(err) => return failures.add(format!("round {round}: {err}")),
    };
    // Filler first, then what the dropped write sent, then the mark.
    let filled = got.iter().take_while(|&&b| b == FILLER).count();
    let sent = &got[filled..got.len() - 1];
    if sent.len() > 16 || sent.iter().any(|&b| b != WRITTEN) {
        return failures.add(format!(
            "round {round}: after {filled} filler bytes and a dropped write of 16 x {WRITTEN}, \
             the peer read {:?} then the mark",
            &sent[..sent.len().min(40)]
        ));
    }
    if let Some(n) = sent_at_first_poll {
        f.writes_ready_at_first_poll += 1;
        if n != sent.len() {
            failures.add(format!(
                "round {round}: the write said {n} bytes; the peer read {}",
                sent.len()
            ));
        }
        return;
    }
    match sent.len() {
        0 => f.writes_cancelled += 1,
        16 => f.writes_completed_then_dropped += 1,
        _ => f.writes_partial += 1,
    }
}

/// A connected pair whose client receives into 16 KiB and whose server sends
/// from 16 KiB, so [`FILL`] bytes fill them; no Nagle delay for one-byte
/// exchanges.
async fn small_buffered_pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    use percore_net::socket2::{Domain, Socket, Type};
    let addr = listener.local_addr().unwrap();
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.set_tcp_nodelay(true).unwrap();
    // Loopback: the blocking connect returns at once, queued in the backlog.
    socket.connect(&addr.into()).unwrap();
    let client = TcpStream::from_std(socket.into());
    let (server, _) = listener.accept().await.unwrap();
    server.set_nodelay(true).unwrap();
    percore_net::socket2::SockRef::from(&server)
        .set_send_buffer_size(16 * 1024)
        .unwrap();
    (client, server)
}

#[test]
#[ignore = "scale: ci/stress.sh"]
fn ten_thousand_completed_then_dropped_accepts_connects_reads_writes() {
    let _serial = serial();
    let fds_before = util::open_fds();
    let started = Instant::now();
    let (f, failures) = runtime()
        .block_on(async {
            let accepts = listen();
            let connects = listen();
            // A backlog of 1 holds two connections: then SYNs are dropped.
            let full = ListenOptions::new()
                .backlog(1)
                .bind_tcp(SocketAddr::from(([127, 0, 0, 1], 0)))
                .unwrap();
            let full_addr = full.local_addr().unwrap();
            let _fillers = [
                connect(full_addr).await.unwrap(),
                connect(full_addr).await.unwrap(),
            ];
            let pair_listener = listen();
            let (client, server) = small_buffered_pair(&pair_listener).await;
            drop(pair_listener);
            let fds_inside = util::open_fds();
            let mut rng = Rng::new(0x5ca1e);
            let mut f = DropFigures::default();
            let mut failures = Failures::default();
            for round in 0..ROUNDS {
                accept_round(&accepts, &mut rng, round, &mut f, &mut failures).await;
                let to = (&connects, full_addr);
                connect_round(to, &mut rng, round, &mut f, &mut failures).await;
                let pair = (&client, &server);
                read_round(pair, &mut rng, round, &mut f, &mut failures).await;
                write_round(pair, &mut rng, round, &mut f, &mut failures).await;
                if failures.count > 5 {
                    break; // enough to report; do not spend a minute on timeouts
                }
            }
            f.in_flight_after = settle().await;
            f.fd_delta_inside = delta(fds_back_to(fds_inside).await, fds_inside);
            (f, failures)
        })
        .expect("the runtime starts");
    let elapsed = started.elapsed();
    let fd_delta = delta(fds_back_to_blocking(fds_before), fds_before);
    println!(
        "scale: ten_thousand_completed_then_dropped_accepts_connects_reads_writes: {ROUNDS} rounds in \
         {elapsed:.2?}; fd delta {fd_delta} (inside the runtime {}), in flight after {}; {f:?}",
        f.fd_delta_inside, f.in_flight_after
    );
    failures.assert_none("dropped accepts, connects, reads, writes");
    assert_eq!(
        f.accepts_taken_then_dropped + f.accepts_cancelled,
        ROUNDS,
        "every accept round classified"
    );
    assert_eq!(
        f.connects_completed_then_dropped + f.connects_cancelled,
        ROUNDS,
        "every connect round classified"
    );
    assert_eq!(
        f.reads_completed_then_dropped + f.reads_ready_at_first_poll + f.reads_cancelled,
        ROUNDS,
        "every read round classified"
    );
    assert_eq!(
        f.writes_completed_then_dropped
            + f.writes_ready_at_first_poll
            + f.writes_cancelled
            + f.writes_partial,
        ROUNDS,
        "every write round classified"
    );
    // Each op must have been dropped both ways, or the rounds exercised only
    // one of the two classes.
    let both = [
        ("accepts", f.accepts_taken_then_dropped, f.accepts_cancelled),
        (
            "connects",
            f.connects_completed_then_dropped + f.connects_ready_at_first_poll,
            f.connects_to_a_full_backlog,
        ),
        (
            "reads",
            f.reads_completed_then_dropped + f.reads_ready_at_first_poll,
            f.reads_cancelled,
        ),
        (
            "writes",
            f.writes_completed_then_dropped + f.writes_ready_at_first_poll,
            f.writes_cancelled + f.writes_partial,
        ),
    ];
    for (op, completed, cancelled) in both {
        assert!(
            completed > 0 && cancelled > 0,
            "{op}: {completed} dropped after completing, {cancelled} cancelled: both must happen"
        );
    }
    assert_eq!(
        f.in_flight_after, 0,
        "LEAK: op-table slots still in flight after the rounds settled"
    );
    assert_eq!(
        f.fd_delta_inside, 0,
        "LEAK: fds open inside the runtime after the rounds settled"
    );
    assert_eq!(fd_delta, 0, "LEAK: fds open after the runtime ended");
}

/// What the std client thread saw, one connection at a time.
#[derive(Default, Debug)]
struct ClientTally {
    connections: usize,
    served: usize,
    eof: usize,
    reset: usize,
    hangs: usize,
    connect_errors: usize,
    other_errors: usize,
    first_errors: Vec<String>,
    /// The connections that hung: local port, when the connect returned.
    hung: Vec<(u16, Instant)>,
}

/// Connects sequentially until `stop` (at most `limit` connections, 50 s):
/// each connection must read the server's byte, or end of stream or a reset,
/// within 1 s.
fn clients(addr: SocketAddr, stop: &AtomicBool, limit: usize) -> ClientTally {
    use std::io::Read as _;
    let mut tally = ClientTally::default();
    let deadline = Instant::now() + Duration::from_secs(50);
    fn note(tally: &mut ClientTally, what: String) {
        if tally.first_errors.len() < 10 {
            tally.first_errors.push(what);
        }
    }
    while !stop.load(Ordering::SeqCst) && tally.connections < limit && Instant::now() < deadline {
        tally.connections += 1;
        let mut stream = match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(stream) => stream,
            Err(err) => {
                tally.connect_errors += 1;
                note(&mut tally, format!("connect: {err}"));
                continue;
            }
        };
        let connected_at = Instant::now();
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .expect("set_read_timeout");
        let mut byte = [0u8; 2];
        match stream.read(&mut byte) {
            Ok(1) if byte[0] == 1 => tally.served += 1,
            Ok(0) => tally.eof += 1,
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => tally.reset += 1,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                tally.hangs += 1;
                let port = stream.local_addr().map_or(0, |addr| addr.port());
                tally.hung.push((port, connected_at));
            }
            other => {
                tally.other_errors += 1;
                let what = format!("connection {}: {other:?}", tally.connections);
                note(&mut tally, what);
            }
        }
    }
    tally
}

#[derive(Default, Debug)]
struct ServerTally {
    rounds: usize,
    served: usize,
    /// By how the dropped accept met its client: waited for a queued client
    /// first / client racing a pending accept / a few turns / dropped unsubmitted.
    modes: [usize; 4],
    ready_at_first_poll: usize,
    accept_timeouts: usize,
    wait_timeouts: usize,
    errors: usize,
    in_flight_after: usize,
    /// The longest round, and its mode.
    slowest_round: (Duration, usize),
    /// Connections accepted properly: peer port, when.
    accepted: Vec<(u16, Instant)>,
}

impl ServerTally {
    /// Where a client that hung stood on the server's side.
    fn explain(&self, (port, connected_at): (u16, Instant)) -> String {
        let accepted = self
            .accepted
            .iter()
            .rev()
            .find(|&&(peer, at)| peer == port && at >= connected_at);
        match accepted {
            Some((_, at)) => format!(
                "client port {port}: accepted and served {:?} after its connect returned",
                at.duration_since(connected_at)
            ),
            None => format!(
                "client port {port}: never accepted properly (taken by a dropped accept whose fd \
                 was not closed, or lost in the backlog)"
            ),
        }
    }
}

#[test]
#[ignore = "scale: ci/stress.sh"]
fn ten_thousand_cancelled_accepts_racing_connecting_clients() {
    let _serial = serial();
    let fds_before = util::open_fds();
    let started = Instant::now();
    let listener = util::std_listener();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let client_done = Arc::new(AtomicBool::new(false));
    let client = {
        let (stop, client_done) = (Arc::clone(&stop), Arc::clone(&client_done));
        std::thread::spawn(move || {
            let tally = clients(addr, &stop, 4 * ROUNDS);
            client_done.store(true, Ordering::SeqCst);
            tally
        })
    };
    let server = runtime()
        .block_on(async {
            let listener = TcpListener::from_std(listener);
            let mut rng = Rng::new(0xacce97);
            let mut t = ServerTally::default();
            let serve = |stream: TcpStream| async move {
                match bounded("a one-byte write", stream.write_all(vec![1u8])).await {
                    Ok((res, _)) => res.map_err(|err| err.to_string()),
                    Err(err) => Err(err),
                }
            };
            for _ in 0..ROUNDS {
                if client_done.load(Ordering::SeqCst) {
                    break; // the client gave up: its tally says why
                }
                let round_started = Instant::now();
                let mode = rng.below(4) as usize;
                t.modes[mode] += 1;
                if mode == 0 {
                    // A client waits in the backlog: the accept completes at once.
                    let queued = Op::new(PollAdd::new(listener.as_raw_fd(), libc::POLLIN as u32));
                    if timeout(Duration::from_secs(2), queued).await.is_err() {
                        t.wait_timeouts += 1;
                    }
                }
                let mut accept = Box::pin(listener.accept());
                let polled = poll_once(accept.as_mut()).await;
                match mode {
                    0 => turns(1 + rng.below(2)).await,
                    1 => turns(rng.below(10)).await, // the client connects meanwhile
                    2 => turns(rng.below(3)).await,
                    _ => {} // dropped before the core submitted it
                }
                drop(accept);
                if let Poll::Ready(res) = polled {
                    t.ready_at_first_poll += 1;
                    drop(res); // the client sees end of stream
                }
                match timeout(Duration::from_secs(2), listener.accept()).await {
                    Ok(Ok((stream, peer))) => {
                        t.accepted.push((peer.port(), Instant::now()));
                        match serve(stream).await {
                            Ok(()) => t.served += 1,
                            Err(_) => t.errors += 1,
                        }
                    }
                    Ok(Err(_)) => t.errors += 1,
                    Err(_) => t.accept_timeouts += 1,
                }
                t.rounds += 1;
                let took = round_started.elapsed();
                if took > t.slowest_round.0 {
                    t.slowest_round = (took, mode);
                }
            }
            // Serve the client's last connection until it stops (at most 5 s).
            stop.store(true, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !client_done.load(Ordering::SeqCst) && Instant::now() < deadline {
                if let Ok(Ok((stream, peer))) =
                    timeout(Duration::from_millis(10), listener.accept()).await
                {
                    t.accepted.push((peer.port(), Instant::now()));
                    match serve(stream).await {
                        Ok(()) => t.served += 1,
                        Err(_) => t.errors += 1,
                    }
                }
            }
            t.in_flight_after = settle().await;
            t
        })
        .expect("the runtime starts");
    let client = client.join().expect("the client thread");
    let elapsed = started.elapsed();
    let fd_delta = delta(fds_back_to_blocking(fds_before), fds_before);
    let hung: Vec<String> = client
        .hung
        .iter()
        .map(|&hung| server.explain(hung))
        .collect();
    println!(
        "scale: ten_thousand_cancelled_accepts_racing_connecting_clients: {} rounds in {elapsed:.2?}; \
         {} connections: {} served, {} closed by a dropped accept ({} eof, {} reset), {} hangs \
         {hung:?}, {} connect errors, {} other {:?}; fd delta {fd_delta}; server: {} served, \
         rounds by mode {:?}, {} accepts ready at first poll, slowest round {:.2?} (mode {}), \
         {} accept timeouts, {} backlog-wait timeouts, {} errors, {} in flight after",
        server.rounds,
        client.connections,
        client.served,
        client.eof + client.reset,
        client.eof,
        client.reset,
        client.hangs,
        client.connect_errors,
        client.other_errors,
        client.first_errors,
        server.served,
        server.modes,
        server.ready_at_first_poll,
        server.slowest_round.0,
        server.slowest_round.1,
        server.accept_timeouts,
        server.wait_timeouts,
        server.errors,
        server.in_flight_after,
    );
    assert_eq!(
        client.hangs, 0,
        "HANG: clients neither served nor closed within 1 s: {hung:?}"
    );
    assert_eq!(client.connect_errors, 0, "clients failed to connect");
    assert_eq!(client.other_errors, 0, "clients saw unexpected results");
    assert_eq!(server.rounds, ROUNDS, "the server ran every round");
    assert_eq!(
        (server.accept_timeouts, server.wait_timeouts, server.errors),
        (0, 0, 0),
        "HANG: the server waited 2 s for a client (accept, queued), or failed to serve"
    );
    assert_eq!(
        client.served, server.served,
        "every byte the server wrote reached its client"
    );
    assert_eq!(
        client.connections,
        client.served + client.eof + client.reset,
        "every connection served or closed"
    );
    assert!(
        client.eof + client.reset > 0,
        "no dropped accept ever took a connection: the race was never run"
    );
    assert_eq!(
        server.in_flight_after, 0,
        "LEAK: op-table slots in flight after the rounds"
    );
    assert_eq!(fd_delta, 0, "LEAK: fds open after the runtime ended");
}

#[derive(Default, Debug)]
struct StreamFigures {
    rounds: usize,
    items_read: usize,
    bytes_read: usize,
    /// Buffers held as items when a stream was dropped, at most.
    most_held_at_drop: usize,
    /// Streams dropped with completions the stream had not yielded: buffers
    /// the kernel filled that only the drop (or the orphaned op) gives back.
    /// `BufRing::available` does not count these as out until they are
    /// taken, so the ring check at the end is what proves they came back.
    dropped_with_unyielded: usize,
    unyielded_completions: u64,
    /// Rounds that sent more bytes right after the stream was dropped.
    late_writes: usize,
    /// Buffers still out once a round's ops settled (must stay 0).
    most_out_after_settle: usize,
    available_at_end: usize,
    capacity: usize,
    /// Ring buffers a last stream could hold at once at the end (must be all:
    /// a buffer the kernel picked and nobody gave back would be missing).
    held_at_once_at_end: usize,
    in_flight_after: usize,
    fd_delta_inside: isize,
}

/// Byte `i` of every test connection's stream.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// Whether the kernel still has every buffer of `ring`: a client thread
/// streams 1 MiB and a receive stream holds what it yields until it holds
/// `capacity` ring buffers at once. A buffer lost on the kernel's side (picked
/// for a completion nobody took) makes the receive fail with `ENOBUFS` first.
/// How many ring buffers were held at once, and the items that were not.
async fn ring_buffers_held_at_once(
    listener: &TcpListener,
    ring: &BufRing,
) -> Result<usize, String> {
    use std::io::Write as _;
    let addr = listener.local_addr().unwrap();
    let writer = std::thread::spawn(move || {
        let mut client = std::net::TcpStream::connect(addr)?;
        client.set_write_timeout(Some(Duration::from_secs(5)))?;
        // Fails with a reset once the server drops the connection unread.
        client.write_all(&vec![7u8; 1 << 20])
    });
    let server = match timeout(Duration::from_secs(2), listener.accept()).await {
        Ok(Ok((server, _))) => server,
        other => return Err(format!("accept: {other:?}")),
    };
    let mut stream = server.recv_stream(ring);
    let mut held = Vec::new();
    let mut from_ring = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    let result = loop {
        if from_ring == ring.capacity() {
            break Ok(from_ring);
        }
        if Instant::now() >= deadline {
            break Err(format!(
                "only {from_ring} of {} ring buffers held at once after 5 s",
                ring.capacity()
            ));
        }
        match timeout(Duration::from_secs(2), stream.next()).await {
            Ok(Some(Ok(buf))) if buf.is_from_ring() => {
                from_ring += 1;
                held.push(buf);
            }
            Ok(Some(Ok(buf))) => {
                break Err(format!(
                    "a receive fell back to a plain buffer ({} bytes) with {from_ring} of {} \
                     ring buffers held",
                    buf.len(),
                    ring.capacity()
                ))
            }
            other => {
                break Err(format!(
                    "{other:?} with {from_ring} of {} ring buffers held",
                    ring.capacity()
                ))
            }
        }
    };
    drop((held, stream, server));
    let _ = writer.join();
    result
}

#[test]
#[ignore = "scale: ci/stress.sh"]
fn a_thousand_multishot_receive_streams_dropped_mid_stream_return_every_buffer() {
    receive_streams_dropped_mid_stream(
        "a_thousand_multishot_receive_streams_dropped_mid_stream_return_every_buffer",
        "none",
        1_000,
    );
}

/// As above with completions held back (the fault layer's `delay`): a
/// completion held across the drop reaches the dropped stream's orphan, the
/// one place that can give its buffer back. Without held completions that
/// path is rare here: a core reaps every completion of a turn before its
/// tasks run.
#[test]
#[ignore = "scale: ci/stress.sh"]
fn a_thousand_receive_streams_dropped_with_completions_held_return_every_buffer() {
    receive_streams_dropped_mid_stream(
        "a_thousand_receive_streams_dropped_with_completions_held_return_every_buffer",
        "seed=7,delay=0.5/3",
        1_000,
    );
}

/// `streams` multishot receive streams, each dropped mid-stream at a random
/// moment, on one core with the fault spec `faults`; every ring buffer must
/// come back.
fn receive_streams_dropped_mid_stream(name: &str, faults: &str, streams: usize) {
    use std::io::Write as _;
    const CHUNK: usize = 8 * 1024;
    let _serial = serial();
    let fds_before = util::open_fds();
    let started = Instant::now();
    let (f, failures) = runtime()
        .faults(faults)
        .expect("a valid fault spec")
        .block_on(async {
            let ring = BufRing::new(64, 4096).expect("a buffer ring");
            let listener = listen();
            let addr = listener.local_addr().unwrap();
            let data: Vec<u8> = (0..2 * CHUNK).map(pattern).collect();
            let fds_inside = util::open_fds();
            let mut rng = Rng::new(0xb0f);
            let mut f = StreamFigures {
                capacity: ring.capacity(),
                ..StreamFigures::default()
            };
            let mut failures = Failures::default();
            for round in 0..streams {
                // Loopback: the std connect returns at once, queued in the backlog.
                let mut client = std::net::TcpStream::connect(addr).expect("connect");
                client.set_nodelay(true).expect("nodelay");
                let server = match timeout(Duration::from_secs(1), listener.accept()).await {
                    Ok(Ok((server, _))) => server,
                    other => {
                        failures.add(format!("round {round}: accept: {other:?}"));
                        continue;
                    }
                };
                // Fits in the socket buffers: the std write does not block.
                client.write_all(&data[..CHUNK]).expect("client write");
                // Nothing else completes during the round: the CQEs reaped are
                // the stream's.
                let cqes_before = percore_runtime::stats().cqes;
                let mut stream = server.recv_stream(&ring);
                let mut items = Vec::new();
                let mut offset = 0;
                for _ in 0..1 + rng.below(2) {
                    match timeout(Duration::from_secs(1), stream.next()).await {
                        Ok(Some(Ok(buf))) => {
                            if buf.is_empty() || buf[..] != data[offset..offset + buf.len()] {
                                failures.add(format!(
                                    "round {round}: {} bytes at {offset} do not match",
                                    buf.len()
                                ));
                            }
                            offset += buf.len();
                            f.items_read += 1;
                            f.bytes_read += buf.len();
                            items.push(buf);
                        }
                        other => {
                            failures.add(format!("round {round}: next item: {other:?}"));
                            break;
                        }
                    }
                    if offset == CHUNK {
                        break;
                    }
                }
                // More data arrives while the multishot receive is armed.
                client.write_all(&data[CHUNK..]).expect("client write");
                turns(rng.below(3)).await;
                let completions = percore_runtime::stats().cqes - cqes_before;
                let unyielded = completions.saturating_sub(items.len() as u64);
                f.unyielded_completions += unyielded;
                f.dropped_with_unyielded += usize::from(unyielded > 0);
                f.most_held_at_drop = f.most_held_at_drop.max(items.len());
                // Half the rounds send more right after the drop, before the
                // loop turns: the kernel may fill buffers for the dropped
                // (orphaned) receive, and only its orphan can give them back.
                let late = rng.below(2) == 0;
                let mut send_late = |client: &mut std::net::TcpStream| {
                    if late {
                        client.write_all(&data[..512]).expect("client write");
                        f.late_writes += 1;
                    }
                };
                match rng.below(3) {
                    0 => {
                        drop(items);
                        drop(stream);
                        send_late(&mut client);
                    }
                    1 => {
                        drop(stream);
                        send_late(&mut client);
                        drop(items);
                    }
                    _ => {
                        // The items outlive the stream (and its op) by a turn.
                        drop(stream);
                        send_late(&mut client);
                        turn().await;
                        drop(items);
                    }
                }
                if rng.below(2) == 0 {
                    drop(server);
                    drop(client);
                } else {
                    drop(client);
                    drop(server);
                }
                if settle().await != 0 {
                    failures.add(format!("round {round}: LEAK: ops in flight after 5 s"));
                }
                let out = ring.capacity() - ring.available();
                f.most_out_after_settle = f.most_out_after_settle.max(out);
                if out != 0 {
                    failures.add(format!(
                        "round {round}: LEAK: {out} ring buffers not back after the drop settled"
                    ));
                }
                f.rounds += 1;
                if failures.count > 0 {
                    // A lost buffer makes every later round slower (its receive
                    // waits for a buffer): stop at the first, so a leak fails
                    // the test in seconds instead of stalling it.
                    break;
                }
            }
            match ring_buffers_held_at_once(&listener, &ring).await {
                Ok(held) => f.held_at_once_at_end = held,
                Err(err) => failures.add(format!("at the end: LEAK: {err}")),
            }
            f.in_flight_after = settle().await;
            f.available_at_end = ring.available();
            f.fd_delta_inside = delta(fds_back_to(fds_inside).await, fds_inside);
            (f, failures)
        })
        .expect("the runtime starts");
    let elapsed = started.elapsed();
    let fd_delta = delta(fds_back_to_blocking(fds_before), fds_before);
    println!(
        "scale: {name}: {} streams in {elapsed:.2?} (faults: {faults}); buffers back {}/{} (held at \
         once at the end: {}); {} streams dropped with unyielded completions; fd delta \
         {fd_delta} (inside {}); {f:?}",
        f.rounds,
        f.available_at_end,
        f.capacity,
        f.held_at_once_at_end,
        f.dropped_with_unyielded,
        f.fd_delta_inside
    );
    failures.assert_none("receive streams dropped mid-stream");
    assert_eq!(f.rounds, streams, "every stream ran");
    assert!(
        f.items_read >= streams,
        "each stream yielded at least one item"
    );
    assert!(
        f.dropped_with_unyielded > 0,
        "no stream was dropped with completions it had not yielded: the drops exercised only \
         the easy case"
    );
    assert_eq!(
        f.held_at_once_at_end, f.capacity,
        "LEAK: the kernel no longer has every ring buffer"
    );
    assert_eq!(
        f.available_at_end, f.capacity,
        "LEAK: ring buffers not back in the ring"
    );
    assert_eq!(f.in_flight_after, 0, "LEAK: op-table slots in flight");
    assert_eq!(f.fd_delta_inside, 0, "LEAK: fds open inside the runtime");
    assert_eq!(fd_delta, 0, "LEAK: fds open after the runtime ended");
}

/// Counts its drops: one per task, owned by the task's future.
struct Dropped(Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (at most 65,536); the soft limit then.
fn raise_fd_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    let want = limit.rlim_max.min(65_536);
    if limit.rlim_cur < want {
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; the call only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = want;
        }
    }
    limit.rlim_cur as usize
}

#[derive(Default, Debug)]
struct PendingFigures {
    tcp_reads: usize,
    pipe_reads: usize,
    accepts: usize,
    poll_adds: usize,
    sleeps: usize,
    spawned_last: usize,
    tasks: usize,
    in_flight_at_return: usize,
    timers_at_return: usize,
    setup: Duration,
}

#[test]
#[ignore = "scale: ci/stress.sh"]
fn a_runtime_dropped_with_ten_thousand_pending_ops_returns_quickly() {
    const OPS: usize = 10_000;
    const PIPES: usize = 25;
    const LISTENERS: usize = 25;
    const SLEEPS: usize = 1_000;
    const SPAWNED_LAST: usize = 100;
    let _serial = serial();
    let fd_limit = raise_fd_limit();
    let fds_before = util::open_fds();
    // Idle connections, a read pending on each end: as many as the fd limit allows.
    let connections = 1_250.min(fd_limit.saturating_sub(fds_before + 600) / 2);
    let tcp_reads = 2 * connections;
    let pipe_reads = 2_500;
    let accepts = 2_500;
    let poll_adds = OPS - tcp_reads - pipe_reads - accepts;
    // The pipes outlive the runtime: the ops name their raw fds.
    let read_pipes: Vec<_> = (0..PIPES).map(|_| std::io::pipe().expect("pipe")).collect();
    let poll_pipes: Vec<_> = (0..PIPES).map(|_| std::io::pipe().expect("pipe")).collect();
    let read_fds: Vec<RawFd> = read_pipes.iter().map(|(r, _)| r.as_raw_fd()).collect();
    let poll_fds: Vec<RawFd> = poll_pipes.iter().map(|(r, _)| r.as_raw_fd()).collect();
    let dropped = Arc::new(AtomicUsize::new(0));
    let returned_at = Rc::new(std::cell::Cell::new(None::<Instant>));
    let started = Instant::now();
    let f = runtime()
        .block_on({
            let dropped = Arc::clone(&dropped);
            let returned_at = Rc::clone(&returned_at);
            async move {
                let mut f = PendingFigures::default();
                let guard = || Dropped(Arc::clone(&dropped));
                let pair_listener = listen();
                let addr = pair_listener.local_addr().unwrap();
                for _ in 0..connections {
                    let client = connect(addr).await.expect("connect");
                    let (server, _) = pair_listener.accept().await.expect("accept");
                    for stream in [client, server] {
                        let guard = guard();
                        drop(spawn(async move {
                            let _guard = guard;
                            let _ = stream.read(Vec::with_capacity(64)).await;
                        }));
                        f.tcp_reads += 1;
                    }
                }
                for i in 0..pipe_reads {
                    let (fd, guard) = (read_fds[i % PIPES], guard());
                    drop(spawn(async move {
                        let _guard = guard;
                        let _ = Op::new(Read::new(fd, Vec::with_capacity(64), u64::MAX)).await;
                    }));
                    f.pipe_reads += 1;
                }
                let listeners: Vec<Rc<TcpListener>> =
                    (0..LISTENERS).map(|_| Rc::new(listen())).collect();
                for i in 0..accepts {
                    let (listener, guard) = (Rc::clone(&listeners[i % LISTENERS]), guard());
                    drop(spawn(async move {
                        let _guard = guard;
                        let _ = listener.accept().await;
                    }));
                    f.accepts += 1;
                }
                for i in 0..poll_adds {
                    let (fd, guard) = (poll_fds[i % PIPES], guard());
                    drop(spawn(async move {
                        let _guard = guard;
                        let _ = Op::new(PollAdd::new(fd, libc::POLLIN as u32)).await;
                    }));
                    f.poll_adds += 1;
                }
                for _ in 0..SLEEPS {
                    let guard = guard();
                    drop(spawn(async move {
                        let _guard = guard;
                        sleep(Duration::from_secs(3600)).await;
                    }));
                    f.sleeps += 1;
                }
                // Every task polled once: its op submitted (bounded: 10 s).
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    let stats = percore_runtime::stats();
                    f.in_flight_at_return = stats.in_flight;
                    f.timers_at_return = stats.timers;
                    if (stats.in_flight >= OPS && stats.timers >= SLEEPS)
                        || Instant::now() >= deadline
                    {
                        break;
                    }
                    yield_now().await;
                }
                // And tasks spawned as it returns: dropped before or after their first poll.
                for _ in 0..SPAWNED_LAST {
                    let guard = guard();
                    drop(spawn(async move {
                        let _guard = guard;
                        yield_now().await;
                    }));
                    f.spawned_last += 1;
                }
                f.tasks = f.tcp_reads + f.pipe_reads + f.accepts + f.poll_adds;
                f.tasks += f.sleeps + f.spawned_last;
                f.setup = started.elapsed();
                returned_at.set(Some(Instant::now()));
                f
            }
        })
        .expect("the runtime starts");
    let shutdown = returned_at
        .get()
        .expect("the main future returned")
        .elapsed();
    let elapsed = started.elapsed();
    drop((read_pipes, poll_pipes));
    let destructors = dropped.load(Ordering::SeqCst);
    let fd_delta = delta(fds_back_to_blocking(fds_before), fds_before);
    println!(
        "scale: a_runtime_dropped_with_ten_thousand_pending_ops_returns_quickly: {} tasks, {} ops in \
         flight and {} timers at return; shutdown took {shutdown:.2?} (whole run {elapsed:.2?}, \
         setup {:.2?}); destructors run {destructors}/{}; fd delta {fd_delta} (fd limit \
         {fd_limit}); {f:?}",
        f.tasks, f.in_flight_at_return, f.timers_at_return, f.setup, f.tasks
    );
    assert!(
        f.in_flight_at_return >= OPS && f.timers_at_return >= SLEEPS,
        "the ops were not all pending at return: {} in flight, {} timers",
        f.in_flight_at_return,
        f.timers_at_return
    );
    assert!(
        shutdown < Duration::from_secs(4),
        "HANG: the runtime took {shutdown:?} to drop {} pending ops (drain limit 5 s)",
        f.in_flight_at_return
    );
    assert_eq!(
        destructors, f.tasks,
        "LEAK: not every task's future was dropped"
    );
    assert_eq!(fd_delta, 0, "LEAK: fds open after the runtime ended");
}
