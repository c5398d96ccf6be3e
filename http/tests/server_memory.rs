//! Memory per idle keep-alive connection: 1,000 connections (from a child
//! process) each make one request and then sit idle; the server's live heap
//! (a counting allocator) and resident set are read before and after, and
//! printed. Run with `--nocapture` to see the figures:
//!
//! ```text
//! cargo test -p percore-http --release --test server_memory -- --nocapture
//! ```
//!
//! The bound asserted is loose (it catches a buffer per connection coming
//! back, not a few hundred bytes); the figures are the point.

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

/// Resident set of this process, bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// The child: opens the connections, one request each, reads every
/// response, says READY and holds them until its stdin closes.
#[test]
fn idle_clients_child() {
    let Some(addr) = std::env::var_os(CLIENTS_ENV) else {
        return; // only meaningful as the child of the test below
    };
    let addr: std::net::SocketAddr = addr.to_str().unwrap().parse().unwrap();
    let mut clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    for client in &mut clients {
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
    }
    for client in &mut clients {
        client
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"Hello, world!") {
            let n = client.read(&mut buf).unwrap();
            assert!(n > 0, "answered before closing");
            got.extend_from_slice(&buf[..n]);
        }
    }
    println!("READY");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}

#[test]
fn memory_per_idle_keep_alive_connection() {
    let server = start(Server::builder().cores(1));
    let addr = server.addr;
    alive(addr);
    // Settled: the core's ring, send buffers and task arena are made.
    std::thread::sleep(Duration::from_millis(200));
    let (heap_before, rss_before) = (LIVE.load(Ordering::Relaxed), rss());

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "idle_clients_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CLIENTS_ENV, addr.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
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
    // The server has written every response; let its tasks go idle.
    let start = Instant::now();
    let mut heap_after = LIVE.load(Ordering::Relaxed);
    while start.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(50));
        heap_after = LIVE.load(Ordering::Relaxed);
    }
    let rss_after = rss();
    drop(stdin);
    lines.for_each(drop);
    let _ = child.wait();

    let heap = heap_after.saturating_sub(heap_before) as f64 / CONNECTIONS as f64;
    let resident = rss_after.saturating_sub(rss_before) as f64 / CONNECTIONS as f64;
    println!(
        "memory per idle keep-alive HTTP/1.1 connection, {CONNECTIONS} connections: \
         heap {heap:.0} B, resident {resident:.0} B"
    );
    // A loose bound: the connection's task, hyper's connection state and
    // its two 8 KiB buffers, no buffer of the I/O path.
    assert!(
        heap < 48.0 * 1024.0,
        "{heap:.0} B of heap per idle connection"
    );
    server.stop().unwrap();
}
