//! A soak, run by `ci/stress.sh`: echo round trips over connections that
//! reconnect every few hundred requests, beside random file reads, on two
//! cores, for `PERCORE_SOAK_SECONDS` (default 600). Every byte is checked;
//! the process's resident memory and fd count are sampled every few seconds
//! and must stay flat: RSS within a wide margin of its level after warm-up,
//! fds bounded by the connections open, and back to where they started.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use percore::fs::File;
use percore::net::{TcpListener, TcpStream};

const CONNECTIONS: usize = 32;
const READERS: usize = 8;
const REQUESTS_PER_CONNECTION: usize = 300;
const FILE_LEN: usize = 8 << 20;

fn file_byte(pos: usize) -> u8 {
    (pos.wrapping_mul(2_654_435_761) >> 11) as u8
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

async fn serve(listener: TcpListener, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let accepted = percore::time::timeout(Duration::from_millis(100), listener.accept()).await;
        let Ok(Ok((stream, _))) = accepted else {
            continue;
        };
        drop(percore::spawn(async move {
            let mut buf = Vec::with_capacity(4096);
            loop {
                buf.clear();
                let (res, back) = stream.read(buf).await;
                buf = back;
                match res {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let (res, back) = stream.write_all(buf).await;
                buf = back;
                if res.is_err() {
                    return;
                }
            }
        }));
    }
}

/// One client connection after another until `deadline`; counts requests.
async fn client(addr: SocketAddr, deadline: Instant, seed: u64, requests: Arc<AtomicU64>) {
    let mut rng = seed | 1;
    while Instant::now() < deadline {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the soak server");
        for _ in 0..REQUESTS_PER_CONNECTION {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let len = 1 + (rng % 4096) as usize;
            let out: Vec<u8> = (0..len).map(|i| (rng as usize + i) as u8).collect();
            let (res, out) = stream.write_all(out).await;
            res.expect("echo write");
            let (res, back) = stream.read_exact(Vec::with_capacity(len)).await;
            res.expect("echo read");
            assert_eq!(back, out, "the echo came back intact");
            requests.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn reader(path: PathBuf, deadline: Instant, seed: u64, reads: Arc<AtomicU64>) {
    let file = File::open(&path).await.expect("open the soak file");
    let mut rng = seed | 1;
    let mut buf = Vec::with_capacity(4096);
    while Instant::now() < deadline {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let pos = (rng as usize % (FILE_LEN / 4096)) * 4096;
        buf.clear();
        let (res, back) = file.read_exact_at(buf, pos as u64).await;
        buf = back;
        res.expect("file read");
        assert!(
            buf.iter()
                .enumerate()
                .all(|(i, b)| *b == file_byte(pos + i)),
            "file bytes at {pos}"
        );
        reads.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
#[ignore = "soak: ci/stress.sh"]
fn echo_and_file_reads_keep_rss_and_fds_flat() {
    let seconds: u64 = std::env::var("PERCORE_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let path = std::env::temp_dir().join(format!("percore-soak-{}", std::process::id()));
    std::fs::write(&path, (0..FILE_LEN).map(file_byte).collect::<Vec<u8>>()).unwrap();
    let baseline_fds = fd_count();

    let runtime = percore::Runtime::builder().cores(2).build().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let server_stop = Arc::clone(&stop);
    let server = runtime
        .spawn_on(0, move || {
            serve(TcpListener::from_std(listener), server_stop)
        })
        .unwrap();

    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (stop, samples) = (Arc::clone(&stop), Arc::clone(&samples));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                samples.lock().unwrap().push((rss_bytes(), fd_count()));
                std::thread::sleep(Duration::from_secs(2));
            }
        })
    };

    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let (requests, reads) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (r, f, p) = (Arc::clone(&requests), Arc::clone(&reads), path.clone());
    runtime
        .run_on(1, move || async move {
            let mut tasks = Vec::new();
            for i in 0..CONNECTIONS {
                tasks.push(percore::spawn(client(
                    addr,
                    deadline,
                    i as u64 + 1,
                    Arc::clone(&r),
                )));
            }
            for i in 0..READERS {
                tasks.push(percore::spawn(reader(
                    p.clone(),
                    deadline,
                    100 + i as u64,
                    Arc::clone(&f),
                )));
            }
            for task in tasks {
                task.await.expect("a soak task failed");
            }
        })
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    drop(server);
    drop(runtime);
    let _ = std::fs::remove_file(&path);

    let samples = samples.lock().unwrap().clone();
    let (requests, reads) = (
        requests.load(Ordering::Relaxed),
        reads.load(Ordering::Relaxed),
    );
    let warm = samples.len() / 5;
    let settled = samples[warm].0;
    let peak_rss = samples[warm..].iter().map(|s| s.0).max().unwrap_or(0);
    let peak_fds = samples.iter().map(|s| s.1).max().unwrap_or(0);
    println!(
        "scale: soak {:.0} s: {requests} echo requests, {reads} file reads; RSS after warm-up {} KiB, \
         peak {} KiB; fds {baseline_fds} before, peak {peak_fds}, {} after; {} samples",
        started.elapsed().as_secs_f64(),
        settled / 1024,
        peak_rss / 1024,
        fd_count(),
        samples.len()
    );
    assert!(requests > 0 && reads > 0);
    assert!(
        peak_rss <= settled + settled / 4 + (16 << 20),
        "RSS grew from {settled} to {peak_rss} bytes"
    );
    // Two sockets per connection, the listener, the file of each reader and
    // the runtime's own fds (rings, eventfds): bounded, whatever the churn.
    assert!(
        peak_fds <= baseline_fds + 2 * CONNECTIONS + READERS + 16,
        "{peak_fds} fds at the peak"
    );
    assert_eq!(fd_count(), baseline_fds, "every fd closed at the end");
}
