//! Rehoming: a connection a `Balance` placed moves to another core between
//! requests (`TcpStream::rehome`), with the bytes its old core received and
//! did not serve, and loses, repeats or reorders nothing on the way; a move
//! to a core that stopped taking connections leaves it where it was; a
//! connection no `Balance` placed never moves.
//!
//! Every client connects to core 0's listener, and the margin is so wide
//! that every connection stays there until the test asks for a move
//! (`Balance::move_connections`). The server answers lines: `"<text>\n"` is
//! answered `"<core>:<text>\n"`, so each answer says where it was served.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use percore_net::balance::{Balance, Balanced};
use percore_net::{BufRing, TcpListener, TcpStream};
use percore_runtime::{RemoteJoinHandle, Runtime};

/// Tests here count the process's fds; they must not overlap.
static FDS: Mutex<()> = Mutex::new(());

/// Bytes the server handed to another core along with a connection (read,
/// not served), in all: how many were in flight at a move.
static HANDED_OVER: AtomicUsize = AtomicUsize::new(0);

/// Every wait of a test is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

/// The server's ring buffers are small, so a burst of lines spans several
/// receives and the move comes in the middle of it.
const BUF_SIZE: u32 = 1024;

const CLIENTS: usize = 8;

/// Takes `balance`'s connections on this core, serving each with
/// [`serve_lines`].
async fn accept(mut incoming: Balanced) {
    let ring = BufRing::new(64, BUF_SIZE).expect("buffer ring");
    while let Some(stream) = incoming.next().await {
        let Ok(stream) = stream else { continue };
        // An answer cut in two (short sends under `PERCORE_FAULTS`) need
        // not wait for the client's delayed ACK.
        let _ = stream.set_nodelay(true);
        drop(percore_runtime::spawn(serve_lines(stream, ring.clone())));
    }
}

/// Answers each complete line until end of stream; between requests (all
/// complete lines answered), moves to another core when the `Balance` asks.
async fn serve_lines(mut stream: TcpStream, ring: BufRing) {
    // What a previous core received and did not serve comes first.
    let mut pending = stream.take_received();
    loop {
        if answer(&stream, &mut pending).await.is_err() {
            return;
        }
        let mut received = stream.recv_stream(&ring);
        loop {
            let Some(Ok(buf)) = received.next().await else {
                return;
            };
            pending.extend_from_slice(&buf);
            drop(buf);
            if answer(&stream, &mut pending).await.is_err() {
                return;
            }
            if stream.rehome_wanted() {
                break;
            }
        }
        received.stop();
        while let Some(buf) = received.next().await {
            match buf {
                Ok(buf) => pending.extend_from_slice(&buf),
                Err(_) => return,
            }
        }
        drop(received);
        let handed = pending.len();
        match stream.rehome(pending) {
            Ok(()) => {
                HANDED_OVER.fetch_add(handed, Ordering::Relaxed);
                return;
            }
            // Served here still, from where it was.
            Err((back, rest)) => (stream, pending) = (back, rest),
        }
    }
}

/// Answers every complete line in `pending` in one write, and removes them.
async fn answer(stream: &TcpStream, pending: &mut Vec<u8>) -> std::io::Result<()> {
    let Some(end) = pending.iter().rposition(|&byte| byte == b'\n') else {
        return Ok(());
    };
    let core = percore_runtime::current_core().to_string();
    let mut out = Vec::with_capacity(end * 2);
    for line in pending[..=end].split_inclusive(|&byte| byte == b'\n') {
        out.extend_from_slice(core.as_bytes());
        out.push(b':');
        out.extend_from_slice(line);
    }
    pending.drain(..=end);
    stream.write_all(out).await.0
}

/// Starts the line server on both cores of `runtime`; core 1 takes
/// connections only if `core_1_serves` (otherwise it registers and drops its
/// `Balanced` at once: it stopped taking connections). Returns core 0's
/// address and each core's accept task.
fn start(
    runtime: &Runtime,
    balance: &Balance,
    core_1_serves: bool,
) -> (SocketAddr, Vec<RemoteJoinHandle<()>>) {
    let mut addr = None;
    let mut tasks = Vec::new();
    for core in 0..2 {
        let listener = util::std_listener();
        addr.get_or_insert(listener.local_addr().expect("local_addr"));
        let balance = balance.clone();
        let serves = core == 0 || core_1_serves;
        let (ready_tx, ready_rx) = mpsc::channel();
        let task = runtime
            .spawn_on(core, move || async move {
                let listener = TcpListener::from_std(listener);
                let incoming = balance.incoming(&listener).expect("core in the table");
                if serves {
                    ready_tx.send(()).expect("test waits");
                    accept(incoming).await;
                } else {
                    drop(incoming);
                    ready_tx.send(()).expect("test waits");
                }
            })
            .expect("spawn_on");
        ready_rx.recv_timeout(WAIT).expect("core registered");
        tasks.push(task);
    }
    (addr.expect("two listeners"), tasks)
}

