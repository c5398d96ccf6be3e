//! Futures dropped mid-read and mid-write free their buffers once the kernel is
//! done with them: live heap bytes return to where they were.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use percore_net::{TcpListener, TcpStream};
use percore_runtime::time::timeout;

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CONNECTIONS: usize = 200;
const BUFFER: usize = 64 * 1024;

/// Opens connections whose reads (nothing arrives) and writes (nobody reads)
/// are dropped in flight, with their streams.
fn drop_ops_in_flight() {
    percore_runtime::run(async {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut peers = Vec::new();
        for _ in 0..CONNECTIONS {
            let client = TcpStream::connect(addr).await.unwrap();
            let (server, _) = listener.accept().await.unwrap();
            let read = client.read(Vec::with_capacity(BUFFER));
            assert!(timeout(Duration::from_millis(1), read).await.is_err());
            // A write larger than the socket buffers, which the peer never reads.
            let write = server.write_all(vec![0u8; 16 << 20]);
            assert!(timeout(Duration::from_millis(1), write).await.is_err());
            peers.push(server);
        }
    })
    .unwrap();
}

#[test]
fn buffers_of_ops_dropped_in_flight_are_freed() {
    drop_ops_in_flight(); // warm-up: lazily made statics stay allocated
    let before = LIVE.load(Ordering::Relaxed);
    drop_ops_in_flight();
    let grown = LIVE.load(Ordering::Relaxed) - before;
    // Leaking them would keep ≥ 200 × (64 KiB + 16 MiB).
    assert!(grown < 1 << 20, "{grown} bytes still live");
}
