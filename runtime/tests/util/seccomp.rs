//! A seccomp filter that blocks io_uring as containers' default profiles do,
//! for tests that run a child process where io_uring is unavailable. Shared
//! by `runtime/tests/setup_seccomp.rs` and the facade's
//! `tests/seccomp_fallback.rs` (included by path).

/// Installs a filter on this thread (and the threads it starts later) that
/// makes `io_uring_setup` fail with EPERM and allows every other syscall.
pub fn block_io_uring_setup() {
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