/// A client of the line server.
struct Client {
    writer: StdStream,
    reader: BufReader<StdStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let writer = StdStream::connect(addr).expect("connect");
        writer.set_read_timeout(Some(WAIT)).expect("read timeout");
        writer.set_write_timeout(Some(WAIT)).expect("write timeout");
        let reader = BufReader::new(writer.try_clone().expect("try_clone"));
        Client { writer, reader }
    }

    fn send(&mut self, text: &str) {
        self.writer
            .write_all(format!("{text}\n").as_bytes())
            .expect("send a line");
    }

    /// The next answer: the core that served it, and the text.
    fn answer(&mut self) -> (usize, String) {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("an answer");
        assert!(n > 0 && line.ends_with('\n'), "a whole answer: {line:?}");
        let (core, text) = line.trim_end().split_once(':').expect("<core>:<text>");
        (core.parse().expect("a core number"), text.to_owned())
    }

    /// Sends `text` and reads its answer, which must repeat it.
    fn ask(&mut self, text: &str) -> usize {
        self.send(text);
        let (core, back) = self.answer();
        assert_eq!(back, text, "the answer to the line sent");
        core
    }
}

/// The text of client `client`'s line `i`.
fn line(client: usize, i: usize) -> String {
    format!("client {client} line {i:03}")
}

/// Asserts that the answers, in order, were served on core 0 and then on
/// core 1 from some point on, never back; returns how many came from core 0.
fn assert_moved_once(cores: &[usize], client: usize) -> usize {
    let on_0 = cores.iter().take_while(|&&core| core == 0).count();
    assert!(
        cores[on_0..].iter().all(|&core| core == 1),
        "client {client}: from core 0 to core 1 and never back: {cores:?}"
    );
    assert!(on_0 < cores.len(), "client {client} never moved to core 1");
    on_0
}

/// Waits (a bounded number of tries) until `balance.live()` is `want`.
fn wait_for_live(balance: &Balance, want: &[usize]) {
    let deadline = Instant::now() + WAIT;
    while balance.live() != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(balance.live(), want, "connections counted per core");
}

/// Waits (a bounded number of tries) until `balance.moves()` is `want`
/// (a move is counted as it is handed over; a failed hand-over takes its
/// count back, so the count may pass through a higher value).
fn wait_for_moves(balance: &Balance, want: u64) {
    let deadline = Instant::now() + WAIT;
    while balance.moves() != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(balance.moves(), want, "connections moved");
}

#[test]
fn closed_loop_connections_move_between_requests_and_lose_nothing() {
    const LINES: usize = 200;
    const BEFORE_MOVE: usize = 50;
    let _serial = FDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let fds_before = util::open_fds();
    let runtime = Runtime::builder().cores(2).build().expect("runtime");
    let balance = Balance::new(2).margin(1000);
    let (addr, _tasks) = start(&runtime, &balance, true);

    // Each client: 50 lines, then waits for the move to be asked, then the
    // rest; one line at a time.
    let (halfway_tx, halfway_rx) = mpsc::channel();
    let mut go = Vec::new();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let halfway_tx = halfway_tx.clone();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        go.push(go_tx);
        clients.push(std::thread::spawn(move || {
            let mut conn = Client::connect(addr);
            let mut cores = Vec::with_capacity(LINES);
            for i in 0..LINES {
                if i == BEFORE_MOVE {
                    halfway_tx.send(()).expect("the test waits");
                    go_rx.recv_timeout(WAIT).expect("go");
                }
                cores.push(conn.ask(&line(client, i)));
            }
            (conn, cores)
        }));
    }
    for _ in 0..CLIENTS {
        halfway_rx.recv_timeout(WAIT).expect("a client halfway");
    }
    assert_eq!(
        balance.live(),
        [CLIENTS, 0],
        "all on core 0 before the move"
    );
    balance.move_connections(0, 1, CLIENTS);
    for go in &go {
        go.send(()).expect("client waits");
    }
    let mut conns = Vec::new();
    for (client, thread) in clients.into_iter().enumerate() {
        let (conn, cores) = thread.join().expect("client thread");
        let on_0 = assert_moved_once(&cores, client);
        assert!(on_0 >= BEFORE_MOVE, "moved only once asked: {cores:?}");
        conns.push(conn);
    }
    wait_for_moves(&balance, CLIENTS as u64);
    wait_for_live(&balance, &[0, CLIENTS]);

    drop(conns);
    wait_for_live(&balance, &[0, 0]);
    drop(runtime);
    assert_eq!(util::open_fds(), fds_before, "fd delta");
}

