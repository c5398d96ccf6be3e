//! io_uring blocked by a seccomp filter (as in containers' default profiles):
//! forced io_uring must return a named error, not panic or show a bare errno;
//! the default (`Driver::Auto`) must run on epoll instead, after one line
//! that says why.

use std::process::Command;

const CHILD_ENV: &str = "PERCORE_SECCOMP_CHILD";

/// Installs a filter on this thread that makes `io_uring_setup` fail with EPERM
/// and allows every other syscall.
fn block_io_uring_setup() {
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xc000_00b7;
    let nr = libc::SYS_io_uring_setup as u32;
    let stmt = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u16, k: u32, jt: u8, jf: u8| libc::sock_filter { code, jt, jf, k };
    let ld_w_abs = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let jeq_k = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    let ret_k = (libc::BPF_RET | libc::BPF_K) as u16;
    let mut filter = [
        stmt(ld_w_abs, 4), // seccomp_data.arch
        jump(jeq_k, AUDIT_ARCH, 1, 0),
        stmt(ret_k, SECCOMP_RET_ALLOW), // another ABI: leave it alone
        stmt(ld_w_abs, 0),              // seccomp_data.nr
        jump(jeq_k, nr, 0, 1),
        stmt(ret_k, SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(ret_k, SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl with NO_NEW_PRIVS takes plain integers.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(
        rc,
        0,
        "PR_SET_NO_NEW_PRIVS: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `prog` points at a valid filter array that outlives the call (the
    // kernel copies it).
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const _,
            0,
            0,
        )
    };
    assert_eq!(rc, 0, "PR_SET_SECCOMP: {}", std::io::Error::last_os_error());
}

/// Runs only in the child process the parent test starts.
#[test]
fn child_under_seccomp() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    block_io_uring_setup();
    let forced = percore_runtime::Builder::new()
        .driver(percore_runtime::Driver::IoUring)
        .block_on(async {});
    match forced {
        Ok(()) => println!("RESULT: forced started"),
        Err(err) => {
            println!("RESULT: kind={:?}", err.kind());
            println!("RESULT: message={err}");
        }
    }
    match percore_runtime::run(async { percore_runtime::stats().driver }) {
        Ok(driver) => println!("RESULT: auto runs {driver}"),
        Err(err) => println!("RESULT: auto failed: {err}"),
    }
}

#[test]
fn io_uring_blocked_by_seccomp_is_named_and_auto_falls_back() {
    let exe = std::env::current_exe().expect("test binary path");
    let output = Command::new(exe)
        .env_remove("PERCORE_DRIVER")
        .args([
            "--exact",
            "child_under_seccomp",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the child test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("RESULT: kind=PermissionDenied"), "{stdout}");
    assert!(
        stdout.contains("seccomp"),
        "the error names the likely cause: {stdout}"
    );
    assert!(
        stdout.contains("io_uring_setup"),
        "and the blocked call: {stdout}"
    );
    assert!(!stdout.contains("RESULT: forced started"));
    assert!(stdout.contains("RESULT: auto runs epoll"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let announced: Vec<_> = stderr
        .lines()
        .filter(|line| line.contains("running on epoll"))
        .collect();
    assert_eq!(announced.len(), 1, "one line says why: {stderr}");
    assert!(announced[0].contains("seccomp"), "{stderr}");
}
