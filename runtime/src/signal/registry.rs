//! The process-wide half of signal delivery: the handler and what it touches.
//!
//! The handler runs in signal context, so it only does what is async-signal
//! safe: it bumps the signal's delivery count and writes to the eventfd of
//! every core that listens (a `write(2)` each). Everything else — waking
//! listeners, comparing counts — happens on the cores, in tasks.
//!
//! A core's eventfd sits in a slot of [`NOTIFY`]. The handler may be running
//! on any thread at any moment, so a core that leaves empties its slot first
//! and then waits until no handler is running ([`IN_HANDLER`]) before it
//! closes the fd: a handler never writes to an fd number that was closed and
//! reused. (A handler interrupting that very wait runs to its end before the
//! wait resumes, so the wait cannot deadlock.)
//!
//! This module holds the signal code's `unsafe`: installing the handler, the
//! handler's `write`, and the eventfd's `read` and `close`.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

/// Signal numbers run from 1 to `SIGRTMAX` (64 on Linux).
const SIGNALS: usize = 65;

/// How many cores (of all runtimes in the process) can listen at once.
const SLOTS: usize = 1024;

/// Deliveries of each signal since its handler was installed.
static DELIVERED: [AtomicU64; SIGNALS] = [const { AtomicU64::new(0) }; SIGNALS];

/// The eventfds of the cores that listen; `-1` is a free slot.
static NOTIFY: [AtomicI32; SLOTS] = [const { AtomicI32::new(-1) }; SLOTS];

/// Handlers running right now, on any thread.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Which signals have percore's handler (a bit per signal number).
static INSTALLED: Mutex<u128> = Mutex::new(0);

/// Signals a process cannot or must not handle this way: `SIGKILL` and
/// `SIGSTOP` cannot be caught; the faults (`SIGSEGV`, `SIGBUS`, `SIGILL`,
/// `SIGFPE`) must not return to the faulting code.
const FORBIDDEN: [i32; 6] = [
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
];

/// Installs percore's handler for `signal` once per process; later calls
/// return at once.
///
/// # Errors
///
/// `InvalidInput` for a signal number out of range or one of [`FORBIDDEN`];
/// the error of `sigaction(2)` otherwise.
pub(super) fn install(signal: i32) -> io::Result<()> {
    let Some(index) = index(signal) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "signal {signal}: not a signal number (1 to {})",
                SIGNALS - 1
            ),
        ));
    };
    if FORBIDDEN.contains(&signal) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "signal {signal}: cannot be listened for (SIGKILL and SIGSTOP cannot be caught; \
                 SIGSEGV, SIGBUS, SIGILL and SIGFPE must not be)"
            ),
        ));
    }
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *installed & (1 << index) != 0 {
        return Ok(());
    }
    // SAFETY: `on_signal` is async-signal safe: it touches only lock-free
    // atomics and calls `write(2)` and errno accessors; it never allocates,
    // locks or panics.
    unsafe { signal_hook_registry::register(signal, move || on_signal(index)) }.map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("installing a handler for signal {signal}: {err}"),
        )
    })?;
    *installed |= 1 << index;
    Ok(())
}

/// How many times `signal` has been delivered since its handler was installed.
pub(super) fn delivered(signal: i32) -> u64 {
    index(signal).map_or(0, |index| DELIVERED[index].load(SeqCst))
}

fn index(signal: i32) -> Option<usize> {
    usize::try_from(signal)
        .ok()
        .filter(|&index| (1..SIGNALS).contains(&index))
}

/// The handler, in signal context.
fn on_signal(index: usize) {
    IN_HANDLER.fetch_add(1, SeqCst);
    // SAFETY: `__errno_location` returns this thread's errno, valid for the
    // thread's life; saving and restoring it keeps the interrupted code's.
    let errno = unsafe { *libc::__errno_location() };
    DELIVERED[index].fetch_add(1, SeqCst);
    let one = 1u64.to_ne_bytes();
    for slot in &NOTIFY {
        let fd = slot.load(SeqCst);
        if fd >= 0 {
            // SAFETY: `fd` is an open eventfd: its owner empties the slot and
            // waits for `IN_HANDLER` to drop to zero before closing it, and we
            // counted ourselves in before loading it. `one` is 8 readable bytes.
            // A full counter (EAGAIN) or any error loses nothing: the count
            // above is what listeners read.
            unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
    IN_HANDLER.fetch_sub(1, SeqCst);
}

/// A core's eventfd, in a slot of [`NOTIFY`] for as long as it lives: the
/// handler writes to it on every delivery of any handled signal.
#[derive(Debug)]
pub(super) struct Notify {
    fd: RawFd,
    slot: usize,
}

impl Notify {
    /// A new non-blocking eventfd, in a free slot.
    ///
    /// # Errors
    ///
    /// `eventfd(2)` fails, or every slot is taken (`SLOTS` cores listening).
    pub(super) fn new() -> io::Result<Notify> {
        // SAFETY: plain syscall; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                err.kind(),
                format!("eventfd for signal delivery: {err}"),
            ));
        }
        for (slot, entry) in NOTIFY.iter().enumerate() {
            if entry.compare_exchange(-1, fd, SeqCst, SeqCst).is_ok() {
                return Ok(Notify { fd, slot });
            }
        }
        // SAFETY: `fd` is ours and in no slot.
        unsafe { libc::close(fd) };
        Err(io::Error::other(format!(
            "signal delivery: {SLOTS} cores listen for signals already"
        )))
    }

    pub(super) fn fd(&self) -> RawFd {
        self.fd
    }

    /// Empties the eventfd's counter (without waiting).
    pub(super) fn clear(&self) {
        let mut count = [0u8; 8];
        // SAFETY: `self.fd` is open while `self` lives; `count` is 8 writable
        // bytes. EAGAIN (nothing to read) is the expected error and harmless.
        unsafe { libc::read(self.fd, count.as_mut_ptr().cast(), count.len()) };
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        NOTIFY[self.slot].store(-1, SeqCst);
        // A handler that loaded our fd counted itself in first: once the count
        // is zero, none holds it.
        while IN_HANDLER.load(SeqCst) != 0 {
            std::hint::spin_loop();
        }
        // SAFETY: no slot holds the fd and no handler is using it; nothing
        // else closes it.
        unsafe { libc::close(self.fd) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_and_out_of_range_signals_are_refused_with_the_reason() {
        for signal in [0, -1, 65, libc::SIGKILL, libc::SIGSEGV] {
            let err = install(signal).expect_err("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{signal}: {err}");
            assert!(err.to_string().contains(&signal.to_string()), "{err}");
        }
    }

    #[test]
    fn a_notify_holds_its_slot_while_it_lives() {
        let notify = Notify::new().expect("an eventfd");
        assert_eq!(NOTIFY[notify.slot].load(SeqCst), notify.fd);
        let slot = notify.slot;
        drop(notify);
        // Only this test makes a `Notify` in this binary: nobody took the slot.
        assert_eq!(NOTIFY[slot].load(SeqCst), -1, "the slot was emptied");
    }
}