#[test]
fn pipelined_lines_in_flight_during_the_move_are_answered_once_in_order() {
    const LINES: usize = 500;
    let _serial = FDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let fds_before = util::open_fds();
    HANDED_OVER.store(0, Ordering::Relaxed);
    let runtime = Runtime::builder().cores(2).build().expect("runtime");
    let balance = Balance::new(2).margin(1000);
    let (addr, _tasks) = start(&runtime, &balance, true);

    let mut conns: Vec<Client> = (0..CLIENTS).map(|_| Client::connect(addr)).collect();
    wait_for_live(&balance, &[CLIENTS, 0]);
    // Asked before a byte is sent: each connection moves once it has served
    // its first receive, with the rest of its burst on the way.
    balance.move_connections(0, 1, CLIENTS);
    std::thread::scope(|scope| {
        for (client, conn) in conns.iter_mut().enumerate() {
            let mut writer = conn.writer.try_clone().expect("try_clone");
            scope.spawn(move || {
                let burst: String = (0..LINES).map(|i| line(client, i) + "\n").collect();
                writer.write_all(burst.as_bytes()).expect("send the burst");
            });
            scope.spawn(move || {
                let mut cores = Vec::with_capacity(LINES);
                for i in 0..LINES {
                    let (core, text) = conn.answer();
                    assert_eq!(text, line(client, i), "client {client}: answer {i}");
                    cores.push(core);
                }
                assert_moved_once(&cores, client);
            });
        }
    });
    wait_for_moves(&balance, CLIENTS as u64);
    wait_for_live(&balance, &[0, CLIENTS]);
    // Not asserted (it depends on timing): how much the moves carried.
    eprintln!(
        "bytes handed over with the {CLIENTS} moves: {}",
        HANDED_OVER.load(Ordering::Relaxed)
    );

    drop(conns);
    wait_for_live(&balance, &[0, 0]);
    drop(runtime);
    assert_eq!(util::open_fds(), fds_before, "fd delta");
}

#[test]
fn a_move_to_a_core_that_stopped_taking_connections_keeps_the_connection() {
    let _serial = FDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let fds_before = util::open_fds();
    let runtime = Runtime::builder().cores(2).build().expect("runtime");
    let balance = Balance::new(2).margin(1000);
    let (addr, _tasks) = start(&runtime, &balance, false);

    let mut conns: Vec<Client> = (0..2).map(|_| Client::connect(addr)).collect();
    for (client, conn) in conns.iter_mut().enumerate() {
        for i in 0..10 {
            assert_eq!(conn.ask(&line(client, i)), 0);
        }
    }
    balance.move_connections(0, 1, conns.len());
    for i in 10..40 {
        for (client, conn) in conns.iter_mut().enumerate() {
            assert_eq!(conn.ask(&line(client, i)), 0, "served on core 0 still");
        }
    }
    assert_eq!(balance.moves(), 0);
    wait_for_live(&balance, &[2, 0]);

    drop(conns);
    wait_for_live(&balance, &[0, 0]);
    drop(runtime);
    assert_eq!(util::open_fds(), fds_before, "fd delta");
}

#[test]
fn a_connection_no_balance_placed_never_moves() {
    let _serial = FDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let served = percore_runtime::run(async {
        let listener = TcpListener::from_std(util::std_listener());
        let addr = listener.local_addr().expect("local_addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let stream = listener
            .incoming()
            .next()
            .await
            .expect("a connection")
            .expect("accepted");
        assert!(!stream.rehome_wanted());
        assert!(stream.take_received().is_empty());
        let (stream, back) = stream
            .rehome(b"not served yet".to_vec())
            .expect_err("nowhere to go");
        assert_eq!(back, b"not served yet");
        // Still a whole connection.
        stream.write_all(b"here".to_vec()).await.0.expect("write");
        let (res, buf) = client.read_exact(Vec::with_capacity(4)).await;
        res.expect("read");
        buf
    })
    .expect("runtime");
    assert_eq!(served, b"here");
}

#[test]
fn with_rehome_on_a_core_serving_connections_samples_its_load() {
    const MAX_LINES: usize = 100_000;
    if std::fs::metadata("/proc/thread-self/schedstat").is_err() {
        eprintln!("no /proc/thread-self/schedstat here: nothing to sample, nothing to check");
        return;
    }
    let _serial = FDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let runtime = Runtime::builder().cores(2).build().expect("runtime");
    let balance = Balance::new(2).margin(1000).rehome(true);
    let (addr, _tasks) = start(&runtime, &balance, true);
    assert_eq!(balance.load(0), None, "no sample before a connection asks");

    // Lines one at a time until a serving core has sampled twice (a load
    // needs two readings, 10 ms apart): bounded in lines and in time. The
    // connection may move meanwhile, if the load says so; it loses nothing.
    let mut conn = Client::connect(addr);
    let deadline = Instant::now() + WAIT;
    let mut i = 0;
    while (0..2).all(|core| balance.load(core).is_none())
        && i < MAX_LINES
        && Instant::now() < deadline
    {
        conn.ask(&line(0, i));
        i += 1;
    }
    let loads: Vec<_> = (0..2).filter_map(|core| balance.load(core)).collect();
    assert!(!loads.is_empty(), "no core sampled its load in {i} lines");
    for load in loads {
        assert!(
            load.waiting <= 1000 && load.running <= 1000 && load.slowdown <= 1000,
            "fractions in thousandths: {load:?}"
        );
        assert!(load.age < WAIT, "a sample of this run: {load:?}");
    }
    assert_eq!(balance.load(2), None, "beyond the table");
    drop(conn);
    wait_for_live(&balance, &[0, 0]);
}
