//! Child processes for percore: [`Command`] with std's builder and tokio's
//! async methods, pipes as async streams of the core, exit through a pidfd.
//!
//! ```
//! use percore_process::{Command, Stdio};
//!
//! percore_runtime::run(async {
//!     // Run to completion and collect what it printed.
//!     let output = Command::new("echo").arg("hello").output().await?;
//!     assert!(output.status.success());
//!     assert_eq!(output.stdout, b"hello\n");
//!
//!     // Talk to a child through its pipes: owned buffers in, owned buffers back.
//!     let mut child = Command::new("tr")
//!         .args(["a-z", "A-Z"])
//!         .stdin(Stdio::piped())
//!         .stdout(Stdio::piped())
//!         .spawn()?;
//!     let stdin = child.stdin.take().expect("piped");
//!     let (res, _) = stdin.write_all(b"shout".to_vec()).await;
//!     res?;
//!     drop(stdin); // end of file for `tr`
//!     let stdout = child.stdout.take().expect("piped");
//!     let (res, text) = stdout.read_to_end(Vec::new()).await;
//!     res?;
//!     assert_eq!(text, b"SHOUT");
//!     assert!(child.wait().await?.success());
//!     std::io::Result::Ok(())
//! })
//! .unwrap()
//! .unwrap();
//! ```
//!
//! # How it works
//!
//! - **Spawning** is std's `Command::spawn` (`posix_spawn`, or `vfork` and
//!   `exec`), then `pidfd_open(2)` on the new pid: nothing else can reap it
//!   in between, so the pidfd always names our child. The child gets its
//!   stdio and nothing else: std's pipes and every fd percore opens (rings,
//!   eventfds, epoll, sockets, files, pidfds) are close-on-exec.
//! - **Pipes** ([`ChildStdin`], [`ChildStdout`], [`ChildStderr`]) are read and
//!   written with the runtime's `Read` and `Write` ops, on either backend:
//!   io_uring polls the pipe itself; epoll tries `RWF_NOWAIT` and waits for
//!   readiness. They use rent-style methods, as percore's sockets do: `let
//!   (res, buf) = stdout.read(buf).await;`. Each op holds the pipe's fd, so
//!   a dropped read or write never lets the fd number be reused under it.
//! - **Exit** ([`Child::wait`]): on io_uring with `IORING_OP_WAITID` (Linux
//!   6.7+), one `waitid(P_PIDFD, WEXITED | WNOWAIT)` op; elsewhere, the pidfd
//!   polled for readability (`POLL_ADD`). Either only says the child exited;
//!   one `waitid(P_PIDFD, WEXITED | WNOHANG)` then reaps it. So a wait
//!   dropped in flight reaps nothing, and the status is never lost.
//! - **No zombie**: a [`Child`] dropped before its exit was seen is reaped at
//!   once if it already exited; else a duplicate of its pidfd goes to a
//!   reaper thread (one per process, started on demand, gone once it has no
//!   child left to watch) that polls every such pidfd and reaps each process
//!   as it exits, whether or not a runtime is still running. With
//!   [`Command::kill_on_drop`] the child is sent `SIGKILL` first.
//!
//! `Child` and its pipes are `!Send`, like percore's sockets: they belong to
//! the core that uses them.
//!
//! A write to a child that closed its stdin fails with `EPIPE`; the kernel
//! raises `SIGPIPE` too, which Rust programs ignore by default.

#![warn(missing_docs, missing_debug_implementations)]
#![deny(rustdoc::broken_intra_doc_links)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![doc(test(attr(deny(warnings))))]

mod child;
mod command;
mod pipe;
mod reaper;
// pidfd syscalls, `waitid`, `poll`, and `unsafe impl OpCode`: the one module
// that needs `unsafe` (its docs say why).
#[allow(unsafe_code)]
mod sys;

pub use child::Child;
pub use command::Command;
pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
/// std's types, as tokio re-exports them.
pub use std::process::{ExitStatus, Output, Stdio};

#[cfg(test)]
mod tests {
    /// Has two impls for `Send` types, so naming `some_item` on one without
    /// fixing `A` is ambiguous and fails to compile; for `!Send` types only the
    /// `()` impl applies.
    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }

    impl<T: ?Sized> AmbiguousIfSend<()> for T {}

    struct IsSend;

    impl<T: ?Sized + Send> AmbiguousIfSend<IsSend> for T {}

    #[test]
    fn children_and_pipes_belong_to_their_core() {
        use crate::*;
        let _ = <Child as AmbiguousIfSend<_>>::some_item;
        let _ = <ChildStdin as AmbiguousIfSend<_>>::some_item;
        let _ = <ChildStdout as AmbiguousIfSend<_>>::some_item;
        let _ = <ChildStderr as AmbiguousIfSend<_>>::some_item;
    }
}
