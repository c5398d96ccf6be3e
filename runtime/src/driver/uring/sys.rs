//! The two raw syscalls the `io-uring` crate cannot make the way we need: an
//! enter through the *registered* ring fd (its `Submitter` forgets the index when
//! dropped, and we cannot keep one alive next to the ring), and that registration.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

const IORING_ENTER_GETEVENTS: u32 = 1 << 0;
const IORING_ENTER_EXT_ARG: u32 = 1 << 3;
const IORING_ENTER_REGISTERED_RING: u32 = 1 << 4;
const IORING_REGISTER_RING_FDS: u32 = 20;

/// `struct io_uring_rsrc_update`.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// `struct __kernel_timespec`.
#[repr(C)]
struct KernelTimespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// `struct io_uring_getevents_arg`.
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// How `enter` names the ring.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RingFd {
    Raw(RawFd),
    /// Index in the task's registered ring table (Linux 5.18+).
    Registered(u32),
}

/// Registers `fd` so enters can skip the fd table lookup; `None` if the kernel
/// cannot (before 5.18) — then enters use the raw fd.
pub(crate) fn register_ring_fd(fd: RawFd) -> Option<RingFd> {
    let mut update = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: fd as u64,
    };
    // SAFETY: the kernel reads and writes one `io_uring_rsrc_update` at the
    // pointer, which is valid for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            fd,
            IORING_REGISTER_RING_FDS,
            &mut update as *mut RsrcUpdate,
            1u32,
        )
    };
    (rc == 1).then_some(RingFd::Registered(update.offset))
}

/// `io_uring_enter(2)` with `GETEVENTS`, and a timeout if given.
pub(crate) fn enter(
    ring: RingFd,
    to_submit: u32,
    min_complete: u32,
    timeout: Option<Duration>,
) -> io::Result<u32> {
    let (fd, mut flags) = match ring {
        RingFd::Raw(fd) => (fd as u32, IORING_ENTER_GETEVENTS),
        RingFd::Registered(index) => (index, IORING_ENTER_GETEVENTS | IORING_ENTER_REGISTERED_RING),
    };
    let ts = timeout.map(|t| KernelTimespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    let arg = ts.as_ref().map(|ts| GeteventsArg {
        sigmask: 0,
        sigmask_sz: 0,
        min_wait_usec: 0,
        ts: ts as *const KernelTimespec as u64,
    });
    let (arg_ptr, arg_size) = match &arg {
        Some(arg) => {
            flags |= IORING_ENTER_EXT_ARG;
            (
                arg as *const GeteventsArg as usize,
                std::mem::size_of::<GeteventsArg>(),
            )
        }
        None => (0, 0),
    };
    // SAFETY: with EXT_ARG the kernel reads one `io_uring_getevents_arg` and the
    // timespec it points to, both alive on this stack frame during the call;
    // without it, no argument is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_enter,
            fd,
            to_submit,
            min_complete,
            flags,
            arg_ptr,
            arg_size,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as u32)
    }
}
