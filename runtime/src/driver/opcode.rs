//! What an operation is: the SQE it submits and how its completions become
//! output. The futures that submit them ([`Op`](crate::Op),
//! [`MultiOp`](crate::MultiOp)) live above the driver, in `op/future.rs`.

use std::cell::Cell;
use std::io;

use io_uring::squeue;

/// One io_uring operation: the data the kernel may touch, and how to read its result.
///
/// Implement it to run any opcode the [`io_uring`] crate can build (re-exported
/// as `percore_runtime::io_uring`); [`Op::new`](crate::Op::new) then makes it a future.
///
/// # Examples
///
/// ```
/// use std::io;
/// use std::os::fd::{AsRawFd, RawFd};
///
/// use percore_runtime::io_uring::{opcode, squeue, types};
/// use percore_runtime::{Op, OpCode};
///
/// /// `fsync(2)` as an io_uring operation.
/// struct Fsync {
///     fd: RawFd,
/// }
///
/// // SAFETY: the entry points at no memory at all.
/// unsafe impl OpCode for Fsync {
///     type Output = io::Result<()>;
///
///     fn sqe(&mut self) -> squeue::Entry {
///         opcode::Fsync::new(types::Fd(self.fd)).build()
///     }
///
///     fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
///         res.map(drop)
///     }
/// }
///
/// # fn main() -> io::Result<()> {
/// let file = std::fs::File::create(std::env::temp_dir().join("percore-doc-fsync"))?;
/// percore_runtime::run(async { Op::new(Fsync { fd: file.as_raw_fd() }).await })??;
/// # Ok(())
/// # }
/// ```
///
/// # Safety
///
/// - Every pointer in the entry returned by [`sqe`](OpCode::sqe) must point into
///   memory that `self` owns on the heap (a `Vec`, a `Box`, a `CString`…), not into
///   `self`'s own bytes: the runtime may *move* `self` (into the op table, when the
///   future is dropped in flight), but never frees it before the op's last CQE.
/// - That memory must stay valid and unaliased until then; `self` must not hand it
///   out (e.g. through `Drop` side effects) before [`complete`](OpCode::complete).
/// - The entry must not carry a `user_data` or flags that make the kernel post
///   completions the op table does not expect (the runtime sets `user_data`).
pub unsafe trait OpCode: 'static {
    /// What awaiting the op yields.
    type Output;

    /// Builds the submission entry. Called once, right before it is pushed.
    fn sqe(&mut self) -> squeue::Entry;

    /// Turns the CQE's result (`res` < 0 already made an error) into the output.
    ///
    /// Also runs when the future was dropped but the op completed anyway; the
    /// output is then dropped, which must release what the op produced (an fd
    /// closes when its `OwnedFd` drops).
    fn complete(self, res: io::Result<u32>, flags: u32) -> Self::Output;

    /// How to run this op on a core without io_uring ([`Driver::Epoll`](crate::Driver::Epoll))
    /// when its opcode is not one that backend runs from the SQE itself
    /// ([`is_supported`](crate::is_supported) says which it does): a call for
    /// the blocking pool, returning what the CQE would carry. `None` (the
    /// default): on such a core the op fails with an `Unsupported` error that
    /// names it and its opcode.
    ///
    /// Called at most once, right after [`sqe`](OpCode::sqe), only on the epoll
    /// backend. The call runs on another thread while `self` waits in the op
    /// table: it may touch only memory `self` owns on the heap (as the SQE
    /// may), which stays valid until the call has returned, and a panic in it
    /// completes the op with `EIO`.
    fn fallback(&mut self) -> Option<Fallback> {
        None
    }

    /// Whether the kernel completes this op without anyone else acting: true
    /// for file I/O, opens, `fsync`, a NOP (the default); false for ops that
    /// wait on a peer or an event — socket accept, connect, receive and send,
    /// polls — which should say so.
    ///
    /// While such an op is in flight, a paused clock does not auto-advance
    /// (see [Paused time](crate::time#paused-time)): its completion is waited
    /// for in real time, so a timeout around it cannot fire first in virtual
    /// time. An op that may wait for another task of the same core must
    /// return false, or that task's timers could wait for it forever.
    fn completes_on_its_own(&self) -> bool {
        true
    }
}

/// A multishot operation: one SQE, a stream of CQEs until one lacks `F_MORE`.
///
/// # Safety
///
/// The same obligations as [`OpCode`], for as long as CQEs can arrive.
pub unsafe trait MultishotCode: 'static {
    /// What each CQE yields.
    type Item;

    /// Builds the submission entry (with the opcode's multishot flag set).
    fn sqe(&mut self) -> squeue::Entry;

    /// Turns one CQE into an item. Items of a dropped stream are made and dropped
    /// here too, so an accepted fd is closed and a provided buffer returned.
    fn next(&mut self, res: io::Result<u32>, flags: u32) -> Self::Item;
}

/// The only place a CQE result becomes an `io::Result`.
pub(crate) fn cqe_result(res: i32) -> io::Result<u32> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as u32)
    }
}

/// A blocking call that stands in for an op's SQE where io_uring is not
/// there ([`OpCode::fallback`]): the op's result, as a CQE would carry it.
pub type Fallback = Box<dyn FnOnce() -> io::Result<u32> + Send>;

thread_local! {
    /// Set when a driver shut down without the kernel releasing every op: memory an
    /// `Op` still owns must then be leaked on drop, never freed.
    static LEAKED: Cell<bool> = const { Cell::new(false) };
}

pub(super) fn mark_leaked() {
    LEAKED.with(|leaked| leaked.set(true));
}

/// Whether a driver on this thread shut down with ops the kernel never let go of.
pub(crate) fn leaked() -> bool {
    LEAKED.with(Cell::get)
}
