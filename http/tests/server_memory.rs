//! Memory per idle keep-alive connection: 1,000 connections (from a child
//! process) each make one request and then sit idle; the server's live heap
//! (a counting allocator, plus the cells of the core's task arena, which it
//! does not see) and resident set are read before and after, and printed.
//! Run with `--nocapture` to see the figures:
//!
//! ```text
//! cargo test -p percore-http --release --test server_memory -- --nocapture
//! ```
//!
//! HTTP/1.1 with the default options: its idle connections are retired
//! (hyper's state and buffers dropped) after `retire_idle_after`, 1 s; the
//! bound asserted, 4 KiB, is twice the target and catches any buffer per
//! connection coming back. HTTP/2 (h2c): the figure is printed, the bound
//! is loose (h2 keeps its own state and buffers per connection).

mod server_util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use percore_http::server::Server;
use server_util::*;

/// Live heap bytes of this process.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to `System` with the caller's arguments; the
// counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CONNECTIONS: usize = 1000;
const CLIENTS_ENV: &str = "PERCORE_HTTP_TEST_IDLE_CLIENTS";
const H2_ENV: &str = "PERCORE_HTTP_TEST_IDLE_H2";

/// The HTTP/2 preface, an empty SETTINGS frame and a `GET /` on stream 1
/// (HEADERS with END_STREAM and END_HEADERS; HPACK: `:method GET`,
/// `:scheme http`, `:path /` from the static table, `:authority x`).
const H2_REQUEST: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\
    \x00\x00\x00\x04\x00\x00\x00\x00\x00\
    \x00\x00\x06\x01\x05\x00\x00\x00\x01\x82\x86\x84\x41\x01x";
/// The acknowledgement of the server's SETTINGS.
const H2_SETTINGS_ACK: &[u8] = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00";

/// Resident set of this process, bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Bytes of the server core's task arena (`Stats::task_bytes`), asked over
/// a connection of its own (closed after; its task is alive when it answers,
/// every time, so it cancels out of a difference).
fn task_bytes(addr: std::net::SocketAddr) -> usize {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /task-bytes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    body.trim()
        .parse()
        .unwrap_or_else(|_| panic!("task bytes in {response:?}"))
}

/// The child: opens the connections, one request each, reads every
/// response, says READY and holds them until its stdin closes.
#[test]
fn idle_clients_child() {
    let Some(addr) = std::env::var_os(CLIENTS_ENV) else {
        return; // only meaningful as the child of the test below
    };
    let addr: std::net::SocketAddr = addr.to_str().unwrap().parse().unwrap();
    let h2 = std::env::var_os(H2_ENV).is_some();
    let request: &[u8] = if h2 {
        H2_REQUEST
    } else {
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    };
    let mut clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    for client in &mut clients {
        client.write_all(request).unwrap();
    }
    for client in &mut clients {
        client
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(13).any(|w| w == b"Hello, world!") {
            let n = client.read(&mut buf).unwrap();
            assert!(n > 0, "answered before closing");
            got.extend_from_slice(&buf[..n]);
        }
        if h2 {
            client.write_all(H2_SETTINGS_ACK).unwrap();
        }
    }
    println!("READY");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

/// Heap bytes, resident bytes, and resident bytes once the allocator has
/// given back its free memory, per idle connection of the server, HTTP/1.1
/// or h2c.
fn per_idle_connection(h2: bool) -> (f64, f64, f64) {
    // One core: the core's ring (2 MiB) is made by the first connection,
    // before the figures are taken; a second core would make its own
    // during the measurement, and count it against the connections.
    let app = app().route(
        "/task-bytes",
        axum::routing::get(|| async { percore::stats().task_bytes.to_string() }),
    );
    let server = start_on(Server::builder().cores(1), app);
    let addr = server.addr;
    alive(addr);
    // Settled: the core's ring, send buffers and task arena are made.
    std::thread::sleep(Duration::from_millis(200));
    let tasks_before = task_bytes(addr);
    let (heap_before, rss_before) = (LIVE.load(Ordering::Relaxed), rss());

    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "idle_clients_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CLIENTS_ENV, addr.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    if h2 {
        command.env(H2_ENV, "1");
    }
    let mut child = command.spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let ready = lines
        .by_ref()
        .any(|line| line.unwrap_or_default().contains("READY"));
    assert!(
        ready,
        "the child opened {CONNECTIONS} connections, each answered"
    );
    // The server has written every response; let its connections go idle
    // and be retired (after 1 s idle, by default): read the heap once it
    // has stopped moving for a second, at least 2.5 s on — on a machine
    // busy with other work the retires take longer, so the wait follows
    // them (up to a minute) instead of a fixed time.
    let start = Instant::now();
    let mut heap_after = LIVE.load(Ordering::Relaxed);
    let mut changed = Instant::now();
    while start.elapsed() < Duration::from_millis(2500)
        || (changed.elapsed() < Duration::from_secs(1) && start.elapsed() < Duration::from_secs(60))
    {
        std::thread::sleep(Duration::from_millis(50));
        let now = LIVE.load(Ordering::Relaxed);
        if now != heap_after {
            heap_after = now;
            changed = Instant::now();
        }
    }
    let rss_after = rss();
    let tasks_after = task_bytes(addr);
    // What the allocator keeps of the memory the busy connections had (the
    // high-water mark of 1,000 requests at once) is resident too; given
    // back, the rest is what the idle connections hold.
    // SAFETY: `malloc_trim` only releases free memory of glibc's arenas.
    unsafe { libc::malloc_trim(0) };
    let rss_trimmed = rss();
    drop(stdin);
    lines.for_each(drop);
    let _ = child.wait();
    server.stop().unwrap();

    let heap = (heap_after + tasks_after).saturating_sub(heap_before + tasks_before) as f64
        / CONNECTIONS as f64;
    let resident = rss_after.saturating_sub(rss_before) as f64 / CONNECTIONS as f64;
    let trimmed = rss_trimmed.saturating_sub(rss_before) as f64 / CONNECTIONS as f64;
    (heap, resident, trimmed)
}

/// One test for both protocols: the heap counter is the process's, so the
/// two measurements must not overlap.
#[test]
fn memory_per_idle_keep_alive_connection() {
    let (heap, resident, trimmed) = per_idle_connection(false);
    println!(
        "memory per idle keep-alive HTTP/1.1 connection, {CONNECTIONS} connections: \
         heap {heap:.0} B, resident {resident:.0} B ({trimmed:.0} B after malloc_trim)"
    );
    let (h2_heap, h2_resident, h2_trimmed) = per_idle_connection(true);
    println!(
        "memory per idle HTTP/2 (h2c) connection, {CONNECTIONS} connections: \
         heap {h2_heap:.0} B, resident {h2_resident:.0} B ({h2_trimmed:.0} B after malloc_trim)"
    );
    // Twice the target: the connection's task, its account of timeouts, the
    // socket's ops; no buffer, none of hyper's state.
    assert!(
        heap < 4.0 * 1024.0,
        "{heap:.0} B of heap per idle HTTP/1.1 connection"
    );
    // Loose: h2 keeps its own state and buffers per connection.
    assert!(
        h2_heap < 96.0 * 1024.0,
        "{h2_heap:.0} B of heap per idle HTTP/2 connection"
    );
}
