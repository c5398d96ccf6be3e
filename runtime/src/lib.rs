//! The core of percore: one io_uring event loop per core, and what runs on it.
//!
//! Each core owns, without locks, its ring, run queue, timer wheel and op table.
//! Tasks are spawned onto the current core and may be `!Send`; operations are
//! futures ([`Op`]) that own every buffer the kernel may touch until their
//! completion arrives, so dropping one never frees memory the kernel still writes.
//! Most users depend on the `percore` facade, which re-exports this crate.
//!
//! ```
//! use std::time::Duration;
//!
//! let total = percore_runtime::run(async {
//!     let tasks: Vec<_> = (1..=3u64)
//!         .map(|i| percore_runtime::spawn(async move {
//!             percore_runtime::time::sleep(Duration::from_millis(i)).await;
//!             i * 10
//!         }))
//!         .collect();
//!     let mut total = 0;
//!     for task in tasks {
//!         total += task.await.unwrap();
//!     }
//!     total
//! })
//! .unwrap();
//! assert_eq!(total, 60);
//! ```
//!
//! # Features
//!
//! - `tracing`: `tracing` events for what an operator wants to see once —
//!   ring setup and the backend chosen (and why `Auto` fell back to epoll),
//!   cores starting and stopping, stalls, completion queue overflow, the steps
//!   of a shutdown. Never an event per op or per tick; without the feature
//!   nothing is compiled in.
//! - `faults`: fault injection for tests (`Builder::faults`, `PERCORE_FAULTS`).

#![warn(missing_docs, missing_debug_implementations)]
#![deny(rustdoc::broken_intra_doc_links)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![doc(test(attr(deny(warnings))))]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod blocking;
mod buf;
pub mod buf_ring;
pub mod channel;
pub mod coop;
mod driver;
mod executor;
mod loom;
pub mod op;
pub mod registered;
mod runtime;
pub mod shutdown;
pub mod signal;
mod stats;
pub mod sync;
pub mod task;
pub mod time;
mod trace;

/// The `io-uring` crate this runtime is built on, for implementing [`OpCode`].
pub use io_uring;

pub use blocking::{spawn_blocking, BlockingHandle, BlockingPool};
pub use buf::{BufResult, IoBuf, IoBufMut, Slice};
pub use driver::{Driver, Fallback, Features, MultishotCode, OpCode, SetupError, TaskRunMode};
pub use executor::{current_core, stats, StallReport};
pub use op::future::{MultiOp, Op};
pub use runtime::{run, Builder, Runtime};
pub use runtime::{spawn_on, RemoteJoinHandle};
pub use stats::{all_stats, Stats};
pub use task::{spawn, yield_now, JoinError, JoinHandle, UnhandledPanic};

/// Runs `f` with the current core's ring registration interface, to register
/// files, buffers or provided-buffer rings with this core's ring.
///
/// The ring belongs to the core: register only resources that live at least as
/// long as the ops that use them, and never call the submitter's `submit*`
/// methods (the core submits on its own schedule). Tables the kernel allows only
/// once per ring go to the first caller; later callers get `EBUSY` from the
/// kernel. The buffer and file tables are percore's: register buffers and
/// files through [`registered`] instead.
///
/// # Errors
///
/// `Unsupported` on a core that runs the epoll backend ([`Driver::Epoll`]),
/// which has no ring.
///
/// # Panics
///
/// Outside a percore runtime, or if called from inside an op's completion.
pub fn with_submitter<R>(f: impl FnOnce(&io_uring::Submitter<'_>) -> R) -> std::io::Result<R> {
    executor::with_driver(|driver| match driver.submitter() {
        Some(submitter) => Ok(f(&submitter)),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this core runs the epoll backend: it has no io_uring ring to register with",
        )),
    })
}

/// [`with_submitter`] if this thread runs a percore core on io_uring, else
/// `None` (for `Drop` impls that must not panic once the runtime is gone).
pub fn try_with_submitter<R>(f: impl FnOnce(&io_uring::Submitter<'_>) -> R) -> Option<R> {
    executor::try_with_driver(|driver| driver.submitter().map(|submitter| f(&submitter))).flatten()
}

/// Whether this core can run `opcode` (an `io_uring::opcode::*::CODE`): as
/// probed when its ring was set up, or on the epoll backend, whether that
/// backend knows how to run it.
///
/// # Panics
///
/// Outside a percore runtime.
pub fn is_supported(opcode: u8) -> bool {
    executor::with_driver(|driver| driver.is_supported(opcode))
}
