//! Helpers shared by the process integration tests: what `/proc` says about
//! our children.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// The state letter of process `pid` (`R`, `S`, `Z`…), or `None` if it is
/// gone (exited and reaped).
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid …": the name may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().next()?.chars().next()
}

/// The parent pid and state of process `pid`.
fn ppid_and_state(pid: &str) -> Option<(u32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Our children (processes whose parent is this process), with their state.
pub fn children() -> Vec<(u32, char)> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let name = entry.ok()?.file_name().into_string().ok()?;
        let pid: u32 = name.parse().ok()?;
        let (ppid, state) = ppid_and_state(&name)?;
        (ppid == me).then_some((pid, state))
    })
    .collect()
}

/// Our children that are zombies (exited, not reaped).
pub fn zombies() -> Vec<u32> {
    children()
        .into_iter()
        .filter(|&(_, state)| state == 'Z')
        .map(|(pid, _)| pid)
        .collect()
}

/// Polls `done` every millisecond until it holds or `limit` passes; whether it held.
pub fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether process `pid` is gone for good: no `/proc` entry (not even a zombie's).
pub fn gone(pid: u32) -> bool {
    state(pid).is_none()
}

/// The fds process `pid` holds, sorted.
pub fn fds_of(pid: u32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the child's /proc/<pid>/fd")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

/// What fd `fd` of process `pid` is (`socket:[…]`, `anon_inode:[io_uring]`…).
pub fn fd_target(pid: u32, fd: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).map_or_else(
        |err| format!("? ({err})"),
        |path| path.display().to_string(),
    )
}

/// Open fds of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// Whether process `pid` (a `sleep`) is blocked in its sleep: past its
/// startup, when the loader and libc open and close files of their own.
/// `/proc/<pid>/syscall` says which call it is blocked in; where that is not
/// readable, `wchan`, then the state `S`.
pub fn in_nanosleep(pid: u32) -> bool {
    if let Ok(syscall) = std::fs::read_to_string(format!("/proc/{pid}/syscall")) {
        if let Some(Ok(number)) = syscall.split_whitespace().next().map(str::parse::<i64>) {
            return number == libc::SYS_clock_nanosleep || nanosleep(number);
        }
    }
    if let Ok(wchan) = std::fs::read_to_string(format!("/proc/{pid}/wchan")) {
        if wchan != "0" && !wchan.is_empty() {
            return wchan.contains("nanosleep");
        }
    }
    state(pid) == Some('S')
}

#[cfg(target_arch = "x86_64")]
fn nanosleep(number: i64) -> bool {
    number == libc::SYS_nanosleep
}

#[cfg(not(target_arch = "x86_64"))]
fn nanosleep(_number: i64) -> bool {
    false
}
