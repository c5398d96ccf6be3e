//! Helpers shared by the fs integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("percore-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir can be made");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small xorshift generator: deterministic data and shuffles without a crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Fills `block` with bytes derived from `index` alone.
pub fn fill_block(block: &mut [u8], index: u64) {
    let mut rng = Rng::new(index + 1);
    for chunk in block.chunks_mut(8) {
        let word = rng.next().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// FNV-1a over `data`: the checksum the block tests compare.
pub fn checksum(data: &[u8]) -> u64 {
    // Eight bytes at a time: debug builds are slow, and 256 MiB is a lot of bytes.
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for chunk in data.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        hash ^= u64::from_le_bytes(word);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Number of open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd is readable")
        .count()
}

/// This process's open fds once the count has held still for 20 ms (at
/// most 2 s): fds an earlier test's runtime or blocking pool is still
/// closing are not counted as the next test's.
pub fn settled_fd_count() -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut last = fd_count();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = fd_count();
        if now == last || std::time::Instant::now() >= deadline {
            return now;
        }
        last = now;
    }
}

/// The open fds once they are back to `before` or fewer (waiting at most
/// 10 s for closes still on their way): a test asserts the result is not
/// above `before`.
pub fn fd_count_back_to(before: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = fd_count();
        if now <= before || std::time::Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Serialises the tests of one binary that count this process's fds.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Yields until no op is in flight on this core, at most `rounds` ms.
pub async fn settle(rounds: usize) -> usize {
    for _ in 0..rounds {
        if percore_runtime::stats().in_flight == 0 {
            return 0;
        }
        percore_runtime::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    percore_runtime::stats().in_flight
}

#[path = "../../../runtime/tests/util/driver.rs"]
mod driver;
#[allow(unused_imports)] // not every test binary asks
pub use driver::io_uring_or_skip;
